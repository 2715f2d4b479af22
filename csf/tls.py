"""Mutual TLS between consumers and providers, with certificates and keys read from files.

    tls = csf.TLSConfig(ca="ca.pem", cert="me.pem", key="me.key")
    csf.Server(..., tls=tls)      # serves TLS only; asks for and checks client certificates
    csf.Consumer(..., tls=tls)    # presents its certificate, checks the provider's

A provider with TLS says so in its instance JSON. A consumer never talks plaintext to
such a provider, and a consumer configured with TLS never talks plaintext to anyone:
instances that do not match are left out of its view, with a warning.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import grpc

from csf._exceptions import ConfigError
from csf._files import read_at_most
from csf._quoted import quoted
from csf.config import check_host

PathLike = str | os.PathLike[str]
# A PEM bundle is kilobytes; reading stops here, so a wrong name (/dev/zero) cannot stall.
MAX_PEM_BYTES = 1 << 20


@dataclass(frozen=True)
class TLSConfig:
    """PEM files: `ca` checks the peer, `cert` and `key` are this side's own. A provider
    requires a client certificate unless `require_client_cert` is False; a consumer
    checks the provider's certificate against `server_name` when given, else against
    the provider's host. Files are read once, here; ConfigError names one it cannot read."""

    ca: PathLike
    cert: PathLike
    key: PathLike
    require_client_cert: bool = True
    server_name: str | None = None
    _pem: tuple[bytes, bytes, bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.server_name is not None:
            check_host("tls.server_name", self.server_name)
        pem = tuple(_read(name, getattr(self, name)) for name in ("ca", "cert", "key"))
        object.__setattr__(self, "_pem", pem)

    def server_credentials(self) -> grpc.ServerCredentials:
        ca, cert, key = self._pem
        return grpc.ssl_server_credentials(
            [(key, cert)], root_certificates=ca, require_client_auth=self.require_client_cert
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        ca, cert, key = self._pem
        return grpc.ssl_channel_credentials(ca, private_key=key, certificate_chain=cert)

    def channel_options(self) -> tuple[tuple[str, str], ...]:
        if self.server_name is None:
            return ()
        return (("grpc.ssl_target_name_override", self.server_name),)


def _read(name: str, path: PathLike) -> bytes:
    """The file's bytes; ConfigError naming the field and the file for any name the system
    cannot take (NUL, lone surrogate, not a path), any file it cannot read, or no PEM."""
    data = read_at_most(f"tls.{name}", path, MAX_PEM_BYTES)
    shown = quoted(os.fspath(path))
    if len(data) > MAX_PEM_BYTES:
        raise ConfigError(f"tls.{name}: {shown} is larger than {MAX_PEM_BYTES} bytes")
    if b"-----BEGIN" not in data:
        raise ConfigError(f"tls.{name}: {shown} is not a PEM file")
    return data
