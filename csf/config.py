"""Configuration values: frozen dataclasses, their defaults, and registry URL parsing.

Everything here validates on construction and raises `ConfigError` naming the field,
so the rest of CSF can trust the values it is handed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from csf import bounds
from csf._digest import (
    digest_from_env,
    parse_digest,
    read_digest_file,
    redact_query_field,
    redact_url,
)
from csf._exceptions import ConfigError
from csf._quoted import quoted

DEFAULT_CLUSTER = "defaultCluster"
DEFAULT_GROUP = "normal"
DEFAULT_LB = "round_robin"
DEFAULT_TIMEOUT = 5.0
DEFAULT_RETRIES = 2
DEFAULT_WEIGHT = 100
# A new provider's weight ramps up linearly over this many seconds from its start.
DEFAULT_WARMUP = 600.0
DEFAULT_SESSION_TIMEOUT = 10.0
# How long a new directory waits for the registry before it serves from its snapshot.
DEFAULT_STARTUP_WAIT = 0.5
# How long a stopping provider keeps serving after deregistering, so consumers see it go.
DEFAULT_DEREGISTER_WAIT = 1.0
DEFAULT_SHUTDOWN_GRACE = 10.0

ZK_URL_FORM = (
    "zk://host:port[,host:port...][/chroot]"
    "[?session_timeout=S&digest=user:password|digest_file=/path]"
)
STATIC_URL_FORM = "static://host:port[,host:port...]"
# Plain decimal seconds, as many places as a float's repr writes; no exponent, no sign.
_SECONDS = re.compile(r"[0-9]{1,4}(?:\.[0-9]{1,17})?")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_DNS_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_MAX_HOST = 253


def check_name(field_name: str, value: object) -> str:
    """A tenant, service, cluster, group or app name: one safe ZooKeeper path segment."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ConfigError(
            f"{field_name}: {quoted(value)} is not a valid name "
            "(letters, digits, '.', '_', '-'; at most 128; not starting with a symbol)"
        )
    return value


def check_host(field_name: str, value: object) -> str:
    """A host to dial: a DNS name (labels of letters, digits and '-', not at either end of
    a label; at most 253 characters), an IPv4 dotted quad, or a bracketed IPv6 literal
    without a zone. Anything else, gRPC target syntax such as 'unix:' included, is a
    ConfigError naming the field."""
    if isinstance(value, str) and 0 < len(value) <= _MAX_HOST and _is_host(value):
        return value
    raise ConfigError(
        f"{field_name}: {quoted(value)} is not a host name, an IPv4 address or a "
        "bracketed IPv6 address"
    )


def _is_host(text: str) -> bool:
    if text.startswith("[") and text.endswith("]"):
        return "%" not in text and _is_ip(ipaddress.IPv6Address, text[1:-1])
    labels = text.split(".")
    if not all(_DNS_LABEL.fullmatch(label) for label in labels):
        return False
    # An all-digit last label is no DNS name: it must then be a whole, valid IPv4 address.
    return not labels[-1].isdigit() or _is_ip(ipaddress.IPv4Address, text)


def _is_ip(kind: type[ipaddress.IPv4Address | ipaddress.IPv6Address], text: str) -> bool:
    try:
        kind(text)
    except ValueError:
        return False
    return True


def check_timeout(field_name: str, value: object) -> float:
    """Seconds given in code: a timeout, wait or grace (bounds.SECONDS)."""
    return bounds.SECONDS.check(field_name, value, ConfigError)


def check_count(field_name: str, value: object, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{field_name}: expected a whole number >= {minimum}, got {value!r}")
    return value


_PORT = re.compile(r"[0-9]{1,5}")


def parse_address(field_name: str, text: str) -> tuple[str, int]:
    """'host:port' (or '[v6]:port') into its parts; the host as `check_host` accepts it,
    the port 1..65535 in ASCII digits."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not _PORT.fullmatch(port_text):
        raise ConfigError(f"{field_name}: {quoted(text)} is not host:port")
    check_host(field_name, host)
    port = int(port_text)
    if not 0 < port < 65536:
        raise ConfigError(f"{field_name}: port {port} is out of range in {quoted(text)}")
    return host, port


class EmptyReply:
    """`csf.EMPTY_REPLY` as a fallback: answer with the response message with no fields set."""

    def __repr__(self) -> str:
        return "csf.EMPTY_REPLY"


EMPTY_REPLY = EmptyReply()
Fallback = Callable[[Any, BaseException], Awaitable[Any]] | EmptyReply
"""`async def f(request, error) -> response`, answering instead of a provider; or
`csf.EMPTY_REPLY`."""
HashKey = Callable[[Any], str]
"""Request -> the key consistent hashing routes on."""


def _is_fallback(value: object) -> bool:
    return callable(value) or isinstance(value, EmptyReply)


@dataclass(frozen=True, kw_only=True)
class MethodConfig:
    """Per-method overrides of a stub's settings; None keeps the stub's value.

    Only methods marked `idempotent` are retried once a request may have reached a
    provider.
    """

    timeout: float | None = None
    retries: int | None = None
    idempotent: bool = False
    cluster: str | None = None
    lb: str | None = None
    hash_key: HashKey | None = None
    """Request -> consistent hashing's key, for this method's requests only."""

    def __post_init__(self) -> None:
        if self.timeout is not None:
            check_timeout("MethodConfig.timeout", self.timeout)
        if self.hash_key is not None and not callable(self.hash_key):
            raise ConfigError(
                f"MethodConfig.hash_key: expected a function of the request, got {self.hash_key!r}"
            )
        if self.retries is not None:
            bounds.RETRIES.check_whole("MethodConfig.retries", self.retries, ConfigError)
        if not isinstance(self.idempotent, bool):
            raise ConfigError(f"MethodConfig.idempotent: expected a bool, got {self.idempotent!r}")
        if self.cluster is not None:
            check_name("MethodConfig.cluster", self.cluster)
        if self.lb is not None:
            check_name("MethodConfig.lb", self.lb)


@dataclass(frozen=True, slots=True)
class MethodSettings:
    """The effective settings of one stub method: the stub's, overridden per method."""

    timeout: float
    retries: int
    idempotent: bool
    cluster: str
    lb: str
    group: str | None
    version: str | None
    tags: Mapping[str, str]


@dataclass(frozen=True, kw_only=True)
class StubConfig:
    """The settings of one `consumer.stub(...)`; `methods` overrides them per method."""

    service: str
    cluster: str = DEFAULT_CLUSTER
    lb: str = DEFAULT_LB
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    fallback: Mapping[str, Fallback] | object | None = None
    hash_key: HashKey | None = None
    methods: Mapping[str, MethodConfig] = field(default_factory=dict)
    group: str | None = None
    version: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    set_key: HashKey | None = None
    """The SET key of a call from its request, when it is not the `hash_key` (DESIGN 8)."""

    def __post_init__(self) -> None:
        check_name("service", self.service)
        check_name("cluster", self.cluster)
        check_name("lb", self.lb)
        if self.group is not None:
            check_name("group", self.group)
        if self.version is not None and not isinstance(self.version, str):
            raise ConfigError(f"version: expected a string, got {self.version!r}")
        check_tags("tags", self.tags)
        check_timeout("timeout", self.timeout)
        bounds.RETRIES.check_whole("retries", self.retries, ConfigError)
        for name, key in (("hash_key", self.hash_key), ("set_key", self.set_key)):
            if key is not None and not callable(key):
                raise ConfigError(f"{name}: expected a function of the request, got {key!r}")
        if not isinstance(self.methods, Mapping) or not all(
            isinstance(name, str) and isinstance(config, MethodConfig)
            for name, config in self.methods.items()
        ):
            raise ConfigError("methods: expected a mapping of method name to csf.MethodConfig")
        if isinstance(self.fallback, Mapping):
            for name, function in self.fallback.items():
                if not isinstance(name, str) or not _is_fallback(function):
                    raise ConfigError(f"fallback: {name!r} must map a method name to a function")

    def method(self, name: str) -> MethodSettings:
        """The effective settings of method `name`."""
        override = self.methods.get(name, MethodConfig())
        return MethodSettings(
            timeout=self.timeout if override.timeout is None else override.timeout,
            retries=self.retries if override.retries is None else override.retries,
            idempotent=override.idempotent,
            cluster=override.cluster or self.cluster,
            lb=override.lb or self.lb,
            group=self.group,
            version=self.version,
            tags=self.tags,
        )

    def fallback_for(self, name: str) -> Fallback | None:
        if self.fallback is None or isinstance(self.fallback, EmptyReply):
            return self.fallback
        if isinstance(self.fallback, Mapping):
            found = self.fallback.get(name)
        else:
            found = getattr(self.fallback, name, None)
        return found if _is_fallback(found) else None

    def hash_key_for(self, name: str) -> HashKey | None:
        override = self.methods.get(name)
        if override is not None and override.hash_key is not None:
            return override.hash_key
        return self.hash_key

    def check_methods(self, unary: Collection[str], streaming: Collection[str]) -> None:
        """ConfigError naming a method in `methods=` or `fallback=` the stub does not have,
        or a fallback for a streaming method (fallbacks answer unary calls only)."""
        known = {*unary, *streaming}
        named = {"methods": set(self.methods)}
        if isinstance(self.fallback, Mapping):
            named["fallback"] = set(self.fallback)
        for option, names in named.items():
            for name in sorted(names - known):
                raise ConfigError(
                    f"{option}: unknown method {name!r} of {self.service}; "
                    f"known: {', '.join(sorted(known))}"
                )
        for name in sorted(named.get("fallback", set()) & set(streaming)):
            raise ConfigError(
                f"fallback: {name!r} is a streaming method; fallbacks answer unary calls only"
            )


@dataclass(frozen=True)
class ZooKeeperURL:
    """A ZooKeeper ensemble: `zk://h1:2181,h2:2181[/chroot]?session_timeout=10&digest=u:pw`.
    `session_timeout` is within bounds.SESSION_TIMEOUT (seconds); the digest never shows in a
    repr."""

    hosts: tuple[tuple[str, int], ...]
    chroot: str = ""
    session_timeout: float = DEFAULT_SESSION_TIMEOUT
    digest: tuple[str, str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        check_session_timeout(self.session_timeout)
        if self.digest is not None and not all(_is_utf8(part) for part in self.digest):
            # ZooKeeper hashes the UTF-8 bytes: text with a lone surrogate has none.
            raise ConfigError("registry digest: the user and password must be UTF-8 text")

    @property
    def connect_string(self) -> str:
        return ",".join(f"{host}:{port}" for host, port in self.hosts) + self.chroot


@dataclass(frozen=True)
class StaticURL:
    """Direct connection to fixed providers, no registry: `static://h:p,h:p`."""

    addresses: tuple[tuple[str, int], ...]


RegistryURL = ZooKeeperURL | StaticURL


def _is_utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def check_session_timeout(value: object) -> float:
    return bounds.SESSION_TIMEOUT.check("registry session_timeout", value, ConfigError)


def parse_registry_url(url: object) -> RegistryURL:
    """Parse `registry=`; raises `ConfigError` naming the problem and the accepted forms.

    `zk://` takes `session_timeout=` (seconds, 1..600) and the tenant's credentials:
    `digest=user:password` (taken literally up to the next '&': no percent-decoding, '+'
    stays '+') or `digest_file=/path` (a file holding `user:password`); with neither, the
    `CSF_ZK_DIGEST` environment variable, if set, holds `user:password`. Error messages
    quote the URL with every password masked."""
    if not isinstance(url, str):
        raise ConfigError(f"registry: expected a URL string, got {quoted(url)}")
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("zk", "static"):
        raise ConfigError(
            f"registry: {_shown(url)} has no known scheme; accepted forms: {ZK_URL_FORM} or "
            f"{STATIC_URL_FORM}"
        )
    if scheme == "static":
        if not rest or "?" in rest or "/" in rest:
            raise ConfigError(f"registry: {_shown(url)} is not of the form {STATIC_URL_FORM}")
        return StaticURL(_addresses(url, rest))
    return _parse_zk(url, rest)


def _shown(url: str) -> str:
    return quoted(redact_url(url))


def _addresses(url: str, text: str) -> tuple[tuple[str, int], ...]:
    if "@" in text:
        raise ConfigError(
            f"registry: {_shown(url)} puts credentials before '@'; give them with "
            "digest=, digest_file= or CSF_ZK_DIGEST"
        )
    return tuple(_address(part) for part in text.split(","))


def _address(part: str) -> tuple[str, int]:
    try:
        return parse_address("registry", part)
    except ConfigError:
        shown = redact_url(part)
        if shown == part:  # nothing in it can be a password: the detailed message may quote it
            raise
    raise ConfigError(f"registry: {quoted(shown)} is not host:port") from None


def _parse_zk(url: str, rest: str) -> ZooKeeperURL:
    location, question, query = rest.partition("?")
    host_text, slash, chroot_tail = location.partition("/")
    if not host_text:
        raise ConfigError(f"registry: {_shown(url)} names no ZooKeeper host; form: {ZK_URL_FORM}")
    hosts = _addresses(url, host_text)
    chroot = ""
    if slash and chroot_tail:
        chroot = "/" + chroot_tail.rstrip("/")
        if "//" in chroot or any(not _NAME.fullmatch(seg) for seg in chroot[1:].split("/")):
            raise ConfigError(f"registry: the chroot in {_shown(url)} is not a valid path")
    fields = _query_fields(query) if question else {}
    session_timeout = DEFAULT_SESSION_TIMEOUT
    if "session_timeout" in fields:
        session_timeout = _seconds(fields["session_timeout"])
    return ZooKeeperURL(hosts, chroot, session_timeout, _digest(fields))


def _query_fields(query: str) -> dict[str, str]:
    """`key=value&...` into a dict, each value taken literally up to the next '&'."""
    fields: dict[str, str] = {}
    for number, text in enumerate(query.split("&"), 1):
        key, equals, value = text.partition("=")
        if not equals or not key:
            raise ConfigError(
                f"registry: query field {number} ({quoted(redact_query_field(text))}) is not "
                "key=value"
            )
        if key not in ("session_timeout", "digest", "digest_file"):
            raise ConfigError(
                f"registry: unknown parameter {quoted(redact_query_field(key))}; accepted: "
                "session_timeout, digest, digest_file"
            )
        if key in fields:
            raise ConfigError(f"registry {key}: given twice")
        fields[key] = value
    return fields


def _seconds(text: str) -> float:
    if not _SECONDS.fullmatch(text):
        raise ConfigError(
            f"registry session_timeout: {quoted(redact_query_field(text))} is not a number "
            "of seconds"
        )
    return check_session_timeout(float(text))


def _digest(fields: Mapping[str, str]) -> tuple[str, str] | None:
    if "digest" in fields and "digest_file" in fields:
        raise ConfigError("registry: give digest= or digest_file=, not both")
    if "digest" in fields:
        return parse_digest("registry digest", fields["digest"])
    if "digest_file" in fields:
        return read_digest_file("registry digest_file", fields["digest_file"])
    return digest_from_env()


def check_tags(field_name: str, tags: object) -> Mapping[str, str]:
    if not isinstance(tags, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
    ):
        raise ConfigError(f"{field_name}: expected a mapping of str to str, got {tags!r}")
    return dict(tags)
