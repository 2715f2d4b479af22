"""Tokens and secrets never appear in error messages: configuration errors about a value
next to a secret, or about the secret itself, and what a provider answers a caller whose
token is wrong."""

import string
import time
from pathlib import Path

import grpc
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import csf
from csf.auth import APP_KEY, TOKEN_KEY, CallerToken, sign
from csf.config import parse_registry_url
from csf.gateway import GatewaySettings
from csf.gateway.access import Signatures
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from tests.conftest import greeter_server
from tests.security.servicers import CountingGreeter
from tests.strategies import examples

PASSWORD = "secretpw-4f9c"
SECRET = "order-web-secret-0123456789"
WRONG_SECRET = "not-the-right-secret-987654"


def error_text(error: BaseException) -> str:
    return f"{error} {error!r} {error.args!r}"


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(
            f"zk://127.0.0.1:2181?session_timeout=abc&digest=user:{PASSWORD}",
            id="session-timeout-not-a-number",
        ),
        pytest.param(
            f"zk://127.0.0.1:2181?digest=user:{PASSWORD}&session_timeout=-1",
            id="session-timeout-negative",
        ),
        pytest.param(
            f"zk://127.0.0.1:2181?digest=user:{PASSWORD}&color=blue", id="unknown-parameter"
        ),
        pytest.param(f"zk://127.0.0.1:99999?digest=user:{PASSWORD}", id="port-out-of-range"),
        pytest.param(f"zk://127.0.0.1:2181?digest=:{PASSWORD}", id="digest-without-user"),
        pytest.param(
            f"zk://127.0.0.1:2181/bad//root?digest=user:{PASSWORD}",
            id="bad-chroot",
        ),
        pytest.param(
            f"zk://?digest=user:{PASSWORD}",
            id="no-host",
        ),
        pytest.param(
            f"zookeeper://127.0.0.1:2181?digest=user:{PASSWORD}",
            id="unknown-scheme",
        ),
        pytest.param(
            f"zk://127.0.0.1:2181?digestuser:{PASSWORD}",
            id="query-field-without-equals",
        ),
    ],
)
def test_a_bad_registry_url_is_refused_without_its_digest_password(url: str) -> None:
    for build in (
        lambda: csf.Consumer(registry=url, tenant="T", app="web"),
        lambda: csf.Server(registry=url, tenant="T"),
    ):
        with pytest.raises(csf.ConfigError) as refused:
            build()
        assert "registry" in str(refused.value)
        assert PASSWORD not in error_text(refused.value)


@pytest.mark.parametrize(
    "secrets",
    [
        pytest.param({"order-web": "short-secret"}, id="short"),
        pytest.param({"order-web": SECRET, "report-job": "short-secret"}, id="one-of-two-short"),
        pytest.param({"order-web": SECRET, "bad app!": "short-secret"}, id="bad-app-name"),
    ],
)
def test_a_bad_caller_secret_is_refused_without_quoting_it(secrets: dict[str, str]) -> None:
    with pytest.raises(csf.ConfigError, match=r"auth\.secrets") as refused:
        csf.CallerAuth(secrets=secrets)
    assert "short-secret" not in error_text(refused.value)
    assert SECRET not in error_text(refused.value)


def test_a_bad_app_secret_is_refused_without_quoting_it() -> None:
    with pytest.raises(csf.ConfigError, match="app_secret") as refused:
        csf.Consumer(registry="static://127.0.0.1:1", tenant="T", app="a", app_secret="short-pw")
    assert "short-pw" not in error_text(refused.value)


async def test_a_provider_refuses_a_wrong_token_without_echoing_tokens_or_secrets(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path
) -> None:
    auth = csf.CallerAuth(secrets={"order-web": SECRET}, require_subscription=False)
    CountingGreeter.handled = 0
    async with greeter_server(zookeeper.url, tenant, CountingGreeter, auth=auth) as server:
        wrong = sign(WRONG_SECRET, "order-web", tenant, "XIESR", int(time.time()))
        async with grpc.aio.insecure_channel(server.address) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raw:
                await greeter_pb2_grpc.GreeterStub(channel).SayHello(
                    greeter_pb2.HelloRequest(name="x"),
                    metadata=((APP_KEY, "order-web"), (TOKEN_KEY, wrong)),
                    timeout=5,
                )
        consumer = csf.Consumer(
            registry=zookeeper.url, tenant=tenant, app="order-web", snapshot_dir=tmp_path,
            app_secret=WRONG_SECRET,
        )  # fmt: skip
        async with consumer:
            stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5)
            with pytest.raises(grpc.aio.AioRpcError) as governed:
                await stub.SayHello(greeter_pb2.HelloRequest(name="x"))
    assert raw.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert governed.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert CountingGreeter.handled == 0
    for error in (raw.value, governed.value):
        text = f"{error_text(error)} {error.details()} {error.debug_error_string()}"
        for secret in (wrong, wrong.split(".")[1], WRONG_SECRET, SECRET):
            assert secret not in text


# Anything a hurried user may type around a digest: the password is never quoted back.
url_pieces = st.text(string.ascii_letters + string.digits + ":/?&=,@.[]%+", max_size=12)


@given(
    before=url_pieces,
    key=st.sampled_from(["digest=", "digest", "digest:", "", "dig=", "digest_file="]),
    # No '@' or '?': in a location, what follows the last '@' is the host and a '?' starts
    # the query, by URL syntax.
    password=st.from_regex(r"Zq[A-Za-z0-9+%=:/]{6,12}", fullmatch=True),
    after=url_pieces,
    scheme=st.sampled_from(["zk://", "static://", "zk:/", ""]),
)
@examples(1_000)
@example(before="h:1?", key="digest", password="Zq:secret", after="", scheme="zk://")
@example(before="", key="", password="Zqu:pw", after="@h:1", scheme="zk://")
@example(before="", key="digest=", password="Zq000://", after="", scheme="zk:/")
@example(before="h:1,", key="digest=", password="Zqu:pw", after="", scheme="static://")
def test_no_registry_url_error_quotes_a_password_however_the_url_is_mangled(
    before: str, key: str, password: str, after: str, scheme: str
) -> None:
    url = f"{scheme}{before}{key}user:{password}{after}"
    try:
        parse_registry_url(url)
    except csf.ConfigError as error:
        assert password not in error_text(error)
        assert password[2:] not in error_text(error)


def test_the_reprs_of_objects_holding_secrets_show_none() -> None:
    auth = csf.CallerAuth(secrets={"order-web": SECRET, "report-job": WRONG_SECRET})
    token = CallerToken("order-web", SECRET, "T", "XIESR")
    url = parse_registry_url(f"zk://h1:2181?digest=user:{PASSWORD}")
    gateway = GatewaySettings(registry="zk://h1:2181", tenant="T", app_secret=SECRET)
    signatures = Signatures({"order-web": SECRET})
    for shown in (
        *(repr(auth), str(auth), repr(token), repr(url), str(url)),
        *(repr(gateway), repr(signatures)),
    ):
        for secret in (SECRET, WRONG_SECRET, PASSWORD, *dict(token.metadata()).values()):
            if secret not in ("order-web",):
                assert secret not in shown, shown
    assert repr(auth) == (
        "CallerAuth(apps=['order-web', 'report-job'], require_subscription=True, "
        "max_skew=300.0, gateways=[])"
    )
