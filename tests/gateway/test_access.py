"""The gateway's access layer as unit logic, on a fake clock: every refusal of a signed
request, replays, the bounded nonce cache, the start-time rule and the --apps file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
    string_to_sign,
)

SECRET = "shop-web-secret-0123456789"
OTHER_SECRET = "partner-secret-0123456789"
START = 1_800_000_000.0
PATH = "/orders/demo.Orders/Get"
BODY = b'{"id": "7"}'


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def signatures(clock: Clock, max_nonces: int = 100) -> Signatures:
    return Signatures(
        {"shop-web": SECRET, "partner": OTHER_SECRET}, max_nonces=max_nonces, clock=clock
    )


def signed(
    nonce: str = "nonce-0001",
    at: float = START,
    *,
    app: str = "shop-web",
    secret: str = SECRET,
    path: str = PATH,
    body: bytes = BODY,
) -> dict[str, str]:
    timestamp = str(round(at * 1000))
    return {
        APP_HEADER: app,
        TIMESTAMP_HEADER: timestamp,
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: sign(secret, "POST", path, timestamp, nonce, body),
    }


def refusal(checker: Signatures, headers: dict[str, str], **request: object) -> AccessError:
    path = request.get("path", PATH)
    body = request.get("body", BODY)
    assert isinstance(path, str) and isinstance(body, bytes)
    with pytest.raises(AccessError) as caught:
        checker.verify(str(request.get("method", "POST")), path, headers, body)
    return caught.value


def test_the_string_to_sign_is_method_path_timestamp_nonce_and_body_hash() -> None:
    text = string_to_sign("post", "/a/b.C/D?x=1&y=%20", "1800000000000", "nonce-0001", b"{}")
    assert text == (
        b"POST\n/a/b.C/D?x=1&y=%20\n1800000000000\nnonce-0001\n"
        b"44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    )
    # The example any client can reproduce: base64 (padded) of HMAC-SHA256.
    signature = sign("0123456789abcdef", "POST", "/a", "1", "nonce-0001", b"")
    assert len(signature) == 44 and signature.endswith("=")


def test_a_well_signed_request_answers_its_app() -> None:
    checker = signatures(Clock())
    assert checker.verify("POST", PATH, signed(), BODY) == "shop-web"
    other = signed(app="partner", secret=OTHER_SECRET)
    assert checker.verify("post", PATH, other, BODY) == "partner"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (APP_HEADER, "missing X-Csf-App"),
        (TIMESTAMP_HEADER, "missing X-Csf-Timestamp"),
        (NONCE_HEADER, "missing X-Csf-Nonce"),
        (SIGNATURE_HEADER, "missing X-Csf-Signature"),
    ],
)
def test_each_missing_or_empty_header_is_refused_by_name(header: str, message: str) -> None:
    checker = signatures(Clock())
    for value in (None, ""):
        headers = signed()
        if value is None:
            del headers[header]
        else:
            headers[header] = value
        error = refusal(checker, headers)
        assert (error.status, error.code, error.message) == (401, "UNAUTHENTICATED", message)
        assert error.retry_after is None


@pytest.mark.parametrize(
    ("header", "value", "message"),
    [
        (APP_HEADER, "stranger", "unknown app in X-Csf-App"),
        (TIMESTAMP_HEADER, "1800000000000.5", "Unix milliseconds in ASCII digits"),
        (TIMESTAMP_HEADER, "-1800000000000", "Unix milliseconds in ASCII digits"),
        (TIMESTAMP_HEADER, "\u0661" * 13, "Unix milliseconds in ASCII digits"),  # Arabic 1
        (TIMESTAMP_HEADER, "1" * 16, "Unix milliseconds in ASCII digits"),
        (NONCE_HEADER, "short12", "8-64 characters"),
        (NONCE_HEADER, "n" * 65, "8-64 characters"),
        (NONCE_HEADER, "nonce/0001", "8-64 characters"),
        (NONCE_HEADER, "nonce\u00e90001", "8-64 characters"),
        (SIGNATURE_HEADER, "A" * 129, "not base64 of an HMAC-SHA256"),
        (SIGNATURE_HEADER, "\u00e9" * 44, "not base64 of an HMAC-SHA256"),
        (SIGNATURE_HEADER, "A" * 43 + "=", "signature does not match"),
    ],
)
def test_each_malformed_header_is_refused_saying_what_is_wrong(
    header: str, value: str, message: str
) -> None:
    headers = signed()
    headers[header] = value
    error = refusal(signatures(Clock()), headers)
    assert (error.status, error.code) == (401, "UNAUTHENTICATED")
    assert message in error.message


def test_a_signature_made_with_another_secret_or_over_another_request_does_not_match() -> None:
    checker = signatures(Clock())
    wrong_secret = signed(secret=OTHER_SECRET)
    assert refusal(checker, wrong_secret).message == "signature does not match"
    for changed in ({"method": "PUT"}, {"path": PATH + "x"}, {"body": BODY + b" "}):
        assert refusal(checker, signed(), **changed).message == "signature does not match"
    # A refusal never echoes the secret or the signature it was given.
    error = refusal(checker, wrong_secret)
    assert SECRET not in str(error) and wrong_secret[SIGNATURE_HEADER] not in str(error)


def test_the_query_string_is_part_of_what_is_signed() -> None:
    checker = signatures(Clock())
    headers = signed(path=PATH + "?limit=10")
    assert refusal(checker, headers, path=PATH + "?limit=1000").message == (
        "signature does not match"
    )
    assert refusal(checker, headers, path=PATH).message == "signature does not match"
    assert checker.verify("POST", PATH + "?limit=10", headers, BODY) == "shop-web"


def test_a_timestamp_is_accepted_within_five_minutes_either_way_and_refused_past_that() -> None:
    clock = Clock()
    checker = signatures(clock)
    clock.now = START + 1000
    assert checker.verify("POST", PATH, signed("early-000", START + 700), BODY)
    assert checker.verify("POST", PATH, signed("late-0000", START + 1300), BODY)
    for at in (START + 699.999, START + 1300.001):
        error = refusal(checker, signed("outside-0", at))
        assert error.message == "X-Csf-Timestamp outside the 5-minute window"


def test_a_timestamp_before_the_start_is_refused_even_within_the_window() -> None:
    clock = Clock()
    checker = signatures(clock)
    clock.now = START + 10
    error = refusal(checker, signed("before-00", START - 0.001))
    assert error.message == "X-Csf-Timestamp is before the gateway started; sign again"
    assert checker.verify("POST", PATH, signed("at-start0", START), BODY) == "shop-web"


def test_a_nonce_is_refused_the_second_time_even_with_a_fresh_signature() -> None:
    clock = Clock()
    checker = signatures(clock)
    assert checker.verify("POST", PATH, signed(), BODY) == "shop-web"
    assert refusal(checker, signed()).message == "nonce already used"
    clock.now += 60
    again = refusal(checker, signed(at=clock.now), path=PATH)
    assert (again.status, again.message) == (401, "nonce already used")
    # Nonces are per app: another app may use the same one.
    assert checker.verify("POST", PATH, signed(app="partner", secret=OTHER_SECRET), BODY)


def test_a_refused_signature_does_not_burn_the_nonce() -> None:
    checker = signatures(Clock())
    assert refusal(checker, signed(secret=OTHER_SECRET)).message == "signature does not match"
    assert refusal(checker, signed(), body=b"tampered").message == "signature does not match"
    assert checker.verify("POST", PATH, signed(), BODY) == "shop-web"


def test_a_full_cache_answers_503_with_retry_after_and_keeps_every_live_nonce() -> None:
    clock = Clock()
    checker = signatures(clock, max_nonces=3)
    for index, at in enumerate((START, START + 10, START + 20)):
        clock.now = at
        assert checker.verify("POST", PATH, signed(f"nonce-{index:04}", at), BODY)
    clock.now = START + 30
    full = refusal(checker, signed("nonce-0003", clock.now))
    assert (full.status, full.code) == (503, "UNAVAILABLE")
    # The oldest entry leaves when its timestamp leaves the window: START + 300.
    assert full.retry_after == 270
    # Nothing was evicted: every remembered nonce is still refused as a replay.
    for index in range(3):
        assert refusal(checker, signed(f"nonce-{index:04}", clock.now)).status == 401
    # Once the oldest expires there is room again, and the retried request passes.
    clock.now = START + 300
    assert refusal(checker, signed("nonce-0003", clock.now)).retry_after == 1
    clock.now = START + 300.001
    assert checker.verify("POST", PATH, signed("nonce-0003", clock.now), BODY) == "shop-web"
    assert refusal(checker, signed("nonce-0004", clock.now)).status == 503


def test_an_expired_nonce_is_forgotten_but_cannot_be_replayed_as_its_timestamp_is_stale() -> None:
    clock = Clock()
    checker = signatures(clock, max_nonces=1)
    assert checker.verify("POST", PATH, signed(), BODY)
    clock.now = START + 300.001
    # The old request is refused by its timestamp; a fresh one may reuse the nonce.
    assert "outside" in refusal(checker, signed()).message
    assert checker.verify("POST", PATH, signed(at=clock.now), BODY) == "shop-web"


def test_a_nonce_reused_after_it_expired_is_kept_however_lazily_the_old_entry_goes() -> None:
    clock = Clock()
    checker = signatures(clock, max_nonces=30)
    for index in range(30):
        assert checker.verify("POST", PATH, signed(f"nonce-{index:04}"), BODY)
    clock.now = START + 300.001
    # A request drops only a few expired entries: the last one's is still held, expired.
    assert checker.verify("POST", PATH, signed("nonce-0029", clock.now), BODY) == "shop-web"
    assert refusal(checker, signed("nonce-0029", clock.now)).message == "nonce already used"
    for index in range(5):  # each request drops more, the old nonce-0029 slot among them
        assert checker.verify("POST", PATH, signed(f"fresh-{index:04}", clock.now), BODY)
    assert refusal(checker, signed("nonce-0029", clock.now)).message == "nonce already used"


def test_a_future_timestamp_keeps_its_nonce_until_it_leaves_the_window() -> None:
    clock = Clock()
    checker = signatures(clock)
    assert checker.verify("POST", PATH, signed(at=START + 300), BODY)
    clock.now = START + 600
    assert refusal(checker, signed(at=START + 300)).message == "nonce already used"


def test_signatures_validate_their_settings() -> None:
    with pytest.raises(ConfigError, match="non-empty"):
        Signatures({})
    with pytest.raises(ConfigError, match="16\\+ characters"):
        Signatures({"shop-web": "short"})
    with pytest.raises(ConfigError, match="window_s"):
        Signatures({"shop-web": SECRET}, window_s=0)
    with pytest.raises(ConfigError, match="max_nonces"):
        Signatures({"shop-web": SECRET}, max_nonces=0)
    assert SECRET not in repr(Signatures({"shop-web": SECRET}))


def test_another_window_is_named_in_its_refusal() -> None:
    clock = Clock()
    checker = Signatures({"shop-web": SECRET}, window_s=30, clock=clock)
    clock.now = START + 31
    assert refusal(checker, signed()).message == "X-Csf-Timestamp outside the 30-second window"


def test_load_apps_reads_the_apps_file(tmp_path: Path) -> None:
    path = tmp_path / "apps.json"
    path.write_text(json.dumps({"shop-web": SECRET, "partner": OTHER_SECRET}))
    assert load_apps(path) == {"shop-web": SECRET, "partner": OTHER_SECRET}
    assert load_apps(str(path)) == {"shop-web": SECRET, "partner": OTHER_SECRET}


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "not JSON"),
        (b"{'a': 1}", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b'["shop-web"]', "expected a JSON object"),
        (b"{}", "non-empty"),
        (b'{"bad/name": "0123456789abcdef"}', "not a valid name"),
        (b'{"shop-web": 1234567890123456}', "16+ characters"),
        (b'{"shop-web": "0123456789abcde"}', "16+ characters"),
        (b'{"shop-web": "\\ud800123456789abcdef"}', "not valid Unicode"),
        (b'{"a": "' + b"x" * (1 << 20) + b'"}', "is over 1048576"),
    ],
)
def test_load_apps_refuses_a_bad_file_naming_it_and_the_fault(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "apps.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        load_apps(path)
    assert str(path) in str(caught.value) and reason in str(caught.value)
    assert "0123456789abcde" not in str(caught.value)


def test_load_apps_refuses_a_missing_file_or_a_directory(tmp_path: Path) -> None:
    for path in (tmp_path / "absent.json", tmp_path, "nul\0byte"):
        with pytest.raises(ConfigError, match=r"^apps file: cannot read "):
            load_apps(path)
