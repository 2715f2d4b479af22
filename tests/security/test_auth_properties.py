"""Caller tokens from call metadata and TLS files from disk, as properties: any token text
is verified to True or False, never an exception (and only the right token is True);
any file gives a TLSConfig or a ConfigError naming the field."""

import logging
import math
import string
import time
from pathlib import Path

import grpc
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import csf
from csf import bounds
from csf.auth import CallerAuth, sign
from tests.conftest import greeter_server
from tests.security.servicers import CountingGreeter, call_with_token
from tests.strategies import examples

SECRET = "order-web-secret-0123456789"
AUTH = CallerAuth(secrets={"order-web": SECRET}, require_subscription=False)
# No registry: the provider is reached on its address, so no ZooKeeper is needed.
NO_REGISTRY = "static://127.0.0.1:1"

# Token text with no digits beyond ASCII; the other digits have their own property below.
token_chars = st.characters(blacklist_categories=["Nd", "No"]) | st.sampled_from(string.digits)
tokens = st.one_of(
    st.text(token_chars, max_size=80),
    st.builds("{}.{}".format, st.integers(0, 10**300), st.text(token_chars, max_size=70)),
    st.builds("{}.{}".format, st.integers(0, 2**40), st.text("0123456789abcdef", max_size=70)),
)
apps = st.sampled_from(["order-web", "report-job"]) | st.text(max_size=12)


@given(app=st.none() | apps, token=st.none() | tokens | st.text())
@examples(2_000)
@example(app="order-web", token="\u0661.x")
@example(app="order-web", token="9" * 400 + ".x")
@example(app="order-web", token="1." + "\u00e9" * 64)
@example(app="order-web", token="1." + "a" * 64 + "\n")
@example(app="order-web", token="")
@example(app="order-web", token=".")
@example(app="order-web", token="abc.def")
@example(app="order-web", token="-5.x")
@example(app="order-web", token="1.5.x")
@example(app="order-web", token="9" * 300 + ".x")
def test_any_token_text_verifies_to_true_or_false(app: str | None, token: str | None) -> None:
    verdict = AUTH.verify("TenantA", "XIESR", app, token)
    assert verdict is False or verdict is True


@given(other=tokens)
@examples(100)
def test_only_the_token_signed_for_this_app_tenant_service_and_time_verifies(other: str) -> None:
    issued = int(time.time())
    good = sign(SECRET, "order-web", "TenantA", "XIESR", issued)
    assert AUTH.verify("TenantA", "XIESR", "order-web", good) is True
    assert AUTH.verify("TenantA", "XIESR", "order-web", other) is (other == good)
    assert AUTH.verify("TenantB", "XIESR", "order-web", good) is False
    assert AUTH.verify("TenantA", "XIESR", "report-job", good) is False


async def test_a_provider_answers_malformed_tokens_with_unauthenticated() -> None:
    CountingGreeter.handled = 0
    malformed = ["", ".", "abc.def", "12.", "-5.x", "1.5.x", "99999999999999999999.x"]
    async with greeter_server(NO_REGISTRY, "TenantA", CountingGreeter, auth=AUTH) as server:
        codes = {token: await call_with_token(server.address, token) for token in malformed}
    assert codes == dict.fromkeys(malformed, grpc.StatusCode.UNAUTHENTICATED)
    assert CountingGreeter.handled == 0


# -- TLS files -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pem_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with good.pem, a file that looks like PEM."""
    directory = tmp_path_factory.mktemp("pem")
    (directory / "good.pem").write_bytes(
        b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"
    )
    return directory


@given(
    field=st.sampled_from(["ca", "cert", "key"]),
    data=st.binary(max_size=200)
    | st.builds(lambda a, b: a + b"-----BEGIN" + b, st.binary(max_size=50), st.binary(max_size=50)),
)
@examples(75)
@example(field="ca", data=b"")
@example(field="key", data=b"-----BEGIN")
def test_any_file_contents_give_a_tls_config_or_a_config_error_naming_the_file(
    pem_dir: Path, field: str, data: bytes
) -> None:
    good = pem_dir / "good.pem"
    (pem_dir / "file.pem").write_bytes(data)
    files = {"ca": good, "cert": good, "key": good, field: pem_dir / "file.pem"}
    try:
        csf.TLSConfig(ca=files["ca"], cert=files["cert"], key=files["key"])
    except csf.ConfigError as error:
        assert str(error).startswith(f"tls.{field}:")
        assert b"-----BEGIN" not in data
    else:
        assert b"-----BEGIN" in data


# No '/' (the name stays in the directory), no NUL and no lone surrogate (below).
@given(
    name=st.text(
        st.characters(blacklist_characters="/\x00", blacklist_categories=["Cs"]), max_size=20
    )
)
@examples(50)
@example(name="")
@example(name="..")
def test_a_file_that_cannot_be_read_is_a_config_error_naming_it(pem_dir: Path, name: str) -> None:
    missing = pem_dir / "absent" / name
    with pytest.raises(csf.ConfigError, match=r"^tls\.cert: cannot read"):
        csf.TLSConfig(ca=pem_dir / "good.pem", cert=missing, key=pem_dir / "good.pem")


# -- each class of input that once raised instead of being refused -------------------------


@given(
    issued=st.text(st.characters(whitelist_categories=["Nd", "No"]), min_size=1, max_size=8)
    | st.integers(10**308, 10**400).map(str)
)
@examples(50)
@example(issued="\u00b2")
@example(issued="9" * 400)
@example(issued="9" * 5_000)
def test_a_token_whose_time_is_not_a_plausible_number_verifies_to_false(issued: str) -> None:
    assert AUTH.verify("TenantA", "XIESR", "order-web", f"{issued}.x") is False


async def test_a_provider_answers_hostile_tokens_with_unauthenticated_and_logs_no_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Metadata is ASCII on the wire; other characters are the property's above.
    hostile = [
        "9" * 400 + ".x",
        "9" * 5_000 + ".x",
        "9" * 400 + "." + "a" * 64,
        ".",
        "1." + "A" * 64,
        f"{int(time.time()) + 10**12}.{'a' * 64}",
        f"-{int(time.time())}.{'a' * 64}",
    ]
    CountingGreeter.handled = 0
    with caplog.at_level(logging.DEBUG):
        async with greeter_server(NO_REGISTRY, "TenantA", CountingGreeter, auth=AUTH) as server:
            codes = [await call_with_token(server.address, token) for token in hostile]
    assert codes == [grpc.StatusCode.UNAUTHENTICATED] * len(hostile)
    assert CountingGreeter.handled == 0
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.mark.parametrize("offset", [-86_401, 86_401])
def test_a_token_from_beyond_the_largest_skew_is_refused_even_with_that_skew(offset: int) -> None:
    auth = CallerAuth(secrets={"order-web": SECRET}, max_skew=bounds.SECONDS.high)
    issued = int(time.time()) + offset
    assert auth.verify("T", "S", "order-web", sign(SECRET, "order-web", "T", "S", issued)) is False
    now = int(time.time())
    assert auth.verify("T", "S", "order-web", sign(SECRET, "order-web", "T", "S", now)) is True


@pytest.mark.parametrize(
    "skew", [0, -1, bounds.SECONDS.high + 1, math.inf, math.nan, 10**400, "300", True]
)
def test_a_max_skew_outside_its_range_is_refused(skew: object) -> None:
    refused = r"^auth\.max_skew: expected a number from 0\.001 to 86,400, got "
    with pytest.raises(csf.ConfigError, match=refused):
        CallerAuth(secrets={"order-web": SECRET}, max_skew=skew)  # type: ignore[arg-type]


@given(
    name=st.builds(
        "{}{}{}".format,
        st.text(max_size=4),
        st.sampled_from(["\x00", "\ud800", "\udfff"]),
        st.text(max_size=4),
    )
)
@examples(20)
@example(name="ca\x00.pem")
@example(name="\ud800")
def test_a_file_name_the_system_cannot_take_is_a_config_error(pem_dir: Path, name: str) -> None:
    with pytest.raises(csf.ConfigError, match=r"^tls\.ca:"):
        csf.TLSConfig(ca=name, cert=pem_dir / "good.pem", key=pem_dir / "good.pem")
