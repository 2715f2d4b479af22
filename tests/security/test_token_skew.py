"""Caller tokens are accepted for 5 minutes either way of the provider's clock, not more:
tokens signed as the consumer signs them, with chosen issue times, on a real provider."""

import time
from types import SimpleNamespace

import grpc
import pytest

import csf
import csf.auth
from csf.auth import sign
from csf.testing.zookeeper import LocalZooKeeper
from tests.conftest import greeter_server
from tests.security.servicers import CountingGreeter, call_with_token

SECRET = "order-web-secret-0123456789"
# The provider's clock while the test runs: the wall clock frozen inside csf.auth only,
# so a token's age is exactly what the test chose, however slow the machine is.
NOW = 1_800_000_000


async def test_a_token_is_accepted_up_to_five_minutes_either_way_and_refused_past_that(
    zookeeper: LocalZooKeeper, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = SimpleNamespace(time=lambda: float(NOW), monotonic=time.monotonic)
    monkeypatch.setattr(csf.auth, "time", clock)
    auth = csf.CallerAuth(secrets={"order-web": SECRET}, require_subscription=False)
    CountingGreeter.handled = 0
    answers: dict[str, tuple[grpc.StatusCode, int]] = {}
    async with greeter_server(zookeeper.url, tenant, CountingGreeter, auth=auth) as server:
        for name, offset in [
            ("issued now", 0),
            ("issued 299 s ago", -299),
            ("issued 299 s ahead", 299),
            ("issued 301 s ago", -301),
            ("issued 301 s ahead", 301),
        ]:
            before = CountingGreeter.handled
            code = await call_with_token(
                server.address, sign(SECRET, "order-web", tenant, "XIESR", NOW + offset)
            )
            answers[name] = (code, CountingGreeter.handled - before)
    OK, REFUSED = grpc.StatusCode.OK, grpc.StatusCode.UNAUTHENTICATED
    assert answers == {
        "issued now": (OK, 1),
        "issued 299 s ago": (OK, 1),
        "issued 299 s ahead": (OK, 1),
        "issued 301 s ago": (REFUSED, 0),
        "issued 301 s ahead": (REFUSED, 0),
    }
