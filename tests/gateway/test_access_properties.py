"""The access layer as properties: whatever the headers, path and body, `verify` answers
an app or an AccessError (never another exception); a signed request passes once and only
once; the nonce cache behaves like a model that never forgets a live nonce; and any
--apps file gives apps or a ConfigError."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from csf._exceptions import ConfigError
from csf.gateway.access import (
    APP_HEADER,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    AccessError,
    Signatures,
    load_apps,
    sign,
)
from tests.strategies import examples, hostile_numbers, json_values, long_strings

SECRET = "shop-web-secret-0123456789"
START = 1_800_000_000.0
WINDOW = 300.0
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

nonces = st.text("abcXYZ019_-", min_size=8, max_size=64)
surrogates = st.text(st.characters(codec=None, categories=["Cs"]), min_size=1, max_size=4)
texts = st.text() | long_strings | st.text("0123456789", max_size=20) | surrogates | st.just("")
# Mostly within the window of a clock that starts at START and runs up to START + 400.
timestamps = st.integers(0, 10**16).map(str) | st.floats(START - 300, START + 700).map(
    lambda at: str(round(at * 1000))
)


class Clock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def outcome(checker: Signatures, *request: Any) -> str:
    """The app, or the refusal's kind; any other exception fails the property."""
    try:
        return checker.verify(*request)
    except AccessError as error:
        assert (error.status, error.code) in {(401, "UNAUTHENTICATED"), (503, "UNAVAILABLE")}
        assert error.message and SECRET not in error.message
        assert (error.retry_after is None) == (error.status == 401)
        return f"refused {error.status}"


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, dict[str, str], bytes]:
    """A request whose headers are each absent, well formed or anything at all; its
    signature now and then right for what was drawn."""
    method = draw(st.sampled_from(["POST", "GET", "post"]) | st.text(max_size=10))
    path = draw(st.sampled_from(["/a/b.C/D", "/a/b.C/D?x=1&y=%2F"]) | st.text() | surrogates)
    body = draw(st.binary(max_size=200))
    headers: dict[str, str] = {}
    # Each header: absent, anything at all, or (as often as not) well formed.
    for name, good in (
        (APP_HEADER, st.sampled_from(["shop-web", "partner"])),
        (TIMESTAMP_HEADER, timestamps),
        (NONCE_HEADER, nonces),
    ):
        kind = draw(st.integers(0, 3))
        if kind:
            headers[name] = draw(texts if kind == 1 else good)
    if draw(st.integers(0, 3)) > 1:
        headers[SIGNATURE_HEADER] = sign(
            SECRET,
            method,
            path,
            headers.get(TIMESTAMP_HEADER, ""),
            headers.get(NONCE_HEADER, ""),
            body,
        )
    elif (signature := draw(st.none() | texts)) is not None:
        headers[SIGNATURE_HEADER] = signature
    return method, path, headers, body


@examples(400)
@given(st.lists(requests(), min_size=1, max_size=5), st.floats(START - 10, START + 400))
def test_any_request_gives_an_app_or_an_access_error(
    batch: list[tuple[str, str, dict[str, str], bytes]], now: float
) -> None:
    clock = Clock()
    checker = Signatures({"shop-web": SECRET, "partner": SECRET[::-1]}, max_nonces=2, clock=clock)
    clock.now = now
    for request in batch:
        assert outcome(checker, *request) in {"shop-web", "partner", "refused 401", "refused 503"}


@examples(200)
@given(
    method=st.sampled_from(["GET", "POST", "DELETE"]),
    path=st.text(min_size=1).map(lambda text: "/" + text),
    body=st.binary(max_size=300),
    nonce=nonces,
    age=st.floats(-WINDOW, WINDOW),
)
def test_a_signed_request_passes_once_and_its_replay_is_refused(
    method: str, path: str, body: bytes, nonce: str, age: float
) -> None:
    clock = Clock()
    checker = Signatures({"shop-web": SECRET}, clock=clock)
    timestamp = str(round((START + WINDOW + age) * 1000))
    clock.now = START + WINDOW
    headers = {
        APP_HEADER: "shop-web",
        TIMESTAMP_HEADER: timestamp,
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: sign(SECRET, method, path, timestamp, nonce, body),
    }
    assert outcome(checker, method, path, headers, body + b"!") == "refused 401"
    assert outcome(checker, method, path, headers, body) == "shop-web"
    with pytest.raises(AccessError, match="nonce already used"):
        checker.verify(method, path, headers, body)


@examples(200)
@given(
    st.lists(
        st.tuples(st.floats(0, 200), st.integers(0, 40), st.floats(-WINDOW, WINDOW)),
        max_size=80,
    ),
    st.integers(1, 30),
)
def test_the_nonce_cache_refuses_exactly_what_a_model_of_live_nonces_says(
    steps: list[tuple[float, int, float]], capacity: int
) -> None:
    """Each step: time passes, then nonce N is sent, signed `skew` seconds from now. The
    model keeps every accepted nonce until its timestamp leaves the window."""
    clock = Clock()
    checker = Signatures({"shop-web": SECRET}, max_nonces=capacity, clock=clock)
    live: dict[str, float] = {}
    for elapsed, number, skew in steps:
        clock.now += elapsed
        milliseconds = max(round((clock.now + skew) * 1000), round(START * 1000))
        if abs(clock.now - milliseconds / 1000) > WINDOW:
            continue
        nonce, timestamp = f"nonce-{number:04}", str(milliseconds)
        headers = {
            APP_HEADER: "shop-web",
            TIMESTAMP_HEADER: timestamp,
            NONCE_HEADER: nonce,
            SIGNATURE_HEADER: sign(SECRET, "POST", "/p", timestamp, nonce, b""),
        }
        live = {key: expiry for key, expiry in live.items() if expiry >= clock.now}
        expected = (
            "refused 401"
            if nonce in live
            else "refused 503"
            if len(live) >= capacity
            else "shop-web"
        )
        assert outcome(checker, "POST", "/p", headers, b"") == expected
        if expected == "shop-web":
            live[nonce] = milliseconds / 1000 + WINDOW


apps_documents = st.one_of(
    st.binary(max_size=300),
    json_values(hostile_numbers).map(lambda value: json.dumps(value).encode()),
    st.dictionaries(
        st.sampled_from(["shop-web", "a", "-bad", "x" * 129, "é"]) | st.text(max_size=10),
        st.text(min_size=14, max_size=20) | json_values(),
        max_size=4,
    ).map(lambda value: json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")),
)


@examples(300)
@given(apps_documents)
def test_any_apps_file_gives_valid_apps_or_a_config_error(
    tmp_path_factory: pytest.TempPathFactory, content: bytes
) -> None:
    path: Path = tmp_path_factory.getbasetemp() / "apps-property.json"
    path.write_bytes(content)
    try:
        apps = load_apps(path)
    except ConfigError as error:
        assert str(path) in str(error)
        return
    assert apps
    for app, secret in apps.items():
        assert NAME.fullmatch(app) and isinstance(secret, str) and len(secret) >= 16
        secret.encode()
    assert Signatures(apps)
