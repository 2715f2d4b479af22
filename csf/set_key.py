"""A call's SET key on the wire: found in metadata, inherited by a handler's calls.

CSF sends a SET-ized call's resolved key on in metadata `csf-set-key`. A provider's
handler wrapper notes the call it serves (`serving`), and the CSF calls that handler
makes send the same key on (`inherited`), so A -> B -> C stays in one SET with no
business code involved. The incoming metadata is read only when a call asks for it.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from csf.set_rule import SET_KEY_METADATA

Metadata = Any
"""gRPC metadata as calls take it: None, or a sequence of (key, value) pairs."""


class _Serving:
    """The call a handler serves; its SET key read on first use, then kept."""

    __slots__ = ("_context", "_key", "_read")

    def __init__(self, context: Any) -> None:
        self._context = context
        self._read = False
        self._key: str | None = None

    def key(self) -> str | None:
        if not self._read:  # grpc.aio builds the metadata tuple anew on every ask
            self._key = found_in(self._context.invocation_metadata(), SET_KEY_METADATA)
            self._read = True
        return self._key


_serving: ContextVar[_Serving | None] = ContextVar("csf_serving", default=None)


def serving(context: Any) -> None:
    """Called by the provider side as a handler starts, with its ServicerContext."""
    _serving.set(_Serving(context))


def inherited() -> str | None:
    """The SET key of the call the current handler serves; None outside handlers."""
    call = _serving.get()
    return None if call is None else call.key()


def found_in(metadata: Metadata, name: str) -> str | None:
    """The first non-empty text value of entry `name` in `metadata`, else None."""
    for key, value in metadata or ():
        if key == name and isinstance(value, str) and value:
            return value
    return None


def given_on_call(metadata: Metadata, rule_key: str | None) -> str | None:
    """A call's key from its metadata: csf-set-key, else the rule's `key` entry."""
    found = found_in(metadata, SET_KEY_METADATA)
    if found is None and rule_key is not None:
        found = found_in(metadata, rule_key)
    return found


def sent_with(metadata: Metadata, key: str) -> Metadata:
    """`metadata` carrying `key` in csf-set-key, unless it carries one already."""
    if found_in(metadata, SET_KEY_METADATA) is not None:
        return metadata
    return (*(metadata or ()), (SET_KEY_METADATA, key))
