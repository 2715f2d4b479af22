"""Mutual TLS between consumer and provider: only clients holding a certificate from the
provider's CA get a call served, and no consumer talks plaintext to a TLS provider."""

import logging
from pathlib import Path

import grpc
import pytest

import csf
from csf.testing.zookeeper import LocalZooKeeper
from demo import greeter_pb2, greeter_pb2_grpc
from tests.conftest import consumer_for, greeter_server
from tests.security.certs import Authority
from tests.security.servicers import CountingGreeter, raw_call


async def test_only_clients_with_a_certificate_from_the_providers_ca_are_served(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    authority = Authority(tmp_path / "ca", "csf-test-ca")
    stranger = Authority(tmp_path / "other-ca", "other-ca")
    provider_cert = authority.issue("provider", server=True)
    consumer_cert = authority.issue("consumer", server=False)
    foreign_cert = stranger.issue("intruder", server=False)
    CountingGreeter.handled = 0
    server = greeter_server(zookeeper.url, tenant, CountingGreeter, tls=provider_cert.config())
    async with server:
        assert server.registrations[0].instance.tls is True
        ca = authority.path.read_bytes()
        refusals = {
            "no client certificate": await raw_call(
                grpc.aio.secure_channel(server.address, grpc.ssl_channel_credentials(ca))
            ),
            "a certificate from another CA": await raw_call(
                grpc.aio.secure_channel(
                    server.address,
                    grpc.ssl_channel_credentials(
                        ca,
                        private_key=foreign_cert.key.read_bytes(),
                        certificate_chain=foreign_cert.cert.read_bytes(),
                    ),
                )
            ),
            "plaintext": await raw_call(grpc.aio.insecure_channel(server.address)),
        }
        assert all(code != grpc.StatusCode.OK for code in refusals.values()), refusals

        caplog.set_level(logging.WARNING, logger="csf.directory")
        async with consumer_for(zookeeper.url, tenant, tmp_path / "plain") as plain:
            stub = plain.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=2)
            with pytest.raises(csf.NoProviderError):
                await stub.SayHello(greeter_pb2.HelloRequest(name="x"))
        assert f"leaving out {server.address}: it speaks TLS" in caplog.text
        assert CountingGreeter.handled == 0

        consumer = csf.Consumer(
            registry=zookeeper.url,
            tenant=tenant,
            app="test",
            snapshot_dir=tmp_path / "tls",
            tls=consumer_cert.config(),
        )
        async with consumer:
            stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=5)
            for _ in range(3):
                reply = await stub.SayHello(greeter_pb2.HelloRequest(name="x"))
                assert reply.served_by == server.address
        assert CountingGreeter.handled == 3


async def test_a_tls_consumer_leaves_plaintext_providers_out(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    consumer_cert = Authority(tmp_path / "ca", "ca").issue("consumer", server=False)
    caplog.set_level(logging.WARNING, logger="csf.directory")
    async with greeter_server(zookeeper.url, tenant) as server:
        consumer = csf.Consumer(
            registry=zookeeper.url,
            tenant=tenant,
            app="test",
            snapshot_dir=tmp_path,
            tls=consumer_cert.config(),
        )
        async with consumer:
            stub = consumer.stub(greeter_pb2_grpc.GreeterStub, service="XIESR", timeout=2)
            with pytest.raises(csf.NoProviderError):
                await stub.SayHello(greeter_pb2.HelloRequest(name="x"))
    assert f"leaving out {server.address}: it speaks plaintext" in caplog.text


def test_unreadable_or_non_pem_files_are_named(tmp_path: Path) -> None:
    issued = Authority(tmp_path, "ca").issue("x", server=False)
    with pytest.raises(csf.ConfigError, match=r"tls\.cert: cannot read '.*missing\.pem'"):
        csf.TLSConfig(ca=issued.ca, cert=tmp_path / "missing.pem", key=issued.key)
    (tmp_path / "junk").write_text("not a certificate")
    with pytest.raises(csf.ConfigError, match=r"tls\.key: .*junk' is not a PEM file"):
        csf.TLSConfig(ca=issued.ca, cert=issued.cert, key=tmp_path / "junk")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nul\x00.pem", r"^tls\.ca: cannot read 'nul\\x00\.pem': not a usable file name$"),
        (".", r"^tls\.ca: cannot read '\.': Is a directory$"),
        ("/dev/zero", r"^tls\.ca: '/dev/zero' is larger than 1048576 bytes$"),
        (None, r"^tls\.ca: expected a file name, got None$"),
    ],
)
def test_a_file_name_that_cannot_give_a_pem_is_named_with_its_field(
    tmp_path: Path, name: object, message: str
) -> None:
    issued = Authority(tmp_path, "ca").issue("x", server=False)
    with pytest.raises(csf.ConfigError, match=message):
        csf.TLSConfig(ca=name, cert=issued.cert, key=issued.key)  # type: ignore[arg-type]


@pytest.mark.parametrize("server_name", ["unix:/tmp/s", "ipv4:a:1,b", "", "h:1"])
def test_a_server_name_that_is_not_a_host_is_refused(tmp_path: Path, server_name: str) -> None:
    issued = Authority(tmp_path, "ca").issue("x", server=False)
    with pytest.raises(csf.ConfigError, match=r"^tls\.server_name: "):
        csf.TLSConfig(ca=issued.ca, cert=issued.cert, key=issued.key, server_name=server_name)


async def test_a_provider_not_requiring_client_certificates_serves_tls_clients_without_one(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path
) -> None:
    authority = Authority(tmp_path / "ca", "csf-test-ca")
    provider_cert = authority.issue("provider", server=True)
    ca = authority.path.read_bytes()
    CountingGreeter.handled = 0
    relaxed = greeter_server(
        zookeeper.url, tenant, CountingGreeter, tls=provider_cert.config(require_client_cert=False)
    )
    strict = greeter_server(zookeeper.url, tenant, CountingGreeter, tls=provider_cert.config())
    async with relaxed, strict:

        def without_certificate(address: str) -> grpc.aio.Channel:
            return grpc.aio.secure_channel(address, grpc.ssl_channel_credentials(ca))

        codes = {
            "relaxed, TLS without a certificate": await raw_call(
                without_certificate(relaxed.address)
            ),
            "relaxed, plaintext": await raw_call(grpc.aio.insecure_channel(relaxed.address)),
            "default, TLS without a certificate": await raw_call(
                without_certificate(strict.address)
            ),
        }
    assert codes == {
        "relaxed, TLS without a certificate": grpc.StatusCode.OK,
        "relaxed, plaintext": grpc.StatusCode.UNAVAILABLE,
        "default, TLS without a certificate": grpc.StatusCode.UNAVAILABLE,
    }
    assert CountingGreeter.handled == 1
