"""Deadline propagation: a handler's remaining deadline caps the calls it makes."""

import contextvars
from types import SimpleNamespace

import pytest

from csf.resilience import deadline
from csf.resilience.deadline import deadline_after, inherit
from tests.resilience.clock import FakeClock


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    clock = FakeClock(1_000.0)
    monkeypatch.setattr(deadline, "time", SimpleNamespace(monotonic=clock))
    return clock


def _in_a_handler(seconds_left: float | None, timeout: float) -> float:
    """deadline_after(timeout) inside a handler given `seconds_left`, in its own context."""

    def handler() -> float:
        inherit(seconds_left)
        return deadline_after(timeout)

    return contextvars.copy_context().run(handler)


@pytest.mark.usefixtures("clock")
def test_a_call_outside_a_handler_gets_its_own_timeout() -> None:
    assert deadline_after(5) == 1_005


@pytest.mark.usefixtures("clock")
def test_a_handlers_deadline_caps_the_calls_it_makes() -> None:
    assert _in_a_handler(2, 5) == 1_002, "the caller's 2 s are left"
    assert _in_a_handler(2, 1) == 1_001, "its own timeout is shorter"
    assert _in_a_handler(None, 5) == 1_005, "the caller set no deadline"


def test_the_inherited_deadline_is_fixed_when_the_handler_starts(clock: FakeClock) -> None:
    def handler() -> float:
        inherit(2)
        clock.advance(1.5)
        return deadline_after(5)

    assert contextvars.copy_context().run(handler) == 1_002
