"""Helpers of the gateway's unit tests: the shop's descriptor node as `csf-registry import`
stores it, message classes of protos/lab/lab.proto built the way the gateway builds them (a
FileDescriptorSet into a descriptor pool of its own), and an annotated route onto them."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_tools import protoc

from csf.gateway.catalogue import Found, Method
from csf.gateway.routes import http_rules
from csf.registry.descriptors import export

PROTOS = Path(__file__).parent / "protos"


def shop_entry() -> dict[str, Any]:
    """The shop's descriptor entry, without a status (the `shop` fixture must have built
    shop_pb2)."""
    (entry,) = export(["tests.gateway.shop_service:Shop"])["services"]
    return {key: value for key, value in entry.items() if key != "status"}


def node(entry: dict[str, Any], status: str = "open", **changes: Any) -> bytes:
    """What a node under services/ holds: a descriptor entry with its status."""
    return json.dumps({**entry, **changes, "status": status}).encode()


@functools.cache
def _pool(target: Path) -> descriptor_pool.DescriptorPool:
    out = target / "lab.pb"
    code = protoc.main([
        "protoc",
        f"-I{PROTOS}",
        f"-I{Path(protoc.__file__).parent / '_proto'}",
        "--include_imports",
        f"--descriptor_set_out={out}",
        str(PROTOS / "lab" / "lab.proto"),
    ])  # fmt: skip
    assert code == 0, "protoc failed on lab.proto"
    pool = descriptor_pool.DescriptorPool()
    for file in descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file:
        pool.Add(file)
    return pool


def lab_class(target: Path, name: str) -> Any:
    """The message class `lab.<name>`, protoc's output written under `target`."""
    return message_factory.GetMessageClass(_pool(target).FindMessageTypeByName(f"lab.{name}"))


def route(message_class: Any, **binding: Any) -> Found:
    """The Found of an annotated route onto `message_class` (http_pb2.HttpRule fields in
    `binding`, e.g. get="/v1/{text}", body="inner"), with no bound path values yet."""
    proto = descriptor_pb2.MethodDescriptorProto(name="Call")
    proto.options.Extensions[annotations_pb2.http].CopyFrom(http_pb2.HttpRule(**binding))
    (rule,) = http_rules(proto)
    method = Method("LAB", "lab.Lab", "Call", "unary_unary", message_class, message_class, (rule,))
    return Found(method, rule, {})
