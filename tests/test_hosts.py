"""`check_host`: the only hosts CSF dials are DNS names, dotted quads and bracketed IPv6
literals; gRPC target syntax ('unix:', 'ipv4:a,b', ...) and anything else is refused with a
ConfigError naming the field."""

import ipaddress
import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import csf
from csf.config import check_host, parse_address
from tests.strategies import examples

LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


@pytest.mark.parametrize(
    "host",
    ["localhost", "zk-1.prod.example.com", "a", "1.2.3.4", "127.0.0.1", "[::1]",
     "[2001:db8::8a2e:370:7334]", "[::ffff:1.2.3.4]", "x" * 63 + ".com",
     ".".join(["a" * 63] * 3) + "." + "b" * 61],
)  # fmt: skip
def test_a_dns_name_an_ipv4_or_a_bracketed_ipv6_address_is_a_host(host: str) -> None:
    assert check_host("instance host", host) == host


@pytest.mark.parametrize(
    "host",
    ["unix-abstract:x", "ipv4:a:1,b", "unix:/tmp/s", "h:1", "dns:///h", "vsock:1", "", " h",
     "h ", "TenantA\n", "a..b", ".a", "a.", "-a", "a-", "a_b", "a/b", "x" * 64 + ".com",
     ".".join(["a" * 63] * 4), "999.1.1.1", "1.2.3", "01.2.3.4", "::1", "[::1", "[h]",
     "[fe80::1%eth0]", "[1.2.3.4]", "\u0661.com", "b\u00fccher.de", "a\x00b"],
)  # fmt: skip
def test_anything_else_is_refused_naming_the_field(host: str) -> None:
    with pytest.raises(csf.ConfigError, match=r"^instance host: .* is not a host name"):
        check_host("instance host", host)


@pytest.mark.parametrize("value", [None, 1, b"h", ["h"]])
def test_a_host_that_is_not_text_is_refused(value: object) -> None:
    with pytest.raises(csf.ConfigError, match=r"^host: "):
        check_host("host", value)


def test_a_refused_host_is_quoted_briefly() -> None:
    with pytest.raises(csf.ConfigError) as refused:
        check_host("host", "x" * 5_000)
    assert len(str(refused.value)) < 200


def test_an_address_takes_its_host_through_check_host() -> None:
    assert parse_address("registry", "[::1]:2181") == ("[::1]", 2181)
    with pytest.raises(csf.ConfigError, match=r"^registry: 'unix:/tmp/s' is not a host name"):
        parse_address("registry", "unix:/tmp/s:1")


def expected(text: str) -> bool:
    """The issue's definition, written independently of csf.config."""
    if text.startswith("[") and text.endswith("]") and "%" not in text:
        try:
            ipaddress.IPv6Address(text[1:-1])
        except ValueError:
            return False
        return True
    labels = text.split(".")
    if labels[-1].isdigit():
        try:
            ipaddress.IPv4Address(text)
        except ValueError:
            return False
        return True
    return len(text) <= 253 and all(LABEL.fullmatch(label) for label in labels)


host_like = st.text(st.sampled_from("ab09-.:[]%_/ \n\u0661"), max_size=20)


@given(text=st.text() | host_like | st.ip_addresses().map(str))
@examples(2_000)
@example(text="unix-abstract:x")
@example(text="ipv4:a:1,b")
@example(text="a" * 254)
def test_any_text_is_a_host_exactly_when_the_issue_says_or_a_config_error(text: str) -> None:
    try:
        checked = check_host("host", text)
    except csf.ConfigError as error:
        assert str(error).startswith("host: ")
        assert not expected(text), text
    else:
        assert checked == text and expected(text), text
