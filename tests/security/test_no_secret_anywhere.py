"""A whole session with digest credentials and app secrets leaves no secret anywhere a
person or a collector could read: every log record at every level (kazoo's included),
every error text from bad registry URLs or refused credentials, every repr of the objects
holding them, every span."""

import asyncio
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

import csf
from csf.auth import CallerToken, sign
from csf.config import parse_registry_url
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from tests.conftest import greeter_server
from tests.observability.memory import Telemetry

# A password with the characters a URL parser likes to decode: it must arrive literally.
PASSWORD = "pw+Zq8%41x=y"
DIGEST = f"tenant-owner:{PASSWORD}"
SECRET = "order-web-secret-Zq8xK2mPq"
WRONG_SECRET = "wrong-secret-Hn3vR7tYw1"
APP = "order-web"


class EveryRecord(logging.Handler):
    """Each record, formatted with its traceback, as it is emitted."""

    def __init__(self) -> None:
        super().__init__(level=1)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(self.format(record))


@pytest.fixture
def every_record() -> Iterator[EveryRecord]:
    handler = EveryRecord()
    root, kazoo = logging.getLogger(), logging.getLogger("kazoo")
    levels = (root.level, kazoo.level)
    root.addHandler(handler)
    root.setLevel(1)
    kazoo.setLevel(1)  # kazoo's own BLATHER level (5) included
    yield handler
    root.removeHandler(handler)
    root.setLevel(levels[0])
    kazoo.setLevel(levels[1])


def error_text(error: BaseException) -> str:
    return f"{error} {error!r} {error.args!r} {error.__cause__!r} {error.__context__!r}"


BAD_URLS = [
    "zookeeper://127.0.0.1:2181?digest={d}",
    "zk://?digest={d}",
    "zk://127.0.0.1:2181?digest={d}&",
    "zk://127.0.0.1:2181?digest={d}&colour=red",
    "zk://127.0.0.1:2181?session_timeout=1e306&digest={d}",
    "zk://127.0.0.1:99999?digest={d}",
    "zk://127.0.0.1:2181/bad//root?digest={d}",
    "zk://127.0.0.1:2181,digest={d}",
    "zk://{d}@127.0.0.1:2181",
    "zk://127.0.0.1:2181?digest{d}",
    "zk://127.0.0.1:2181?digest={d}&digest={d}",
    "static://127.0.0.1:1?digest={d}",
]


def bad_url_errors() -> list[str]:
    texts = []
    for pattern in BAD_URLS:
        url = pattern.format(d=DIGEST)
        for build in (
            lambda url=url: parse_registry_url(url),
            lambda url=url: csf.Consumer(registry=url, tenant="T", app=APP, app_secret=SECRET),
            lambda url=url: csf.Server(registry=url, tenant="T", handle_signals=False),
        ):
            with pytest.raises(csf.ConfigError) as refused:
                build()
            texts.append(error_text(refused.value))
    return texts


async def cli_errors(url: str) -> list[str]:
    """What csf-registry prints for a bad URL holding the digest."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "csf.registry.cli", "--zk", url, "--tenant", "T", "ls", "/",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode != 0
    return [out.decode(), err.decode()]


def possible_tokens(tenant: str, since: int) -> list[str]:
    """Every token the consumers could have sent since `since` (one per second)."""
    return [
        sign(secret, APP, tenant, "XIESR", issued)
        for secret in (SECRET, WRONG_SECRET)
        for issued in range(since - 1, int(time.time()) + 2)
    ]


async def test_a_session_with_credentials_and_secrets_leaks_none_of_them(
    zookeeper: LocalZooKeeper,
    tenant: str,
    tmp_path: Path,
    telemetry: Telemetry,
    every_record: EveryRecord,
) -> None:
    since = int(time.time())
    url = f"{zookeeper.url}?digest={DIGEST}&session_timeout=5"
    parsed = parse_registry_url(url)
    assert parsed.digest == ("tenant-owner", PASSWORD)  # type: ignore[union-attr]
    auth = csf.CallerAuth(secrets={APP: SECRET}, require_subscription=False)
    texts: list[str] = []
    server = greeter_server(url, tenant, auth=auth, observability=telemetry.config)
    async with server:
        good = csf.Consumer(
            registry=url, tenant=tenant, app=APP, app_secret=SECRET,
            snapshot_dir=tmp_path / "good", observability=telemetry.config,
        )  # fmt: skip
        wrong = csf.Consumer(
            registry=url, tenant=tenant, app=APP, app_secret=WRONG_SECRET,
            snapshot_dir=tmp_path / "wrong", observability=telemetry.config,
        )  # fmt: skip
        async with good, wrong:
            stub = good.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5)
            for name in ("a", "b", "c"):
                reply = await stub.SayHello(greeter_pb2.HelloRequest(name=name))
                assert reply.served_by == server.address
            refused = wrong.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5)
            with pytest.raises(grpc.aio.AioRpcError) as unauthenticated:
                await refused.SayHello(greeter_pb2.HelloRequest(name="x"))
            assert unauthenticated.value.code() is grpc.StatusCode.UNAUTHENTICATED
            texts.append(error_text(unauthenticated.value))
            texts.append(unauthenticated.value.debug_error_string() or "")
            texts += [repr(good), str(good), repr(wrong), repr(server), repr(server.registry)]
        # A provider with the right user and a wrong password is refused by ZooKeeper.
        intruder = greeter_server(f"{zookeeper.url}?digest=tenant-owner:{WRONG_SECRET}", tenant)
        with pytest.raises(csf.CsfError) as noauth:
            async with intruder:
                pass
        texts.append(error_text(noauth.value))
    token = CallerToken(APP, SECRET, tenant, "XIESR")
    texts += [repr(parsed), str(parsed), repr(auth), str(auth), repr(token), str(token)]
    texts += bad_url_errors()
    texts += await cli_errors(f"{zookeeper.url}?digest={DIGEST}&colour=red")
    texts += [span.to_json() for span in telemetry.finished()]
    assert telemetry.finished(), "the session made spans to look at"
    assert any("Auth(" in text for text in every_record.texts), "kazoo's auth record seen"
    texts += every_record.texts

    secrets = [PASSWORD, SECRET, WRONG_SECRET, *possible_tokens(tenant, since)]
    secrets += [token.split(".")[1] for token in secrets[3:]]
    leaks = [(secret, text) for text in texts for secret in secrets if secret in text]
    assert leaks == []
