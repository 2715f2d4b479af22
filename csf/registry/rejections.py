"""Items read from the registry that were refused, each told once.

A hostile or unreadable node is read again after every watch event and reconnection;
its refusal is logged (WARNING) and counted (`csf.registry.rejected`, by kind and reason)
once per version of the item, not once per read. A refusal that comes from a CSF bug
(an exception the parser does not raise on purpose) is logged at ERROR with its
traceback, still once.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable

from opentelemetry.metrics import Counter

logger = logging.getLogger("csf.registry")


class Rejections:
    """Remembers the last refused version of each path; one registry owns it, and its
    watches and the rules read through them share it."""

    def __init__(self) -> None:
        self._counter: Counter | None = None
        self._refused: dict[Hashable, Hashable] = {}

    def count_with(self, counter: Counter) -> None:
        """Count from now on in `counter` (its owner's meter). A registry shared by
        several owners counts in the first one's: each item is told once, whoever reads it."""
        if self._counter is None:
            self._counter = counter

    def refuse(
        self,
        kind: str,
        reason: str,
        item: Hashable,
        version: Hashable,
        message: str,
        *,
        bug: BaseException | None = None,
    ) -> bool:
        """Log and count `item` (a path, mostly) as refused, unless this version of it
        already was; True when it was news. `bug`: the unexpected exception behind the
        refusal, logged with its traceback."""
        if item in self._refused and self._refused[item] == version:
            return False
        self._refused[item] = version
        if bug is None:
            logger.warning("%s", message)
        else:
            logger.error("%s", message, exc_info=bug)
        if self._counter is not None:
            self._counter.add(1, {"csf.kind": kind, "csf.reason": reason})
        return True

    def forget(self, item: Hashable) -> None:
        """`item` is gone or good again: a later refusal of it is news."""
        self._refused.pop(item, None)
