"""The one interface of load balancing: a Picker built from an endpoint snapshot."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from csf._invocation import Invocation
from csf.endpoint import Endpoint


class Picker(Protocol):
    """Chooses the endpoint for one attempt; built once per snapshot, read on every call."""

    def pick(self, inv: Invocation) -> Endpoint | None:
        """An endpoint not in `inv.tried` when there is one; None only when there are none."""


BalancerFactory = Callable[[Sequence[Endpoint]], Picker]
