"""Transcoding as properties: whatever bytes, query parameters or path values a caller
sends, the gateway gets a request message or a 400, never another exception (it never
answers 500 for a caller's mistake); what it accepted it can print back, and printing
then reading gives the same message; any int64 survives the trip as a string."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from google.protobuf.message import Message
from hypothesis import example, given
from hypothesis import strategies as st

from csf.gateway import transcode
from csf.gateway.catalogue import Catalogue, CatalogueBuilder, Found
from csf.gateway.errors import HttpError
from tests.gateway.units import lab_class, node, route, shop_entry
from tests.strategies import examples, hostile_numbers, json_values, long_strings, nested


@pytest.fixture(scope="module")
def catalogue(shop: ModuleType) -> Catalogue:
    return CatalogueBuilder().update({("SHOP", "shop.Shop"): node(shop_entry())})


@pytest.fixture(scope="module")
def classes(catalogue: Catalogue, tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    target = tmp_path_factory.mktemp("lab")
    item = catalogue.find("POST", "/SHOP/shop.Shop/PutItem").method.input
    return [item, lab_class(target, "Everything"), lab_class(target, "Inner")]


def names_of(message_class: Any) -> list[str]:
    fields = message_class.DESCRIPTOR.fields
    return [f.name for f in fields] + [f.json_name for f in fields]


# Field names of shop.Item and lab.Everything (both spellings), dotted paths, and junk.
LAB_NAMES = [
    "small", "big", "unsignedBig", "signed_small", "fixedBig", "ratio", "rough", "flag", "text",
    "blob", "shade", "inner", "inners", "labels", "shades", "counts", "byNumber", "by_number",
    "maybe", "name", "number", "boxed", "at", "took", "extra", "anything", "mask", "packed",
    "list", "id", "displayName", "display_name", "color", "count", "inStock", "tags",
    "inner.note", "inner.deeper.weight", "inner.marks", "inners.note", "counts.a", "note",
    "weight", "deeper", "marks", "", ".", "inner.", "nope", "@type", "by_number.1",
]  # fmt: skip
field_names = st.sampled_from(LAB_NAMES) | st.text(max_size=12)
values = json_values(hostile_numbers | st.integers(), leaves=8)
url_texts = st.text(max_size=12) | long_strings | st.sampled_from(
    ["true", "false", "1", "-1", "1e3", "NaN", "-Infinity", "LIGHT", "DARK", "9" * 30, "1.5s",
     "2024-01-02T03:04:05Z", "AAEC", "null", "{}", "[]", str(2**63), str(-(2**63) - 1)]
)  # fmt: skip
objects = st.dictionaries(field_names, values, max_size=6).map(lambda d: json.dumps(d).encode())
bodies = st.one_of(
    objects,
    values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
    st.lists(objects, max_size=4).map(b"\n".join),
    st.sampled_from([nested(30_000), nested(30_000, b'{"extra": ', b"}"), b'{"anything": NaN}']),
)


def answered(call: Callable[[], Any]) -> Any:
    """What `call` gives, or None for a 400: any other exception fails the property."""
    try:
        return call()
    except HttpError as error:
        assert (error.status, error.code) == (400, "INVALID_ARGUMENT")
        assert len(error.message) <= 1024
        return None


def prints_back(message: Message) -> None:
    """An accepted message prints as JSON that reads back to the same message."""
    printed = transcode.reply(message)
    again = transcode.from_body(type(message), printed)
    assert again.SerializeToString(deterministic=True) == message.SerializeToString(
        deterministic=True
    )


@examples(400)
@given(data=st.data(), body=bodies)
@example(data=None, body=b'{"anything": Infinity}')
@example(data=None, body=b'{"extra": {"a": 1e999}}')
def test_any_body_gives_a_message_or_a_400_and_what_is_accepted_prints_back(
    classes: list[Any], data: st.DataObject | None, body: bytes
) -> None:
    message_class = data.draw(st.sampled_from(classes)) if data else classes[1]
    message = answered(lambda: transcode.from_body(message_class, body))
    if message is not None:
        prints_back(message)
    for line in answered(lambda: transcode.from_lines(message_class, body)) or []:
        prints_back(line)


BINDINGS = [
    {"get": "/v1/things"},
    {"get": "/v1/{text}/{inner.note}"},
    {"post": "/v1/things", "body": "*"},
    {"post": "/v1/things", "body": "inner"},
    {"post": "/v1/things", "body": "labels"},
    {"post": "/v1/things", "body": "extra"},
    {"patch": "/v1/{big}", "body": "inners"},
]


@examples(400)
@given(
    binding=st.sampled_from(BINDINGS),
    query=st.lists(st.tuples(field_names, url_texts), max_size=6),
    bound=st.dictionaries(field_names, url_texts, max_size=3),
    body=bodies,
)
@example(binding=BINDINGS[4], query=[("labels", "a")], bound={}, body=b"{}")
def test_any_query_path_values_and_body_give_a_message_or_a_400(
    classes: list[Any],
    binding: dict[str, str],
    query: list[tuple[str, str]],
    bound: dict[str, str],
    body: bytes,
) -> None:
    found = dataclasses.replace(route(classes[1], **binding), bound=bound)
    message = answered(lambda: transcode.from_http(found, query, body))
    if message is not None:
        prints_back(message)


@examples(200)
@given(
    verb_path=st.sampled_from([("GET", "/v1/items/"), ("PUT", "/v1/items/")]),
    item_id=url_texts | st.integers().map(str),
    query=st.lists(
        st.tuples(st.sampled_from(["id", "failWith", "fail_with", "loud", "count"]), url_texts),
        max_size=4,
    ),
    body=bodies,
)
def test_the_shop_routes_give_a_message_or_a_400_for_any_request(
    catalogue: Catalogue,
    verb_path: tuple[str, str],
    item_id: str,
    query: list[tuple[str, str]],
    body: bytes,
) -> None:
    verb, path = verb_path
    found: Found = catalogue.find(verb, "/SHOP" + path + "1")
    found = dataclasses.replace(found, bound={"id": item_id})
    message = answered(lambda: transcode.from_http(found, query, body))
    if message is not None:
        prints_back(message)


@examples(200)
@given(number=st.integers(-(2**63), 2**63 - 1))
@example(number=2**53 + 1)
def test_any_int64_from_the_path_comes_back_as_the_same_decimal_string(
    catalogue: Catalogue, number: int
) -> None:
    found = catalogue.find("PUT", f"/SHOP/v1/items/{number}")
    request = transcode.from_http(found, [], b"{}")
    assert json.loads(transcode.reply(request))["id"] == str(number)
    out_of_range = dataclasses.replace(found, bound={"id": str(number + 2**64)})
    assert answered(lambda: transcode.from_http(out_of_range, [], b"")) is None
