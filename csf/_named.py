"""Chains by name, on either side: an order of names, outermost first, and the factories
they stand for, user-given ones replacing or adding to the built-in ones."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from csf._exceptions import ConfigError

FactoryT = TypeVar("FactoryT", bound=Callable[..., Any])


def resolve_named(
    chain: Sequence[str],
    builtin: Mapping[str, FactoryT],
    given: Mapping[str, FactoryT] | None,
    what: str,
) -> tuple[FactoryT, ...]:
    """The factories `chain` names. ConfigError for a malformed `given` (its option is
    `what` + "s") or chain, or a name in the chain that is repeated or unknown."""
    if given is not None and not (
        isinstance(given, Mapping)
        and all(isinstance(name, str) and callable(f) for name, f in given.items())
    ):
        raise ConfigError(f"{what}s: expected a mapping of names to factories, got {given!r}")
    known = {**builtin, **(given or {})}
    if isinstance(chain, str) or not all(isinstance(name, str) for name in chain):
        raise ConfigError(f"chain: expected a sequence of {what} names, got {chain!r}")
    repeated = sorted({name for name in chain if list(chain).count(name) > 1})
    if repeated:
        raise ConfigError(f"chain: {what} {repeated[0]!r} appears twice in {list(chain)}")
    unknown = [name for name in chain if name not in known]
    if unknown:
        raise ConfigError(
            f"chain: unknown {what} {unknown[0]!r}; known: {', '.join(sorted(known))}"
        )
    return tuple(known[name] for name in chain)
