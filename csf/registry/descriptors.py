"""Service descriptors: what a provider serves, exported from its code for csf-registry.

A descriptor document (JSON, `"schema": 1`) lists each `@csf.provider` class's
microservice code and version, its gRPC services with each method's kind and message
type names, and the serialized FileDescriptorSet of their protos (base64), so that a
tool can call the service without its Python code.
"""

from __future__ import annotations

import base64
import importlib
import inspect
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import FileDescriptor

from csf._exceptions import ConfigError
from csf._json import has_schema
from csf.config import check_name
from csf.provider import ProviderSpec, _HandlerRecorder, find_add_function
from csf.registry.lifecycle import LifecycleFormatError, parse_status

DESCRIPTOR_SCHEMA = 1
KINDS = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")


class DescriptorError(ConfigError):
    """A descriptor document that cannot be imported; the message says why."""


@dataclass(frozen=True)
class ServiceDescriptor:
    """One gRPC service of one microservice, as it is stored under `services/`."""

    service: str
    grpc_service: str
    version: str
    methods: tuple[Mapping[str, str], ...]
    file_descriptor_set: str

    def to_document(self, status: str) -> dict[str, Any]:
        return {
            "schema": DESCRIPTOR_SCHEMA,
            "service": self.service,
            "grpc_service": self.grpc_service,
            "version": self.version,
            "methods": [dict(method) for method in self.methods],
            "file_descriptor_set": self.file_descriptor_set,
            "status": status,
        }


def _file_set(files: Iterable[FileDescriptor]) -> descriptor_pb2.FileDescriptorSet:
    """The files and everything they import, dependencies first."""
    found = descriptor_pb2.FileDescriptorSet()
    seen: set[str] = set()

    def add(file: FileDescriptor) -> None:
        if file.name in seen:
            return
        seen.add(file.name)
        for dependency in file.dependencies:
            add(dependency)
        file.CopyToProto(found.file.add())

    for file in files:
        add(file)
    return found


def describe(servicer_class: type) -> list[ServiceDescriptor]:
    """The descriptors of one `@csf.provider` class, one per gRPC service it serves."""
    spec = getattr(servicer_class, "__csf_provider__", None)
    if not isinstance(spec, ProviderSpec):
        raise ConfigError(f"{servicer_class.__name__} is not decorated with @csf.provider")
    recorder = _HandlerRecorder()
    # The generated add_*_to_server only reads bound methods: no need to run __init__.
    servicer: object = object.__new__(servicer_class)
    find_add_function(servicer)(servicer, recorder)
    pool = descriptor_pool.Default()
    descriptors = []
    for grpc_service, handlers in sorted(recorder.method_handlers.items()):
        proto = pool.FindServiceByName(grpc_service)
        methods = []
        for name in sorted(handlers):
            method = proto.methods_by_name[name]
            kind = f"{'stream' if method.client_streaming else 'unary'}_" + (
                "stream" if method.server_streaming else "unary"
            )
            methods.append({
                "name": name,
                "kind": kind,
                "input": method.input_type.full_name,
                "output": method.output_type.full_name,
            })  # fmt: skip
        file_set = _file_set([proto.file]).SerializeToString()
        descriptors.append(
            ServiceDescriptor(
                service=spec.service,
                grpc_service=grpc_service,
                version=spec.version,
                methods=tuple(methods),
                file_descriptor_set=base64.b64encode(file_set).decode(),
            )
        )
    return descriptors


def export(targets: Iterable[str]) -> dict[str, Any]:
    """The descriptor document of `MODULE[:CLASS]` targets; ConfigError naming a bad one."""
    classes: list[type] = []
    for target in targets:
        module_name, _, class_name = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError(f"{target}: cannot import {module_name}: {exc}") from exc
        if class_name:
            found = getattr(module, class_name, None)
            if not inspect.isclass(found):
                raise ConfigError(f"{target}: {module_name} has no class {class_name}")
            classes.append(found)
        else:
            providers = [
                value
                for value in vars(module).values()
                if inspect.isclass(value)
                and value.__module__ == module.__name__
                and isinstance(getattr(value, "__csf_provider__", None), ProviderSpec)
            ]
            if not providers:
                raise ConfigError(f"{target}: no @csf.provider class in {module_name}")
            classes.extend(providers)
    # Provider classes of one service (groups normal and gray, say) describe it alike.
    documents: dict[tuple[str, str], dict[str, Any]] = {}
    for descriptor in (descriptor for cls in classes for descriptor in describe(cls)):
        key = (descriptor.service, descriptor.grpc_service)
        document = descriptor.to_document("registered")
        if documents.setdefault(key, document) != document:
            raise ConfigError(
                f"{descriptor.grpc_service} of {descriptor.service}: two provider classes "
                "describe it differently (version or methods); export one of them"
            )
    return {"schema": DESCRIPTOR_SCHEMA, "services": list(documents.values())}


def parse(document: object) -> list[ServiceDescriptor]:
    """Validate a descriptor document; DescriptorError saying what is wrong."""
    if not isinstance(document, dict) or not has_schema(document, DESCRIPTOR_SCHEMA):
        raise DescriptorError(f'descriptor: expected an object with "schema": {DESCRIPTOR_SCHEMA}')
    entries = document.get("services")
    if not isinstance(entries, list) or not entries:
        raise DescriptorError("descriptor.services: expected a non-empty list")
    return [_parse_entry(index, entry) for index, entry in enumerate(entries)]


def _parse_entry(index: int, entry: object) -> ServiceDescriptor:
    where = f"descriptor.services[{index}]"
    if not isinstance(entry, dict):
        raise DescriptorError(f"{where}: expected an object")
    try:
        service = check_name(f"{where}.service", entry.get("service"))
    except ConfigError as exc:
        raise DescriptorError(str(exc)) from None
    grpc_service, version = entry.get("grpc_service"), entry.get("version", "")
    if not isinstance(grpc_service, str) or not grpc_service or "/" in grpc_service:
        raise DescriptorError(f"{where}.grpc_service: expected a full gRPC service name")
    if not isinstance(version, str):
        raise DescriptorError(f"{where}.version: expected a string")
    methods = entry.get("methods")
    if not isinstance(methods, list) or not methods:
        raise DescriptorError(f"{where}.methods: expected a non-empty list")
    for method in methods:
        if (
            not isinstance(method, dict)
            or not all(isinstance(method.get(k), str) for k in ("name", "kind", "input", "output"))
            or method["kind"] not in KINDS
        ):
            raise DescriptorError(
                f"{where}.methods: each needs name, kind ({', '.join(KINDS)}), input, output"
            )
    encoded = entry.get("file_descriptor_set")
    try:
        if not isinstance(encoded, str):
            raise TypeError(encoded)
        file_set = descriptor_pb2.FileDescriptorSet.FromString(
            base64.b64decode(encoded, validate=True)
        )
    except Exception:
        raise DescriptorError(
            f"{where}.file_descriptor_set: not a base64 FileDescriptorSet"
        ) from None
    declared = {
        f"{file.package}.{svc.name}" if file.package else svc.name: {m.name for m in svc.method}
        for file in file_set.file
        for svc in file.service
    }
    missing = {m["name"] for m in methods} - declared.get(grpc_service, set())
    if grpc_service not in declared or missing:
        raise DescriptorError(
            f"{where}: the FileDescriptorSet does not declare {grpc_service} with {sorted(missing)}"
        )
    return ServiceDescriptor(service, grpc_service, version, tuple(methods), str(encoded))


def parse_stored(data: bytes) -> tuple[ServiceDescriptor, str]:
    """A node under `services/` (what `import` wrote): its descriptor and lifecycle status;
    DescriptorError saying what is wrong, whoever wrote the node."""
    try:
        status = parse_status(data)
        document = json.loads(data)
    except LifecycleFormatError as exc:
        raise DescriptorError(f"descriptor node: {exc}") from None
    return _parse_entry(0, document), status
