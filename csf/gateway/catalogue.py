"""What the gateway serves: the open gRPC services of a tenant, built from the descriptor
nodes `csf-registry import` wrote under `services/`.

Each node carries its own FileDescriptorSet; it gets its own descriptor pool and message
classes (protobuf's message factory), so two service codes built from different versions
of one .proto never clash, and a re-imported descriptor gets fresh classes. A catalogue
is immutable and built off the request path whenever the nodes change; a node that stops
parsing keeps its last good build (warned once), as the rest of CSF keeps its last good view.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from csf.gateway.errors import HttpError
from csf.gateway.routes import HttpRule, TemplateError, check_fields, http_rules
from csf.registry.descriptors import DescriptorError, ServiceDescriptor, parse_stored

logger = logging.getLogger("csf.gateway")

NodeKey = tuple[str, str]  # (service code, gRPC service)


@dataclass(frozen=True, slots=True)
class Method:
    """One method of one open gRPC service, with its message classes."""

    service: str  # the service code
    grpc_service: str
    name: str
    kind: str  # unary_unary, unary_stream, stream_unary or stream_stream
    input: Any  # the request message class
    output: Any  # the reply message class
    rules: tuple[HttpRule, ...]

    @property
    def path(self) -> str:
        return f"/{self.grpc_service}/{self.name}"


@dataclass(frozen=True, slots=True)
class Built:
    """One descriptor node, compiled."""

    status: str
    methods: tuple[Method, ...]


@dataclass(frozen=True, slots=True)
class Found:
    method: Method
    rule: HttpRule | None  # None: the POST /<code>/<service>/<Method> route
    bound: Mapping[str, str]  # path variables of an annotated route


def build(key: NodeKey, data: bytes) -> Built:
    """Compile one node; DescriptorError saying why it cannot be served."""
    descriptor, status = parse_stored(data)
    if descriptor.service != key[0] or descriptor.grpc_service != key[1]:
        raise DescriptorError(
            f"names {descriptor.service}/{descriptor.grpc_service} but is stored at {key}"
        )
    return Built(status, _methods(descriptor))


def _methods(descriptor: ServiceDescriptor) -> tuple[Method, ...]:
    file_set = descriptor_pb2.FileDescriptorSet.FromString(
        base64.b64decode(descriptor.file_descriptor_set)
    )
    pool = descriptor_pool.DescriptorPool()
    protos: dict[str, descriptor_pb2.MethodDescriptorProto] = {}
    try:
        for file in file_set.file:
            pool.Add(file)
            for service in file.service:
                full = f"{file.package}.{service.name}" if file.package else service.name
                if full == descriptor.grpc_service:
                    protos = {method.name: method for method in service.method}
        methods = []
        for entry in descriptor.methods:
            name = entry["name"]
            request = pool.FindMessageTypeByName(entry["input"])
            reply = pool.FindMessageTypeByName(entry["output"])
            rules = tuple(http_rules(protos[name]))
            for rule in rules:
                check_fields(rule, request, reply)
            methods.append(
                Method(
                    descriptor.service,
                    descriptor.grpc_service,
                    name,
                    entry["kind"],
                    message_factory.GetMessageClass(request),
                    message_factory.GetMessageClass(reply),
                    rules,
                )
            )
    except (TypeError, KeyError, ValueError, TemplateError) as exc:
        raise DescriptorError(
            f"{descriptor.grpc_service}: cannot build its messages: {exc}"
        ) from exc
    return tuple(methods)


class Catalogue:
    """The open methods by route; `find` answers 404 or 405 in the gateway's shape."""

    def __init__(self, built: Mapping[NodeKey, Built]) -> None:
        self.built = dict(built)
        self._methods: dict[tuple[str, str, str], Method] = {}
        self._annotated: dict[str, list[tuple[HttpRule, Method]]] = {}
        for (_, _), node in sorted(self.built.items()):
            if node.status != "open":
                continue
            for method in node.methods:
                self._methods[(method.service, method.grpc_service, method.name)] = method
                for rule in method.rules:
                    self._annotated.setdefault(method.service, []).append((rule, method))

    @property
    def open_methods(self) -> tuple[Method, ...]:
        return tuple(self._methods.values())

    @property
    def open_services(self) -> frozenset[str]:
        return frozenset(service for service, _, _ in self._methods)

    def find(self, verb: str, path: str) -> Found:
        """The method `verb path` (the decoded path) calls; HttpError 404 or 405."""
        code, _, rest = path.lstrip("/").partition("/")
        grpc_service, _, name = rest.partition("/")
        method = self._methods.get((code, grpc_service, name))
        if method is not None:
            if verb != "POST":
                raise HttpError(405, "UNIMPLEMENTED", f"{path} answers POST only")
            return Found(method, None, {})
        wrong_verb = False
        for rule, annotated in self._annotated.get(code, ()):
            bound = rule.match("/" + rest)
            if bound is None:
                continue
            if rule.verb == verb:
                return Found(annotated, rule, bound)
            wrong_verb = True
        if wrong_verb:
            raise HttpError(405, "UNIMPLEMENTED", f"{path} does not answer {verb}")
        raise HttpError(404, "NOT_FOUND", f"no open service method at {path}")


class CatalogueBuilder:
    """Keeps the compiled nodes between changes: only a changed node is compiled again."""

    def __init__(self) -> None:
        self._compiled: dict[NodeKey, tuple[bytes, Built]] = {}
        self._refused: dict[NodeKey, bytes] = {}

    def update(self, nodes: Mapping[NodeKey, bytes]) -> Catalogue:
        compiled: dict[NodeKey, tuple[bytes, Built]] = {}
        for key, data in nodes.items():
            known = self._compiled.get(key)
            if known is not None and known[0] == data:
                compiled[key] = known
                continue
            try:
                compiled[key] = (data, build(key, data))
            except DescriptorError as exc:
                if self._refused.get(key) != data:
                    self._refused[key] = data
                    kept = "its last good build kept" if known else "not served"
                    logger.warning("descriptor %s/%s refused (%s); %s", *key, exc, kept)
                if known is not None:
                    compiled[key] = known
                continue
            self._refused.pop(key, None)
        self._compiled = compiled
        return Catalogue({key: built for key, (_, built) in compiled.items()})
