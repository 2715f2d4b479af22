"""Items read from the registry that were refused, each told once.

A hostile or unreadable node is read again after every watch event and reconnection;
its refusal is logged (WARNING) and counted (`csf.registry.rejected`, by kind and reason)
once per version of the item, not once per read.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable

from opentelemetry.metrics import Counter

logger = logging.getLogger("csf.registry")

KINDS = ("instance", "rule", "lifecycle", "subscription")


class Rejections:
    """Remembers the last refused version of each path; shared by one registry's watches
    and the rules read through them."""

    def __init__(self, counter: Counter | None = None) -> None:
        self._counter = counter
        self._refused: dict[Hashable, Hashable] = {}

    def count_with(self, counter: Counter) -> None:
        """Count from now on in `counter` (the consumer's or server's meter)."""
        self._counter = counter

    def refuse(
        self, kind: str, reason: str, item: Hashable, version: Hashable, message: str
    ) -> bool:
        """Log and count `item` (a path, mostly) as refused, unless this version of it
        already was; True when it was news."""
        if item in self._refused and self._refused[item] == version:
            return False
        self._refused[item] = version
        logger.warning("%s", message)
        if self._counter is not None:
            self._counter.add(1, {"csf.kind": kind, "csf.reason": reason})
        return True

    def forget(self, item: Hashable) -> None:
        """`item` is gone or good again: a later refusal of it is news."""
        self._refused.pop(item, None)
