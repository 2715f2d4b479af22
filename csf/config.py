"""Configuration values: frozen dataclasses, their defaults, and registry URL parsing.

Everything here validates on construction and raises `ConfigError` naming the field,
so the rest of CSF can trust the values it is handed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from csf._exceptions import ConfigError

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

ZK_URL_FORM = "zk://host:port[,host:port...][/chroot][?session_timeout=S&digest=user:password]"
STATIC_URL_FORM = "static://host:port[,host:port...]"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_HOST = re.compile(r"^[A-Za-z0-9._-]+$|^\[[0-9A-Fa-f:.]+\]$")


def check_name(field_name: str, value: object) -> str:
    """A tenant, service, cluster, group or app name: one safe ZooKeeper path segment."""
    if not isinstance(value, str) or not _NAME.match(value):
        raise ConfigError(
            f"{field_name}: {value!r} is not a valid name "
            "(letters, digits, '.', '_', '-'; at most 128; not starting with a symbol)"
        )
    return value


def check_timeout(field_name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{field_name}: expected seconds as a number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{field_name}: must be a positive number of seconds, got {value!r}")
    return float(value)


def check_count(field_name: str, value: object, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{field_name}: expected a whole number >= {minimum}, got {value!r}")
    return value


def parse_address(field_name: str, text: str) -> tuple[str, int]:
    """'host:port' (or '[v6]:port') into its parts."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not host or not _HOST.match(host) or not port_text.isdigit():
        raise ConfigError(f"{field_name}: {text!r} is not host:port")
    port = int(port_text)
    if not 0 < port < 65536:
        raise ConfigError(f"{field_name}: port {port} is out of range in {text!r}")
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
            check_count("MethodConfig.retries", self.retries)
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
        check_count("retries", self.retries)
        if self.hash_key is not None and not callable(self.hash_key):
            raise ConfigError(
                f"hash_key: expected a function of the request, got {self.hash_key!r}"
            )
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
    """A ZooKeeper ensemble: `zk://h1:2181,h2:2181[/chroot]?session_timeout=10&digest=u:pw`."""

    hosts: tuple[tuple[str, int], ...]
    chroot: str = ""
    session_timeout: float = DEFAULT_SESSION_TIMEOUT
    digest: tuple[str, str] | None = field(default=None, repr=False)

    @property
    def connect_string(self) -> str:
        return ",".join(f"{host}:{port}" for host, port in self.hosts) + self.chroot


@dataclass(frozen=True)
class StaticURL:
    """Direct connection to fixed providers, no registry: `static://h:p,h:p`."""

    addresses: tuple[tuple[str, int], ...]


RegistryURL = ZooKeeperURL | StaticURL


def parse_registry_url(url: object) -> RegistryURL:
    """Parse `registry=`; raises `ConfigError` naming the problem and the accepted forms."""
    if not isinstance(url, str):
        raise ConfigError(f"registry: expected a URL string, got {url!r}")
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("zk", "static"):
        raise ConfigError(
            f"registry: {url!r} has no known scheme; accepted forms: {ZK_URL_FORM} or "
            f"{STATIC_URL_FORM}"
        )
    if scheme == "static":
        if not rest or "?" in rest or "/" in rest:
            raise ConfigError(f"registry: {url!r} is not of the form {STATIC_URL_FORM}")
        return StaticURL(tuple(parse_address("registry", part) for part in rest.split(",")))
    return _parse_zk(url, rest)


def _parse_zk(url: str, rest: str) -> ZooKeeperURL:
    location, _, query = rest.partition("?")
    host_text, slash, chroot_tail = location.partition("/")
    if not host_text:
        raise ConfigError(f"registry: {url!r} names no ZooKeeper host; form: {ZK_URL_FORM}")
    hosts = tuple(parse_address("registry", part) for part in host_text.split(","))
    chroot = ""
    if slash and chroot_tail:
        chroot = "/" + chroot_tail.rstrip("/")
        if "//" in chroot or any(not _NAME.match(seg) for seg in chroot.strip("/").split("/")):
            raise ConfigError(f"registry: chroot {chroot!r} in {url!r} is not a valid path")
    session_timeout = DEFAULT_SESSION_TIMEOUT
    digest: tuple[str, str] | None = None
    for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)):
        if key == "session_timeout":
            try:
                session_timeout = check_timeout("registry session_timeout", float(value))
            except ValueError:
                raise ConfigError(
                    f"registry session_timeout: {value!r} is not a number of seconds"
                ) from None
        elif key == "digest":
            user, colon, password = value.partition(":")
            if not colon or not user or not password:
                raise ConfigError("registry digest: expected user:password")
            digest = (user, password)
        else:
            raise ConfigError(
                f"registry: unknown parameter {key!r}; accepted: session_timeout, digest"
            )
    return ZooKeeperURL(hosts, chroot, session_timeout, digest)


def check_tags(field_name: str, tags: object) -> Mapping[str, str]:
    if not isinstance(tags, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
    ):
        raise ConfigError(f"{field_name}: expected a mapping of str to str, got {tags!r}")
    return dict(tags)
