"""Instance data read from provider znodes, as properties: any bytes and any JSON give an
instance with bounded, finite numbers, or InstanceFormatError; generated instances
survive to_json -> from_json unchanged. (Snapshot files: test_snapshot_properties.py.)"""

import json
import math
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from csf import bounds
from csf.config import check_host
from csf.registry.instance import Instance, InstanceFormatError
from tests.strategies import (
    DEEP,
    HUGE,
    encoded,
    examples,
    hostile_numbers,
    json_values,
    nested,
    set_names,
    tame_numbers,
)

FIELDS = [
    "host", "port", "weight", "version", "group", "tags", "services", "pid", "start_time",
    "warmup", "tls", "set", "metrics_port",
]  # fmt: skip


def assert_bounded(instance: Instance) -> None:
    """The numbers consumers compute with are within their documented bounds, and the
    host is one to dial (csf.config.check_host)."""
    assert type(instance.port) is int and 0 < instance.port < 65536, instance
    assert type(instance.weight) is int and 0 <= instance.weight <= bounds.WEIGHT.high, instance
    assert type(instance.pid) is int and 0 <= instance.pid <= bounds.PID.high, instance
    assert 0 <= instance.warmup <= bounds.WARMUP_S.high, instance
    assert 0 <= instance.start_time <= bounds.START_TIME.high, instance
    assert check_host("host", instance.host) == instance.host
    assert isinstance(instance.tls, bool), instance
    assert instance.metrics_port is None or (
        type(instance.metrics_port) is int and 0 < instance.metrics_port < 65536
    ), instance
    assert all(isinstance(value, str) for value in instance.tags.values()), instance


def assert_instance_or_format_error(data: bytes) -> Instance | None:
    try:
        instance = Instance.from_json(data)
    except InstanceFormatError:
        return None
    assert_bounded(instance)
    return instance


text = st.text(max_size=12)
host_names = st.from_regex(
    r"[a-z]([a-z0-9-]{0,8}[a-z0-9])?(\.[a-z]([a-z0-9-]{0,8}[a-z0-9])?){0,2}", fullmatch=True
)
hosts = host_names | st.ip_addresses(v=4).map(str) | st.ip_addresses(v=6).map("[{}]".format)
instances = st.builds(
    Instance,
    host=hosts,
    port=st.integers(1, 65535),
    weight=st.integers(0, int(bounds.WEIGHT.high)),
    version=text,
    group=text,
    tags=st.dictionaries(text, text, max_size=3),
    services=st.dictionaries(text, st.lists(text, max_size=3).map(tuple), max_size=3),
    pid=st.integers(0, int(bounds.PID.high)),
    start_time=st.floats(0, bounds.START_TIME.high),
    warmup=st.floats(0, bounds.WARMUP_S.high),
    tls=st.booleans(),
    set=st.none() | set_names().map(str),
    metrics_port=st.none() | st.integers(1, 65535),
)


# Plausible values of some field, so that many changed documents still get through.
plausible = st.one_of(
    st.integers(0, 65535),
    st.floats(0, 2e9),
    st.text(max_size=10),
    st.booleans(),
    st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=2),
    st.dictionaries(st.text(max_size=6), st.lists(st.text(max_size=6), max_size=2), max_size=2),
)


@st.composite
def instance_documents(draw: st.DrawFn, numbers: st.SearchStrategy[Any]) -> dict[str, Any]:
    """A valid instance's document with up to three fields replaced or removed and maybe
    a key added; new values are often plausible and otherwise anything whose numbers
    come from `numbers`."""
    document = draw(instances).to_document()
    values = st.one_of(plausible, json_values(numbers, leaves=4))
    for field in draw(st.lists(st.sampled_from(["schema", *FIELDS]), unique=True, max_size=3)):
        if draw(st.booleans()):
            document[field] = draw(values)
        else:
            document.pop(field, None)  # "set" is written only by a provider in a SET
    document.update(draw(st.dictionaries(st.text(max_size=8), values, max_size=1)))
    return document


# -- provider znodes: Instance.from_json ----------------------------------------------------


@given(data=st.binary(max_size=300))
@examples(3000)
@example(data=b"")
@example(data=b"\xff\xfe\x00")
@example(data=b'{"schema": 1, "host": "h", "port": 1')
def test_any_bytes_give_a_bounded_instance_or_an_instance_format_error(data: bytes) -> None:
    assert_instance_or_format_error(data)


@given(document=json_values())
@examples(1000)
@example(document=[])
@example(document={"schema": 1, "host": "h", "port": 1, "tags": []})
def test_any_json_value_gives_a_bounded_instance_or_an_instance_format_error(
    document: Any,
) -> None:
    assert_instance_or_format_error(encoded(document))


@given(document=instance_documents(tame_numbers))
@examples(125)
@example(document={"schema": 1, "host": "h", "port": 0})
@example(document={"schema": 1, "host": "h", "port": 65536})
@example(document={"schema": 1, "host": "h", "port": 1, "weight": -1})
@example(document={"schema": 1, "host": "h", "port": 1, "warmup": -0.5})
@example(document={"schema": 1, "host": "h", "port": True})
def test_any_instance_shaped_document_gives_a_bounded_instance_or_an_instance_format_error(
    document: dict[str, Any],
) -> None:
    instance = assert_instance_or_format_error(encoded(document))
    if instance is not None:
        assert document["schema"] == 1 and instance.port == document["port"]


@given(instance=instances)
@examples(100)
def test_an_instance_survives_to_json_and_from_json(instance: Instance) -> None:
    assert Instance.from_json(instance.to_json()) == instance


# -- hostile numbers, nesting and schemas ---------------------------------------------------

VALID = json.loads(Instance(host="127.0.0.1", port=50051).to_json())
NUMBERS = ["port", "weight", "pid", "start_time", "warmup"]


@pytest.mark.slow  # a fuzz run of many examples: CI runs it, the default suite does not
@given(document=instance_documents(hostile_numbers))
@examples(1000)
@example(document={**VALID, "warmup": math.nan})
@example(document={**VALID, "start_time": HUGE})
def test_any_instance_shaped_document_even_with_hostile_numbers_is_bounded_or_an_error(
    document: dict[str, Any],
) -> None:
    assert_instance_or_format_error(encoded(document))


@given(field=st.sampled_from(NUMBERS), value=st.sampled_from([math.nan, math.inf, -math.inf]))
@examples(30)
@example(field="warmup", value=math.nan)
@example(field="start_time", value=math.inf)
def test_nan_and_infinity_in_an_instance_are_refused(field: str, value: float) -> None:
    assert_instance_or_format_error(encoded({**VALID, field: value}))


@given(field=st.sampled_from(NUMBERS), value=st.integers(10**300, 10**500))
@examples(30)
@example(field="start_time", value=HUGE)
@example(field="weight", value=HUGE)
def test_integers_of_hundreds_of_digits_in_an_instance_are_refused(field: str, value: int) -> None:
    assert_instance_or_format_error(encoded({**VALID, field: value}))


@given(depth=st.integers(1, 32_000))
@examples(20)
@example(depth=DEEP)
def test_deeply_nested_instance_data_is_an_instance_format_error(depth: int) -> None:
    with pytest.raises(InstanceFormatError):
        Instance.from_json(nested(depth, b'{"schema": 1, "tags": ', b"}"))


def test_an_instance_with_a_schema_of_true_is_refused() -> None:
    with pytest.raises(InstanceFormatError, match="schema"):
        Instance.from_json(encoded({**VALID, "schema": True}))
