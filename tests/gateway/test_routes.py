"""google.api.http path templates as routes: what a template matches and binds, the
templates refused, and the rules of the shop's annotated methods."""

from __future__ import annotations

from types import ModuleType

import pytest
from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2

from csf.gateway.routes import HttpRule, TemplateError, compile_template, http_rules


def rule(template: str, verb: str = "GET") -> HttpRule:
    pattern, fields = compile_template(template)
    return HttpRule(verb, template, pattern, fields, "", "")


@pytest.mark.parametrize(
    ("template", "path", "bound"),
    [
        ("/v1/items", "/v1/items", {}),
        ("/v1/items/{id}", "/v1/items/42", {"id": "42"}),
        ("/v1/{shelf.name}/books", "/v1/fiction/books", {"shelf.name": "fiction"}),
        ("/v1/{name=shelves/*}", "/v1/shelves/s1", {"name": "shelves/s1"}),
        (
            "/v1/{name=shelves/*/books/**}",
            "/v1/shelves/s1/books/a/b/c",
            {"name": "shelves/s1/books/a/b/c"},
        ),
        ("/v1/files/**", "/v1/files/a/b.txt", {}),
        ("/v1/*/items", "/v1/anything/items", {}),
        ("/v1/items/{id}:cancel", "/v1/items/7:cancel", {"id": "7"}),
        ("/v1/items:lookup", "/v1/items:lookup", {}),
        ("/v1/{shelf}/{book}", "/v1/s/b", {"shelf": "s", "book": "b"}),
        ("/v1/{path=**}:do", "/v1/a/b:c:do", {"path": "a/b:c"}),
    ],
)
def test_a_template_matches_its_paths_and_binds_its_variables(
    template: str, path: str, bound: dict[str, str]
) -> None:
    assert rule(template).match(path) == bound


@pytest.mark.parametrize(
    ("template", "path"),
    [
        ("/v1/items", "/v1/items/"),
        ("/v1/items", "/v1/itemsx"),
        ("/v1/items", "/x/v1/items"),
        ("/v1/items/{id}", "/v1/items"),
        ("/v1/items/{id}", "/v1/items/4/2"),  # one variable is one segment
        ("/v1/items/{id}", "/v1/items/"),
        ("/v1/{name=shelves/*}", "/v1/boxes/s1"),
        ("/v1/{name=shelves/*}", "/v1/shelves/s1/x"),
        ("/v1/files/**", "/v1/files/"),
        ("/v1/items/{id}:cancel", "/v1/items/7"),
        ("/v1/items/{id}:cancel", "/v1/items/7:undo"),
        ("/v1/items:lookup", "/v1/items"),
        ("/v1/a.b", "/v1/aXb"),  # literals are literal, not regular expressions
    ],
)
def test_a_template_does_not_match_other_paths(template: str, path: str) -> None:
    assert rule(template).match(path) is None


def test_the_fields_come_in_template_order() -> None:
    assert compile_template("/v1/{b}/{a.c=x/*}/{d}")[1] == ("b", "a.c", "d")


@pytest.mark.parametrize(
    "template",
    [
        "v1/items",  # no leading slash
        "",
        "/",  # no segment at all
        "/v1//items",  # an empty segment
        "/v1/items/",
        "/v1/{id}/{id}",  # a field bound twice
        "/v1/{}",
        "/v1/{1st}",
        "/v1/{a..b}",
        "/v1/{a=}",
        "/v1/{a=x//y}",
        "/v1/{a",
        "/v1/a}",
        "/v1/{a{b}}",
        "/v1/{id}x",  # a variable is a whole segment
        "/v1/{a}{b}",
        "/v1/items:",  # an empty verb
        "/v1/{id}:",
        "/v1/a b",
        "/v1/a?b",
        "/v1/a#b",
        "/v1/(.*)",  # no regular expression gets through
        "/v1/a:b/c",
    ],
)
def test_a_template_outside_the_grammar_is_refused(template: str) -> None:
    with pytest.raises(TemplateError):
        compile_template(template)


def method_with(binding: http_pb2.HttpRule | None) -> descriptor_pb2.MethodDescriptorProto:
    method = descriptor_pb2.MethodDescriptorProto(name="Call", input_type=".x.In")
    if binding is not None:
        method.options.Extensions[annotations_pb2.http].CopyFrom(binding)
    return method


def test_a_method_without_annotation_has_no_rules() -> None:
    assert http_rules(method_with(None)) == []


def test_a_custom_verb_and_the_response_body_are_kept() -> None:
    custom = http_pb2.CustomHttpPattern(kind="HEAD", path="/v1/{id}")
    (found,) = http_rules(method_with(http_pb2.HttpRule(custom=custom, response_body="item")))
    assert (found.verb, found.template, found.fields) == ("HEAD", "/v1/{id}", ("id",))
    assert found.response_body == "item"


def test_a_rule_without_a_pattern_or_with_a_bad_template_is_refused() -> None:
    with pytest.raises(TemplateError):
        http_rules(method_with(http_pb2.HttpRule(body="*")))
    with pytest.raises(TemplateError):
        http_rules(method_with(http_pb2.HttpRule(get="/v1/{id")))
    bad_extra = http_pb2.HttpRule(get="/v1/ok", additional_bindings=[{"post": "v1/no-slash"}])
    with pytest.raises(TemplateError):
        http_rules(method_with(bad_extra))


def shop_method(shop: ModuleType, name: str) -> descriptor_pb2.MethodDescriptorProto:
    service = descriptor_pb2.ServiceDescriptorProto()
    shop.shop_pb2.DESCRIPTOR.services_by_name["Shop"].CopyToProto(service)
    return next(method for method in service.method if method.name == name)


def test_get_item_has_its_get_route_and_the_additional_post_binding(shop: ModuleType) -> None:
    get, lookup = http_rules(shop_method(shop, "GetItem"))
    assert (get.verb, get.template, get.fields, get.body) == ("GET", "/v1/items/{id}", ("id",), "")
    assert get.match("/v1/items/-9007199254740993") == {"id": "-9007199254740993"}
    assert (lookup.verb, lookup.template, lookup.body) == ("POST", "/v1/items:lookup", "*")
    assert lookup.match("/v1/items:lookup") == {}
    assert lookup.match("/v1/items/lookup") is None


def test_put_item_takes_the_whole_body_and_the_id_from_the_path(shop: ModuleType) -> None:
    (put,) = http_rules(shop_method(shop, "PutItem"))
    assert (put.verb, put.fields, put.body) == ("PUT", ("id",), "*")
    assert put.match("/v1/items/5") == {"id": "5"}


def test_unannotated_shop_methods_have_no_rules(shop: ModuleType) -> None:
    for name in ("ListItems", "AddItems", "Chat"):
        assert http_rules(shop_method(shop, name)) == []
