"""The instance document a provider writes into its ephemeral znode (DESIGN section 2)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from csf import bounds
from csf._exceptions import ConfigError
from csf._json import has_schema, load_json_object
from csf.config import DEFAULT_GROUP, DEFAULT_WARMUP, DEFAULT_WEIGHT, check_host
from csf.set_rule import SetName

INSTANCE_SCHEMA = 1
MAX_INSTANCE_BYTES = 64 * 1024


class InstanceFormatError(ValueError):
    """Instance data that CSF cannot use; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Instance:
    """One provider process serving one microservice, as consumers see it."""

    host: str
    port: int
    weight: int = DEFAULT_WEIGHT
    version: str = ""
    group: str = DEFAULT_GROUP
    tags: Mapping[str, str] = field(default_factory=dict)
    services: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """gRPC service full name -> its method names."""
    pid: int = 0
    start_time: float = 0.0
    """Unix time the provider started; load balancers ramp its weight up from it."""
    warmup: float = DEFAULT_WARMUP
    """Seconds over which its weight ramps up from start_time; 0 for none."""
    tls: bool = False
    set: str | None = None
    """The SET (cell) it belongs to, `<name>.<area>.<group>`; None: no SET."""
    metrics_port: int | None = None
    """Where on `host` it serves its metrics for Prometheus (`/metrics`); None: nowhere."""

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def to_json(self) -> bytes:
        return json.dumps(self.to_document(), separators=(",", ":"), sort_keys=True).encode()

    def to_document(self) -> dict[str, Any]:
        document = {
            "schema": INSTANCE_SCHEMA,
            "host": self.host,
            "port": self.port,
            "weight": self.weight,
            "version": self.version,
            "group": self.group,
            "tags": dict(self.tags),
            "services": {name: list(methods) for name, methods in self.services.items()},
            "pid": self.pid,
            "start_time": self.start_time,
            "warmup": self.warmup,
            "tls": self.tls,
        }
        if self.set is not None:
            document["set"] = self.set
        if self.metrics_port is not None:
            document["metrics_port"] = self.metrics_port
        return document

    @classmethod
    def from_json(cls, data: bytes) -> Instance:
        """Parse instance data; unknown fields are ignored, anything else wrong raises."""
        try:
            doc = load_json_object(data, MAX_INSTANCE_BYTES)
        except ValueError as exc:
            raise InstanceFormatError(str(exc)) from None
        return cls.from_document(doc)

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Instance:
        """An instance from its parsed JSON object; InstanceFormatError if it is wrong."""
        if not has_schema(doc, INSTANCE_SCHEMA):
            raise InstanceFormatError(f"schema {doc.get('schema')!r}, expected {INSTANCE_SCHEMA}")
        services = _typed(doc, "services", dict, {})
        if not all(
            isinstance(methods, list) and all(isinstance(m, str) for m in methods)
            for methods in services.values()
        ):
            raise InstanceFormatError("services: expected {service: [method, ...]}")
        tags = _typed(doc, "tags", dict, {})
        if not all(isinstance(v, str) for v in tags.values()):
            raise InstanceFormatError("tags: expected string values")
        try:
            host = check_host("host", _typed(doc, "host", str))
        except ConfigError as exc:
            raise InstanceFormatError(str(exc)) from None
        set_name = doc.get("set")
        if set_name is not None:
            set_name = str(SetName.parse("set", set_name, InstanceFormatError))
        return cls(
            host=host,
            port=_whole(doc, "port", bounds.PORT),
            weight=_whole(doc, "weight", bounds.WEIGHT, DEFAULT_WEIGHT),
            version=_typed(doc, "version", str, ""),
            group=_typed(doc, "group", str, DEFAULT_GROUP),
            tags=tags,
            services={name: tuple(methods) for name, methods in services.items()},
            pid=_whole(doc, "pid", bounds.PID, 0),
            start_time=_number(doc, "start_time", bounds.START_TIME, 0.0),
            warmup=_number(doc, "warmup", bounds.WARMUP_S, DEFAULT_WARMUP),
            tls=_typed(doc, "tls", bool, False),
            set=set_name,
            metrics_port=_optional_whole(doc, "metrics_port", bounds.PORT),
        )


_REQUIRED = object()


def _typed(
    doc: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any = _REQUIRED
) -> Any:
    if key not in doc:
        if default is _REQUIRED:
            raise InstanceFormatError(f"{key}: missing")
        return default
    value = doc[key]
    # bool is an int in Python; a JSON true is not a port.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise InstanceFormatError(f"{key}: {value!r} has the wrong type")
    return value


def _whole(doc: dict[str, Any], key: str, bound: bounds.Bound, default: Any = _REQUIRED) -> int:
    return bound.check_whole(key, _typed(doc, key, int, default), InstanceFormatError)


def _optional_whole(doc: dict[str, Any], key: str, bound: bounds.Bound) -> int | None:
    return None if doc.get(key) is None else _whole(doc, key, bound)


def _number(doc: dict[str, Any], key: str, bound: bounds.Bound, default: Any = _REQUIRED) -> float:
    return bound.check(key, _typed(doc, key, (int, float), default), InstanceFormatError)
