"""The catalogue of served methods, built from descriptor nodes as `csf-registry import`
stores them: only open services are routed, 404 and 405 answered in the gateway's shape,
a node that stops parsing keeps its last good build, a re-imported one gets new classes,
and any bytes in a node give a build or a DescriptorError."""

from __future__ import annotations

import base64
import json
import logging
from types import ModuleType
from typing import Any

import pytest
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2
from hypothesis import given
from hypothesis import strategies as st

from csf.gateway.catalogue import Catalogue, CatalogueBuilder, NodeKey, build
from csf.gateway.errors import HttpError
from csf.registry.descriptors import DescriptorError
from tests.gateway.units import node, shop_entry
from tests.strategies import examples, json_values, nested

SHOP: NodeKey = ("SHOP", "shop.Shop")


@pytest.fixture(scope="module")
def entry(shop: ModuleType) -> dict[str, Any]:
    return shop_entry()


def refused(catalogue: Catalogue, verb: str, path: str) -> int:
    with pytest.raises(HttpError) as raised:
        catalogue.find(verb, path)
    expected = {404: "NOT_FOUND", 405: "UNIMPLEMENTED"}[raised.value.status]
    assert raised.value.code == expected
    return raised.value.status


def test_a_node_builds_every_method_with_its_kind_classes_and_rules(entry: dict[str, Any]) -> None:
    built = build(SHOP, node(entry))
    assert built.status == "open"
    methods = {method.name: method for method in built.methods}
    assert {name: method.kind for name, method in methods.items()} == {
        "AddItems": "stream_unary",
        "Chat": "stream_stream",
        "GetItem": "unary_unary",
        "ListItems": "unary_stream",
        "PutItem": "unary_unary",
    }
    get_item = methods["GetItem"]
    assert get_item.path == "/shop.Shop/GetItem" and get_item.service == "SHOP"
    assert get_item.input.DESCRIPTOR.full_name == "shop.GetItemRequest"
    assert get_item.output.DESCRIPTOR.full_name == "shop.Item"
    assert get_item.input(id=2**63 - 1).id == 2**63 - 1
    assert [(rule.verb, rule.template) for rule in get_item.rules] == [
        ("GET", "/v1/items/{id}"),
        ("POST", "/v1/items:lookup"),
    ]
    assert methods["ListItems"].rules == ()


def without_file(entry: dict[str, Any], index: int) -> str:
    file_set = descriptor_pb2.FileDescriptorSet.FromString(
        base64.b64decode(entry["file_descriptor_set"])
    )
    del file_set.file[index]
    return base64.b64encode(file_set.SerializeToString()).decode()


def with_template(entry: dict[str, Any], template: str) -> str:
    file_set = descriptor_pb2.FileDescriptorSet.FromString(
        base64.b64decode(entry["file_descriptor_set"])
    )
    shop_file = next(file for file in file_set.file if file.package == "shop")
    get_item = next(method for method in shop_file.service[0].method if method.name == "GetItem")
    get_item.options.Extensions[annotations_pb2.http].get = template
    return base64.b64encode(file_set.SerializeToString()).decode()


def broken_nodes(entry: dict[str, Any]) -> dict[str, bytes]:
    """Nodes that cannot be served, each for its own reason."""
    methods = entry["methods"]
    return {
        "not JSON": b"\x00garbage",
        "no status": json.dumps(entry).encode(),
        "unknown status": node(entry, "half-open"),
        "status not a string": json.dumps({**entry, "status": ["open"]}).encode(),
        "no descriptor set": node(entry, file_descriptor_set="not base64!"),
        "missing dependency": node(entry, file_descriptor_set=without_file(entry, 0)),
        "unknown message": node(entry, methods=[{**methods[0], "input": "shop.Nope"}]),
        "unknown method": node(entry, methods=[{**methods[0], "name": "Nope"}]),
        "bad template": node(entry, file_descriptor_set=with_template(entry, "/v1/{id{x}")),
        "stored at another code": node(entry, service="OTHER"),
        "stored at another service": node(entry, grpc_service="shop.Other"),
    }


def test_a_node_that_cannot_be_served_is_a_descriptor_error_saying_why(
    entry: dict[str, Any],
) -> None:
    for reason, data in broken_nodes(entry).items():
        with pytest.raises(DescriptorError):
            build(SHOP, data)
            pytest.fail(f"built a node with {reason}")


def test_a_broken_node_is_not_served_and_a_good_one_beside_it_is(
    entry: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    other = node(entry, service="SHOP2")
    for reason, data in broken_nodes(entry).items():
        catalogue = CatalogueBuilder().update({SHOP: data, ("SHOP2", "shop.Shop"): other})
        assert catalogue.open_services == {"SHOP2"}, reason
        assert refused(catalogue, "POST", "/SHOP/shop.Shop/GetItem") == 404
        assert SHOP not in catalogue.built
        assert catalogue.find("GET", "/SHOP2/v1/items/1").method.service == "SHOP2"
    assert "not served" in caplog.text


def test_a_node_that_stops_parsing_keeps_its_last_good_build_warned_once(
    entry: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    builder = CatalogueBuilder()
    good = builder.update({SHOP: node(entry)})
    kept = good.find("POST", "/SHOP/shop.Shop/GetItem").method
    with caplog.at_level(logging.WARNING, logger="csf.gateway"):
        for reason, data in broken_nodes(entry).items():
            for _ in range(2):
                catalogue = builder.update({SHOP: data})
                assert catalogue.find("POST", "/SHOP/shop.Shop/GetItem").method is kept, reason
                assert catalogue.built[SHOP].status == "open"
    kept_warnings = [r for r in caplog.records if "last good build kept" in r.getMessage()]
    assert len(kept_warnings) == len(broken_nodes(entry))


def test_a_good_node_again_is_built_again_and_a_removed_node_is_dropped(
    entry: dict[str, Any],
) -> None:
    builder = CatalogueBuilder()
    builder.update({SHOP: b"garbage"})
    again = builder.update({SHOP: node(entry)})
    assert again.find("GET", "/SHOP/v1/items/3").bound == {"id": "3"}
    assert builder.update({}).built == {}
    assert refused(builder.update({SHOP: b"garbage"}), "GET", "/SHOP/v1/items/3") == 404


def test_unchanged_bytes_keep_their_classes_and_a_reimported_node_gets_new_ones(
    entry: dict[str, Any],
) -> None:
    builder = CatalogueBuilder()
    first = builder.update({SHOP: node(entry)}).find("POST", "/SHOP/shop.Shop/PutItem").method
    same = builder.update({SHOP: node(entry)}).find("POST", "/SHOP/shop.Shop/PutItem").method
    assert same is first
    reimported = node(entry, version="2.0.0")
    new = builder.update({SHOP: reimported}).find("POST", "/SHOP/shop.Shop/PutItem").method
    assert new.input is not first.input and new.output is not first.output
    assert new.input.DESCRIPTOR.full_name == first.input.DESCRIPTOR.full_name


@pytest.mark.parametrize("status", ["registered", "online", "offline", "deregistered"])
def test_only_open_services_are_routed(entry: dict[str, Any], status: str) -> None:
    catalogue = CatalogueBuilder().update({SHOP: node(entry, status)})
    assert catalogue.built[SHOP].status == status  # known, so its subscriptions are followed
    assert catalogue.open_services == frozenset()
    assert refused(catalogue, "POST", "/SHOP/shop.Shop/GetItem") == 404
    assert refused(catalogue, "GET", "/SHOP/v1/items/1") == 404


def test_opening_and_closing_is_a_change_of_bytes_like_any_other(entry: dict[str, Any]) -> None:
    builder = CatalogueBuilder()
    assert builder.update({SHOP: node(entry, "online")}).open_services == frozenset()
    assert builder.update({SHOP: node(entry, "open")}).open_services == {"SHOP"}
    assert builder.update({SHOP: node(entry, "offline")}).open_services == frozenset()


@pytest.fixture(scope="module")
def catalogue(entry: dict[str, Any]) -> Catalogue:
    return CatalogueBuilder().update({SHOP: node(entry)})


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "",
        "/NOPE/shop.Shop/GetItem",
        "/SHOP/shop.Other/GetItem",
        "/SHOP/shop.Shop/Nope",
        "/SHOP/shop.Shop/GetItem/more",
        "/SHOP/shop.Shop",
        "/SHOP",
        "/shop/shop.Shop/GetItem",
        "/SHOP/v1/items",
        "/SHOP/v1/items/1/2",
        "/SHOP/v2/items/1",
        "/v1/items/1",  # annotated paths live under their service code
        "/NOPE/v1/items/1",
    ],
)
def test_an_unknown_path_is_404(catalogue: Catalogue, path: str) -> None:
    assert refused(catalogue, "GET", path) == 404
    assert refused(catalogue, "POST", path) == 404


@pytest.mark.parametrize(
    ("verb", "path"),
    [
        ("GET", "/SHOP/shop.Shop/GetItem"),
        ("PUT", "/SHOP/shop.Shop/PutItem"),
        ("DELETE", "/SHOP/v1/items/1"),
        ("POST", "/SHOP/v1/items/1"),
        ("PATCH", "/SHOP/v1/items/1"),
        ("GET", "/SHOP/v1/items:lookup"),
    ],
)
def test_a_known_path_with_the_wrong_verb_is_405(
    catalogue: Catalogue, verb: str, path: str
) -> None:
    assert refused(catalogue, verb, path) == 405


def test_each_verb_of_a_path_finds_its_method_and_rule(catalogue: Catalogue) -> None:
    generic = catalogue.find("POST", "/SHOP/shop.Shop/ListItems")
    assert (generic.method.name, generic.rule, dict(generic.bound)) == ("ListItems", None, {})
    get = catalogue.find("GET", "/SHOP/v1/items/-1")
    put = catalogue.find("PUT", "/SHOP/v1/items/-1")
    lookup = catalogue.find("POST", "/SHOP/v1/items:lookup")
    assert (get.method.name, put.method.name, lookup.method.name) == (
        "GetItem",
        "PutItem",
        "GetItem",
    )
    assert get.rule is not None and get.rule.verb == "GET" and get.bound == {"id": "-1"}
    assert put.rule is not None and put.rule.body == "*"


def test_two_service_codes_with_the_same_annotated_path_do_not_clash(
    entry: dict[str, Any],
) -> None:
    second = ("SHOP2", "shop.Shop")
    builder = CatalogueBuilder()
    both = builder.update({SHOP: node(entry), second: node(entry, service="SHOP2")})
    assert both.open_services == {"SHOP", "SHOP2"}
    assert both.find("GET", "/SHOP/v1/items/1").method.service == "SHOP"
    assert both.find("GET", "/SHOP2/v1/items/1").method.service == "SHOP2"
    assert both.find("POST", "/SHOP2/shop.Shop/GetItem").method.service == "SHOP2"
    one = builder.update({SHOP: node(entry, "offline"), second: node(entry, service="SHOP2")})
    assert one.find("GET", "/SHOP2/v1/items/1").method.service == "SHOP2"
    assert refused(one, "GET", "/SHOP/v1/items/1") == 404


@examples(150)
@given(data=st.data())
def test_any_node_builds_or_is_a_descriptor_error(
    entry: dict[str, Any], data: st.DataObject
) -> None:
    """Anyone may write a node: whatever it holds, the builder never raises anything else."""
    keys = st.sampled_from([*entry, "status", "x"])
    mutated = {**entry, "status": "open"}
    for key, value in data.draw(st.dictionaries(keys, json_values(), max_size=3)).items():
        mutated[key] = value
    if data.draw(st.booleans()):
        garbage = data.draw(st.binary(max_size=300))
        mutated["file_descriptor_set"] = base64.b64encode(garbage).decode()
    raw = data.draw(
        st.just(json.dumps(mutated).encode())
        | st.binary(max_size=100)
        | st.just(nested(30_000, b'{"status": "open", "x": ', b"}"))
    )
    try:
        built = build(SHOP, raw)
    except DescriptorError:
        return
    assert built.status == "open" and built.methods
    assert CatalogueBuilder().update({SHOP: raw}).open_services == {"SHOP"}
