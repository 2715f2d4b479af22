"""A tenant's digest credentials may come from a file named in the URL (`digest_file=`)
or from the CSF_ZK_DIGEST environment variable, so they never stand on a command line;
either gives the same identity as `digest=` on a real ZooKeeper."""

import asyncio
import os
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError

import csf
from csf._digest import DIGEST_ENV
from csf.config import ZooKeeperURL, parse_registry_url
from csf.registry.paths import tenant_path
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from tests.conftest import consumer_for, greeter_server

USER, PASSWORD = "owner", "pw+%41:x=y"


@pytest.fixture
def digest_file(tmp_path: Path) -> Path:
    path = tmp_path / "zk-digest"
    path.write_text(f"{USER}:{PASSWORD}\n")
    path.chmod(0o600)
    return path


def test_a_digest_file_holds_user_and_password_taken_literally(digest_file: Path) -> None:
    url = parse_registry_url(f"zk://h1:2181?digest_file={digest_file}")
    assert url == ZooKeeperURL((("h1", 2181),), digest=(USER, PASSWORD))


def test_the_environment_gives_the_digest_when_the_url_has_none(
    monkeypatch: pytest.MonkeyPatch, digest_file: Path
) -> None:
    monkeypatch.setenv(DIGEST_ENV, f"{USER}:{PASSWORD}")
    assert parse_registry_url("zk://h1:2181").digest == (USER, PASSWORD)  # type: ignore[union-attr]
    # The URL's own credentials win over the environment.
    assert parse_registry_url("zk://h1:2181?digest=u:p").digest == ("u", "p")  # type: ignore[union-attr]
    assert parse_registry_url(f"zk://h1:2181?digest_file={digest_file}").digest == (  # type: ignore[union-attr]
        USER,
        PASSWORD,
    )
    monkeypatch.setenv(DIGEST_ENV, "no-colon")
    with pytest.raises(csf.ConfigError, match=f"^{DIGEST_ENV}: expected user:password$"):
        parse_registry_url("zk://h1:2181")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "does not hold user:password"),
        (b"owner\n", "expected user:password"),
        (b":pw\n", "expected user:password"),
        (b"\xff\xfe:pw", "does not hold user:password"),
        (b"u:" + b"p" * 5_000, "does not hold user:password"),
    ],
)
def test_a_digest_file_without_user_and_password_is_refused_without_quoting_it(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "digest"
    path.write_bytes(content)
    with pytest.raises(csf.ConfigError, match=f"^registry digest_file.*{message}") as refused:
        parse_registry_url(f"zk://h1:2181?digest_file={path}")
    assert "pw" not in str(refused.value).replace(str(path), "")


@pytest.mark.parametrize("name", ["absent", "nul\x00", "."])
def test_a_digest_file_that_cannot_be_read_is_a_config_error_naming_it(
    tmp_path: Path, name: str
) -> None:
    with pytest.raises(csf.ConfigError, match=r"^registry digest_file: cannot read '.*'"):
        parse_registry_url(f"zk://h1:2181?digest_file={tmp_path / name}")


async def test_credentials_from_a_file_or_the_environment_own_the_tenant_on_zookeeper(
    zookeeper: LocalZooKeeper,
    tenant: str,
    tmp_path: Path,
    digest_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider_url = f"{zookeeper.url}?digest_file={digest_file}"
    monkeypatch.setenv(DIGEST_ENV, f"{USER}:{PASSWORD}")
    async with greeter_server(provider_url, tenant) as server:
        async with consumer_for(zookeeper.url, tenant, tmp_path) as consumer:  # from the env
            stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5)
            reply = await stub.SayHello(greeter_pb2.HelloRequest(name="x"))
            assert reply.served_by == server.address
        monkeypatch.delenv(DIGEST_ENV)
        anonymous = KazooClient(hosts=zookeeper.hosts)
        await asyncio.to_thread(anonymous.start, 10)
        try:
            with pytest.raises(NoAuthError):
                await asyncio.to_thread(anonymous.get_children, tenant_path(tenant))
        finally:
            await asyncio.to_thread(anonymous.stop)
            await asyncio.to_thread(anonymous.close)
    assert DIGEST_ENV not in os.environ
