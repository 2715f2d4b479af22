import json

import pytest

from csf.registry.instance import MAX_INSTANCE_BYTES, Instance, InstanceFormatError

INSTANCE = Instance(
    host="127.0.0.1",
    port=50051,
    weight=80,
    version="1.0.0",
    group="gray",
    tags={"zone": "hz"},
    services={"demo.Greeter": ("SayHello", "Chat")},
    pid=42,
    start_time=1700000000.5,
    tls=False,
)


def test_round_trip() -> None:
    assert Instance.from_json(INSTANCE.to_json()) == INSTANCE
    assert INSTANCE.address == "127.0.0.1:50051"


def test_document_carries_the_designed_fields() -> None:
    document = json.loads(INSTANCE.to_json())
    assert document["schema"] == 1
    assert set(document) == {
        "schema", "host", "port", "weight", "version", "group", "tags", "services", "pid",
        "start_time", "warmup", "tls",
    }  # fmt: skip


def test_unknown_fields_are_ignored() -> None:
    document = json.loads(INSTANCE.to_json())
    document["added_in_a_later_version"] = {"x": 1}
    assert Instance.from_json(json.dumps(document).encode()) == INSTANCE


def _with(**changes: object) -> bytes:
    document = json.loads(INSTANCE.to_json())
    document.update(changes)
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (_with(schema=2), "schema"),
        (_with(port="50051"), "port"),
        (_with(port=True), "port"),
        (_with(port=0), "port: expected a whole number from 1 to 65,535, got 0"),
        (_with(weight=-5), "weight: expected a whole number from 0 to 100,000, got -5"),
        (_with(warmup=86_401), "warmup: expected a number from 0 to 86,400, got 86401"),
        (_with(host="unix-abstract:x"), "host: 'unix-abstract:x' is not a host name"),
        (_with(host="ipv4:1.2.3.4:1,5.6.7.8"), "is not a host name"),
        (b'{"schema": 1, "host": "h", "port": NaN}', "NaN is not a JSON number"),
        (_with(start_time=10**30), "an integer of 31 digits is too large"),
        (b'{"schema": 1, "tags": ' + b"[" * 30_000 + b"]" * 30_000 + b"}", "nested too deeply"),
        (_with(tags={"zone": 1}), "tags"),
        (_with(services={"demo.Greeter": "SayHello"}), "services"),
        (b'{"schema": 1, "port": 1}', "host: missing"),
        (b" " * (MAX_INSTANCE_BYTES + 1), "over"),
    ],
)
def test_malformed_data_is_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(InstanceFormatError, match=reason):
        Instance.from_json(data)
