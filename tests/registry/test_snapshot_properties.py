"""Snapshot files as outside data: any bytes, any JSON (NaN, Infinity, huge numbers, deep
nesting, wrong types) load as a list of valid instances (or, for a rules snapshot, valid
rule documents) or as None, never an exception."""

import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from csf.registry import Instance, ServiceKey
from csf.registry.snapshot import (
    MAX_SNAPSHOT_AGE,
    SavedRule,
    SnapshotFormatError,
    SnapshotStore,
    parse_rules_snapshot,
    parse_snapshot,
)
from csf.rules import PARSERS, TimeoutRule, parse_rule
from tests.registry.test_instance_properties import (
    NUMBERS,
    assert_bounded,
    instance_documents,
    instances,
)
from tests.strategies import (
    DEEP,
    HUGE,
    encoded,
    examples,
    hostile_numbers,
    json_values,
    nested,
    tame_numbers,
)

KEY = ServiceKey("TenantA", "XIESR", "defaultCluster")
VALID = Instance(host="127.0.0.1", port=50051).to_document()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> SnapshotStore:
    store = SnapshotStore(tmp_path_factory.mktemp("snapshots"))
    store.save(KEY, [])  # makes the directories
    return store


def load_from(store: SnapshotStore, data: bytes) -> list[Instance] | None:
    """What the consumer makes of a snapshot file holding `data`: never an exception."""
    store.path(KEY).write_bytes(data)
    loaded = store.load(KEY)
    assert loaded is None or isinstance(loaded, list)
    for instance in loaded or ():
        assert_bounded(instance)
    return loaded


def parsed(data: bytes) -> list[Instance] | None:
    """What load makes of `data` once read (files are slow to write thousands of times):
    valid instances, or SnapshotFormatError, which load logs and turns into None."""
    try:
        instances = parse_snapshot(data, time.time())
    except SnapshotFormatError:
        return None
    assert isinstance(instances, list)
    for instance in instances:
        assert_bounded(instance)
    return instances


@given(data=st.binary(max_size=400))
@examples(2500)
@example(data=b"")
@example(data=b"\xff\xfe\x00")
@example(data=b'{"schema": 1, "saved_at": NaN, "instances": []}')
@example(data=b'{"schema": 1, "saved_at": 1e999, "instances": []}')
@example(data=nested(DEEP))
def test_any_bytes_of_a_snapshot_parse_as_valid_instances_or_a_snapshot_format_error(
    data: bytes,
) -> None:
    parsed(data)


@given(data=st.binary(max_size=400))
@examples(200)
@example(data=nested(DEEP))
def test_any_bytes_in_a_snapshot_file_load_as_valid_instances_or_none(
    store: SnapshotStore, data: bytes
) -> None:
    load_from(store, data)


FIELDS = sorted(VALID)
# A valid instance with one field made hostile, or anything at all.
instance_items = st.builds(
    lambda field, value: {**VALID, field: value},
    st.sampled_from(FIELDS),
    hostile_numbers | json_values(hostile_numbers, leaves=3),
) | json_values(hostile_numbers, leaves=3)
snapshot_documents = st.fixed_dictionaries(
    {
        "schema": st.sampled_from([1, 1, 1, 2, True, "1"]),
        "saved_at": st.sampled_from([None, "now"]) | hostile_numbers | st.floats(-1e6, 1e6),
        "instances": st.lists(st.just(VALID) | instance_items, max_size=3)
        | json_values(hostile_numbers, leaves=4),
    }
)


@given(document=snapshot_documents, fresh=st.booleans())
@examples(500)  # each document is slow to generate; the bytes cover the rest
@example(document={"schema": 1, "instances": [{**VALID, "start_time": HUGE}]}, fresh=True)
@example(document={"schema": True, "instances": [VALID]}, fresh=True)
@example(document={"schema": 1, "instances": [VALID] * 1001}, fresh=True)
def test_any_snapshot_document_parses_as_valid_instances_or_an_error(
    document: dict[str, Any], fresh: bool
) -> None:
    if fresh:  # most documents should get as far as their instances
        document = {**document, "saved_at": time.time() - 1}
    loaded = parsed(encoded(document))
    if loaded is not None:
        assert type(document["schema"]) is int and document["schema"] == 1
        assert len(loaded) == len(document["instances"]) <= 1000
        assert 0 <= time.time() - document["saved_at"] <= MAX_SNAPSHOT_AGE


def test_valid_instances_in_a_fresh_snapshot_load(store: SnapshotStore) -> None:
    document = {"schema": 1, "saved_at": time.time(), "instances": [VALID, VALID]}
    assert load_from(store, encoded(document)) == [Instance.from_document(VALID)] * 2


# -- snapshot files as SnapshotStore reads and writes them ---------------------------------


@given(data=st.binary(max_size=300))
@examples(75)
@example(data=b"[]")
@example(data=b'{"schema": 1, "instances": 5}')
def test_any_snapshot_file_gives_bounded_instances_or_none(
    store: SnapshotStore, data: bytes
) -> None:
    load_from(store, data)


@given(
    snapshot=st.builds(
        lambda schema, items: {"schema": schema, "saved_at": time.time(), "instances": items},
        st.sampled_from([1, 1, 1, 2]),
        st.lists(instance_documents(tame_numbers), max_size=3) | json_values(),
    )
    | json_values()
)
@examples(50)
def test_any_json_in_a_snapshot_file_gives_bounded_instances_or_none(
    store: SnapshotStore, snapshot: Any
) -> None:
    loaded = load_from(store, encoded(snapshot))
    if loaded is not None:
        assert snapshot["schema"] == 1 and len(loaded) == len(snapshot["instances"])


@given(saved=st.lists(instances, max_size=4))
@examples(50)
def test_saved_instances_load_back_unchanged(store: SnapshotStore, saved: list[Instance]) -> None:
    store.save(KEY, saved)
    assert store.load(KEY) == saved


def test_a_missing_snapshot_is_none(tmp_path: Path) -> None:
    assert SnapshotStore(tmp_path).load(KEY) is None


@given(
    data=st.one_of(
        st.sampled_from(NUMBERS).map(
            lambda field: encoded(
                {"schema": 1, "saved_at": time.time(), "instances": [{**VALID, field: HUGE}]}
            )
        ),
        st.integers(1, 100_000).map(lambda depth: nested(depth, b'{"schema": 1, "x": ', b"}")),
    )
)
@examples(30)
@example(
    data=encoded(
        {"schema": 1, "saved_at": time.time(), "instances": [{**VALID, "start_time": HUGE}]}
    )
)
@example(data=nested(DEEP))
def test_a_snapshot_with_hostile_numbers_or_nesting_is_ignored(
    store: SnapshotStore, data: bytes
) -> None:
    assert load_from(store, data) is None


# -- a service's rules snapshot (DESIGN section 8): valid rule documents, or none -----------

RULE_KINDS = sorted(PARSERS)
VALID_RULES = {"timeout": '{"schema": 1, "timeout_ms": 200}', "retry": '{"schema": 1}'}


def parsed_rules(data: bytes) -> dict[str, SavedRule] | None:
    """What load_rules makes of `data` once read: each document valid as its kind, or
    SnapshotFormatError (which load_rules logs and turns into None)."""
    try:
        loaded = parse_rules_snapshot(data, time.time())
    except SnapshotFormatError:
        return None
    assert set(loaded) <= set(PARSERS)
    for kind, saved in loaded.items():
        assert parse_rule(kind, saved.document) == saved.rule
    return loaded


@given(data=st.binary(max_size=400))
@examples(1000)
@example(data=b'{"schema": 1, "saved_at": 1e999, "rules": {}}')
@example(data=nested(DEEP, b'{"schema": 1, "rules": ', b"}"))
def test_any_bytes_of_a_rules_snapshot_parse_as_valid_rules_or_an_error(data: bytes) -> None:
    parsed_rules(data)


# Valid documents often ('{"schema": 1}' is one for most kinds), else anything.
rule_texts = (
    st.sampled_from(['{"schema": 1}', *VALID_RULES.values()])
    | json_values(hostile_numbers, leaves=4).map(json.dumps)
    | st.text(max_size=40)
)
rules_documents = st.fixed_dictionaries(
    {
        "schema": st.sampled_from([1, 1, 1, 1, 2, True]),
        "saved_at": st.sampled_from([None, "now"]) | hostile_numbers | st.floats(-1e6, 1e6),
        "rules": st.dictionaries(
            st.sampled_from(RULE_KINDS) | st.text(max_size=10),
            rule_texts | rule_texts | json_values(hostile_numbers, leaves=3),
            max_size=len(PARSERS) + 2,
        )
        | st.dictionaries(st.sampled_from(RULE_KINDS), rule_texts)
        | json_values(hostile_numbers, leaves=4),
    }
)


@given(document=rules_documents, fresh=st.booleans())
@examples(300)
@example(document={"schema": 1, "rules": VALID_RULES}, fresh=True)
@example(
    document={"schema": 1, "rules": {"timeout": '{"schema": 1, "timeout_ms": 1e999}'}}, fresh=True
)
@example(document={"schema": 1, "rules": {"nope": '{"schema": 1}', "set": 5}}, fresh=True)
def test_any_rules_snapshot_document_parses_as_valid_rules_or_an_error(
    document: dict[str, Any], fresh: bool
) -> None:
    if fresh:  # most documents should get as far as their rules
        document = {**document, "saved_at": time.time() - 1}
    loaded = parsed_rules(encoded(document))
    if loaded is not None:
        assert type(document["schema"]) is int and document["schema"] == 1
        for kind, saved in loaded.items():
            assert saved.document == document["rules"][kind].encode("utf-8", "surrogateescape")


@given(data=st.binary(max_size=300))
@examples(75)
@example(data=b'{"schema": 1, "rules": []}')
def test_any_rules_snapshot_file_loads_as_valid_rules_or_none(
    store: SnapshotStore, data: bytes
) -> None:
    store.rules_path("TenantA", "XIESR").write_bytes(data)
    loaded = store.load_rules("TenantA", "XIESR")
    if loaded is not None:
        for kind, saved in loaded.items():
            assert parse_rule(kind, saved.document) == saved.rule


encodings = st.sampled_from(["utf-8", "utf-16", "utf-32-be", "utf-8-sig"])


@given(
    timeout_ms=st.integers(1, 100_000),
    padding=st.text(" \t\r\n", max_size=4),
    encoding=encodings,
)
@examples(50)
def test_saved_rule_documents_load_back_byte_for_byte(
    store: SnapshotStore, timeout_ms: int, padding: str, encoding: str
) -> None:
    # Any valid document, UTF-8 or not (JSON may come as UTF-16 or 32), comes back as sent.
    data = f'{padding}{{"schema": 1, "timeout_ms": {timeout_ms}}}'.encode(encoding)
    store.save_rules("TenantA", "XIESR", {"timeout": data, "retry": b'{"schema": 1}'})
    loaded = store.load_rules("TenantA", "XIESR")
    assert loaded is not None
    assert {kind: s.document for kind, s in loaded.items()} == {
        "timeout": data,
        "retry": b'{"schema": 1}',
    }
    assert loaded["timeout"].rule == TimeoutRule(timeout_ms=timeout_ms)
