"""What operators hand csf-registry (descriptor files, --zk URLs), as properties: any
descriptor document gives descriptors or a DescriptorError, any file one line on stderr
and exit code 1 or 2, any --zk that is not a zk:// URL exit code 2; never a traceback."""

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st
from typer.testing import CliRunner

import csf
from csf.config import ZooKeeperURL, parse_registry_url
from csf.registry.cli import app
from csf.registry.descriptors import KINDS, DescriptorError, describe, export, parse
from demo.providers import Greeter
from tests.strategies import DEEP, examples, json_values, nested
from tests.test_config_properties import near_urls, queries

EXPORTED = export(["demo.providers"])
# Nothing listens here: a command that got as far as connecting would fail with 3.
NOWHERE = "zk://127.0.0.1:1"
USAGE, REFUSED = 2, 1


def run(*args: str) -> tuple[int, str]:
    """csf-registry's exit code and stderr; an exception escaping it fails the test."""
    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stderr


def assert_one_line_of_refusal(code: int, stderr: str, codes: set[int]) -> None:
    assert code in codes, stderr
    assert stderr.startswith("csf-registry: ") and stderr.count("\n") == 1, stderr


# -- descriptor documents: descriptors.parse -------------------------------------------------


def test_an_exported_document_parses_into_the_descriptors_of_its_classes() -> None:
    assert parse(copy.deepcopy(EXPORTED)) == describe(Greeter)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a JSON document."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


PATHS = _paths(EXPORTED)


@st.composite
def changed_exports(draw: st.DrawFn) -> Any:
    """The exported document with one to three values replaced by any JSON value, or
    removed."""
    document = copy.deepcopy(EXPORTED)
    for path in draw(st.lists(st.sampled_from(PATHS[1:]), min_size=1, max_size=3)):
        parent = document
        try:
            for step in path[:-1]:
                parent = parent[step]
            if draw(st.booleans()):
                parent[path[-1]] = draw(json_values(leaves=4))
            else:
                del parent[path[-1]]
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed or replaced this path
    return document


def _with(value: Any, *path: Any) -> Any:
    """The exported document with the value at `path` replaced."""
    document = copy.deepcopy(EXPORTED)
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return document


@given(document=changed_exports() | json_values())
@examples(1000)
@example(document={"schema": 1, "services": []})
@example(document={"schema": 1, "services": [{"service": "XIESR"}]})
@example(document=_with("bidi", "services", 0, "methods", 0, "kind"))
@example(document=_with("demo.Nope", "services", 0, "grpc_service"))
@example(document=_with("bm90IHByb3Rv", "services", 0, "file_descriptor_set"))
def test_any_descriptor_document_gives_descriptors_or_a_descriptor_error(document: Any) -> None:
    try:
        descriptors = parse(document)
    except DescriptorError as error:
        assert isinstance(error, csf.ConfigError) and str(error).startswith("descriptor")
        return
    assert descriptors
    for descriptor in descriptors:
        assert isinstance(descriptor.service, str) and isinstance(descriptor.version, str)
        assert descriptor.methods
        assert all(method["kind"] in KINDS for method in descriptor.methods)


def test_a_descriptor_whose_schema_is_true_is_refused() -> None:
    assert parse(EXPORTED)
    with pytest.raises(DescriptorError, match="schema"):
        parse({**EXPORTED, "schema": True})


# -- csf-registry import FILE -----------------------------------------------------------------


@pytest.fixture(scope="module")
def descriptor_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("descriptors") / "file.json"


@given(data=st.binary(max_size=300))
@examples(30)
@example(data=b"")
@example(data=b"\xff")
@example(data=b"[]")
@example(data=b'{"schema": 1}')
def test_importing_any_file_is_refused_in_one_line(descriptor_file: Path, data: bytes) -> None:
    descriptor_file.write_bytes(data)
    code, stderr = run("--zk", NOWHERE, "import", str(descriptor_file))
    assert_one_line_of_refusal(code, stderr, {REFUSED})


def test_importing_a_file_that_is_not_there_is_a_usage_error(tmp_path: Path) -> None:
    code, stderr = run("--zk", NOWHERE, "import", str(tmp_path / "absent.json"))
    assert_one_line_of_refusal(code, stderr, {USAGE})


# -- csf-registry --zk URL --------------------------------------------------------------------


def _not_a_zk_url(text: str) -> bool:
    try:
        return not isinstance(parse_registry_url(text), ZooKeeperURL)
    except csf.ConfigError:
        return True


@given(text=near_urls | queries.map("zk://h1:2181?{}".format))
@examples(30)
@example(text="static://127.0.0.1:1")
@example(text="zk://h1:2181?digest=nopassword")
def test_a_zk_option_that_is_not_a_zk_url_is_a_usage_error_in_one_line(text: str) -> None:
    assume(_not_a_zk_url(text))
    code, stderr = run("--zk", text, "providers", "XIESR")
    assert_one_line_of_refusal(code, stderr, {USAGE})
    assert stderr.startswith("csf-registry: --zk: ")


# -- inputs that once ended in a traceback ----------------------------------------------------


def test_importing_a_deeply_nested_file_is_refused_in_one_line(descriptor_file: Path) -> None:
    descriptor_file.write_bytes(nested(DEEP))
    code, stderr = run("--zk", NOWHERE, "import", str(descriptor_file))
    assert_one_line_of_refusal(code, stderr, {REFUSED})


@pytest.mark.parametrize("text", ["zk://h1:2181?x", "zk://h1:\u00b2"])
def test_a_zk_option_the_parser_chokes_on_is_a_usage_error_in_one_line(text: str) -> None:
    code, stderr = run("--zk", text, "providers", "XIESR")
    assert_one_line_of_refusal(code, stderr, {USAGE})
