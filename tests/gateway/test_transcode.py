"""Proto3 JSON in and out: the names, numbers and enums a caller writes, the mistakes
answered 400 naming the field, and replies printed whole (int64 as strings, enums by
name, defaults included)."""

from __future__ import annotations

import dataclasses
import json
from types import ModuleType
from typing import Any

import pytest

from csf.gateway import transcode
from csf.gateway.catalogue import Catalogue, CatalogueBuilder, Found
from csf.gateway.errors import HttpError
from tests.gateway.units import lab_class, node, route, shop_entry


@pytest.fixture(scope="module")
def catalogue(shop: ModuleType) -> Catalogue:
    return CatalogueBuilder().update({("SHOP", "shop.Shop"): node(shop_entry())})


@pytest.fixture(scope="module")
def item(catalogue: Catalogue) -> Any:
    return catalogue.find("POST", "/SHOP/shop.Shop/PutItem").method.input


@pytest.fixture(scope="module")
def everything(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return lab_class(tmp_path_factory.mktemp("lab"), "Everything")


def refused(call: Any, *args: Any) -> HttpError:
    with pytest.raises(HttpError) as raised:
        call(*args)
    assert (raised.value.status, raised.value.code) == (400, "INVALID_ARGUMENT")
    return raised.value


def test_lower_camel_and_original_names_are_both_accepted(item: Any) -> None:
    camel = transcode.from_body(item, b'{"displayName": "a", "inStock": true}')
    original = transcode.from_body(item, b'{"display_name": "a", "in_stock": true}')
    assert camel == original == item(display_name="a", in_stock=True)


def test_int64_is_read_from_a_string_or_a_number_and_enums_by_name_or_number(item: Any) -> None:
    big = 2**63 - 1
    assert transcode.from_body(item, f'{{"id": "{big}"}}'.encode()).id == big
    assert transcode.from_body(item, b'{"id": -42}').id == -42
    assert transcode.from_body(item, b'{"color": "BLUE"}').color == 2
    assert transcode.from_body(item, b'{"color": 1}').color == 1


@pytest.mark.parametrize("body", [b"", b"  \n\t", b"{}"])
def test_an_empty_body_is_the_default_message(item: Any, body: bytes) -> None:
    assert transcode.from_body(item, body) == item()


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b'{"nope": 1}', "nope"),
        (b'{"displayName": "a", "color_name": "RED"}', "color_name"),
        (b'{"count": "many"}', "count"),
        (b'{"id": 1.5}', "id"),
        (b'{"id": "9223372036854775808"}', "id"),  # one past int64
        (b'{"color": "GREEN"}', "GREEN"),
        (b'{"tags": "a"}', "tags"),
        (b'{"inStock": "yes"}', "inStock"),
    ],
)
def test_an_unknown_field_or_a_bad_value_is_a_400_naming_it(
    item: Any, body: bytes, named: str
) -> None:
    assert named in refused(transcode.from_body, item, body).message


@pytest.mark.parametrize(
    "body", [b"{", b"nul", b'{"id": 1,}', b"\xff\xfe\x00", b"[1]", b"5", b'"x"', b"null"]
)
def test_a_body_that_is_no_json_object_is_a_400(item: Any, body: bytes) -> None:
    assert refused(transcode.from_body, item, body).message.startswith("body:")


@pytest.mark.parametrize(
    "body", [b'{"anything": NaN}', b'{"extra": {"a": -Infinity}}', b'{"ratio": 1e400}']
)
def test_non_finite_json_numbers_are_refused_since_a_value_could_not_print_them(
    everything: Any, body: bytes
) -> None:
    assert "invalid JSON" in refused(transcode.from_body, everything, body).message


def test_proto3_json_writes_non_finite_doubles_as_strings_and_they_print_back(
    everything: Any,
) -> None:
    message = transcode.from_body(everything, b'{"ratio": "-Infinity", "anything": "NaN"}')
    assert json.loads(transcode.reply(message))["ratio"] == "-Infinity"
    assert json.loads(transcode.reply(message))["anything"] == "NaN"


def test_the_lines_of_a_body_are_one_message_each_and_blank_lines_are_skipped(item: Any) -> None:
    body = b'{"id": "1"}\n\n{"id": 2}\r\n  \n{}\n'
    assert transcode.from_lines(item, body) == [item(id=1), item(id=2), item()]
    assert transcode.from_lines(item, b"") == []


def test_a_bad_line_is_a_400_naming_its_number_and_field(item: Any) -> None:
    error = refused(transcode.from_lines, item, b'{"id": 1}\n{"id": 2, "nope": 3}\n')
    assert error.message.startswith("line 2:") and "nope" in error.message
    assert refused(transcode.from_lines, item, b"{}\n{\n").message.startswith("line 2:")


def test_more_lines_than_the_limit_are_refused(item: Any) -> None:
    assert len(transcode.from_lines(item, b"{}\n" * transcode.MAX_LINES)) == transcode.MAX_LINES
    assert (
        "more than"
        in refused(transcode.from_lines, item, b"{}\n" * (transcode.MAX_LINES + 1)).message
    )


def test_a_reply_prints_int64_as_strings_enums_by_name_and_every_default(item: Any) -> None:
    assert json.loads(transcode.reply(item())) == {
        "id": "0",
        "displayName": "",
        "color": "COLOR_UNSPECIFIED",
        "count": 0,
        "inStock": False,
        "tags": [],
    }
    full = json.loads(transcode.reply(item(id=-(2**63), color=2, count=-1, tags=["a", "b"])))
    assert (full["id"], full["color"], full["count"], full["tags"]) == (
        str(-(2**63)),
        "BLUE",
        -1,
        ["a", "b"],
    )


def test_a_reply_is_one_compact_line_and_to_json_is_its_value(item: Any) -> None:
    message = item(id=7, display_name="a b\nc")
    printed = transcode.reply(message)
    assert b"\n" not in printed and b", " not in printed
    assert json.loads(printed) == transcode.to_json(message)


def test_a_reply_can_be_only_the_field_the_rule_names(item: Any) -> None:
    assert json.loads(transcode.reply(item(display_name="x"), "display_name")) == "x"
    assert json.loads(transcode.reply(item(), "tags")) == []


def get_item(catalogue: Catalogue, item_id: str) -> Found:
    return catalogue.find("GET", f"/SHOP/v1/items/{item_id}")


def test_path_values_and_query_parameters_fill_the_request(catalogue: Catalogue) -> None:
    found = get_item(catalogue, "9007199254740993")
    request = transcode.from_http(found, [("failWith", "NOT_FOUND"), ("loud", "true")], b"")
    assert (request.id, request.fail_with, request.loud) == (2**53 + 1, "NOT_FOUND", True)
    request = transcode.from_http(found, [("fail_with", "X"), ("loud", "false")], b"")
    assert (request.fail_with, request.loud) == ("X", False)


@pytest.mark.parametrize("flag", ["yes", "1", "True", ""])
def test_a_bool_query_parameter_is_true_or_false_only(catalogue: Catalogue, flag: str) -> None:
    error = refused(transcode.from_http, get_item(catalogue, "1"), [("loud", flag)], b"")
    assert "loud" in error.message


def test_an_unknown_query_parameter_or_a_bad_path_value_is_a_400_naming_it(
    catalogue: Catalogue,
) -> None:
    found = get_item(catalogue, "1")
    assert "nope" in refused(transcode.from_http, found, [("nope", "1")], b"").message
    assert "loud.x" in refused(transcode.from_http, found, [("loud.x", "1")], b"").message
    assert "id" in refused(transcode.from_http, get_item(catalogue, "abc"), [], b"").message


def test_the_path_wins_over_the_body_and_the_whole_body_takes_no_query(
    catalogue: Catalogue,
) -> None:
    found = catalogue.find("PUT", "/SHOP/v1/items/5")
    body = b'{"id": "1", "displayName": "x", "color": "RED"}'
    request = transcode.from_http(found, [("count", "3")], body)
    assert (request.id, request.display_name, request.color, request.count) == (5, "x", 1, 0)
    assert "nope" in refused(transcode.from_http, found, [], b'{"nope": 1}').message
    assert "JSON object" in refused(transcode.from_http, found, [], b"[]").message


def test_the_lookup_binding_reads_the_whole_body(catalogue: Catalogue) -> None:
    found = catalogue.find("POST", "/SHOP/v1/items:lookup")
    request = transcode.from_http(found, [], b'{"id": "12", "failWith": "ABORTED"}')
    assert (request.id, request.fail_with) == (12, "ABORTED")


def test_repeated_query_parameters_collect_in_order(everything: Any) -> None:
    found = route(everything, get="/v1/things")
    query = [("labels", "b"), ("labels", "a"), ("shades", "DARK"), ("shades", "1")]
    request = transcode.from_http(found, query, b"")
    assert list(request.labels) == ["b", "a"] and list(request.shades) == [2, 1]


def test_a_dotted_query_parameter_or_path_variable_fills_a_nested_field(everything: Any) -> None:
    found = dataclasses.replace(
        route(everything, get="/v1/{inner.deeper.note}"), bound={"inner.deeper.note": "n"}
    )
    query = [("inner.weight", "-5"), ("inner.deeper.marks", "1"), ("inner.deeper.marks", "2")]
    request = transcode.from_http(found, query, b"")
    assert (request.inner.weight, request.inner.deeper.note) == (-5, "n")
    assert list(request.inner.deeper.marks) == [1, 2]
    error = refused(transcode.from_http, found, [("inner.nope", "1")], b"")
    assert "inner.nope" in error.message


@pytest.mark.parametrize(
    "name", ["inner", "inners.note", "labels.x", "counts", "by_number.1", "inner..note", ""]
)
def test_a_query_parameter_cannot_set_a_message_or_map_or_reach_through_a_list(
    everything: Any, name: str
) -> None:
    refused(transcode.from_http, route(everything, get="/v1/things"), [(name, "1")], b"")


def test_a_named_body_field_takes_the_body_and_the_query_the_rest(everything: Any) -> None:
    found = route(everything, post="/v1/things", body="inner")
    request = transcode.from_http(found, [("text", "t")], b'{"note": "from body"}')
    assert (request.inner.note, request.text) == ("from body", "t")
    labels = route(everything, post="/v1/things", body="labels")
    assert "set twice" in refused(transcode.from_http, labels, [("labels", "a")], b"{}").message


def test_a_well_known_type_can_come_from_the_url(everything: Any) -> None:
    found = route(everything, get="/v1/things")
    query = [("boxed", "9007199254740993"), ("at", "2024-01-02T03:04:05Z"), ("took", "1.5s")]
    request = transcode.from_http(found, query, b"")
    assert (request.boxed.value, request.at.seconds, request.took.nanos) == (
        2**53 + 1,
        1704164645,
        500_000_000,
    )
    assert "at" in refused(transcode.from_http, found, [("at", "yesterday")], b"").message


def test_unknown_fields_are_refused_inside_nested_messages_too(everything: Any) -> None:
    assert transcode.from_body(everything, b'{"counts": {"a": "1"}}').counts["a"] == 1
    assert "zzz" in refused(transcode.from_body, everything, b'{"inner": {"zzz": 1}}').message
