"""Registry URLs (`registry=`, `--zk`) and names, as properties: any text gives a URL whose
hosts, ports, chroot and settings are in range, or a ConfigError; a well-formed URL
parses into exactly the parts it was built from, its digest taken literally."""

import contextlib
import ipaddress
import math
import re
import string

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import csf
from csf import bounds
from csf.config import (
    DEFAULT_SESSION_TIMEOUT,
    RegistryURL,
    StaticURL,
    ZooKeeperURL,
    check_name,
    parse_registry_url,
)
from csf.registry import StaticRegistry, ZooKeeperRegistry
from tests.strategies import examples

LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def is_host(host: str) -> bool:
    """A DNS name, a dotted quad or a bracketed IPv6 address (as the issue defines them)."""
    with contextlib.suppress(ValueError):
        if host.startswith("[") and host.endswith("]") and "%" not in host:
            return bool(ipaddress.IPv6Address(host[1:-1]))
        labels = host.split(".")
        if labels[-1].isdigit():
            return bool(ipaddress.IPv4Address(host))
        return len(host) <= 253 and all(LABEL.fullmatch(label) for label in labels)
    return False


def assert_bounded(url: RegistryURL) -> None:
    """Every host is a host name or an IP address, every port 1..65535; a chroot is a
    path of names, the session timeout within its range, a digest two non-empty strings."""
    addresses = url.hosts if isinstance(url, ZooKeeperURL) else url.addresses
    assert addresses, url
    for host, port in addresses:
        assert is_host(host), (host, url)
        assert type(port) is int and 0 < port < 65536, (port, url)
    if isinstance(url, StaticURL):
        return
    if url.chroot:
        assert url.chroot[0] == "/", url
        assert all(NAME.fullmatch(segment) for segment in url.chroot[1:].split("/")), url
    low, high = bounds.SESSION_TIMEOUT.low, bounds.SESSION_TIMEOUT.high
    assert math.isfinite(url.session_timeout) and low <= url.session_timeout <= high, url
    if url.digest is not None:
        user, password = url.digest
        assert isinstance(user, str) and user and isinstance(password, str) and password


def assert_url_or_config_error(text: str) -> RegistryURL | None:
    try:
        url = parse_registry_url(text)
    except csf.ConfigError:
        return None
    assert_bounded(url)
    return url


# -- near-URLs: mostly the right pieces, put together carelessly ----------------------------

# Characters a URL is made of, and some it is not; no '?', no newline and no digits
# beyond ASCII: each of those has its own property below.
CHARS = string.ascii_letters + string.digits + "-._~:/,[]=&%+@!$'()*;# \t\r"
schemes = st.sampled_from(["zk://", "static://", "zk:/", "ZK://", "http://", "zk", ""])
host_pieces = st.text(string.ascii_letters + string.digits + ".-_[]: ", max_size=12)
port_pieces = st.integers(-1, 70_000).map(str) | st.text(string.digits + "+- x", max_size=7)
locations = st.builds(
    lambda addresses, chroot: ",".join(f"{host}:{port}" for host, port in addresses) + chroot,
    st.lists(st.tuples(host_pieces, port_pieces), max_size=3),
    st.just("") | st.text(string.ascii_letters + "/._-", max_size=12).map("/{}".format),
)
near_urls = st.builds("{}{}".format, schemes, locations | st.text(CHARS, max_size=40))


@given(text=near_urls)
@examples(1_000)
@example(text="zk://")
@example(text="zk://h1:0")
@example(text="zk://h1:65536")
@example(text="zk://h 1:2181")
@example(text="zk://h1:2181/a//b")
@example(text="static://h1:1/x")
@example(text="static://h1:1,")
def test_any_text_without_a_query_gives_a_bounded_url_or_a_config_error(text: str) -> None:
    assert_url_or_config_error(text)


@given(text=st.text(max_size=40).filter(lambda text: "://" not in text))
@examples(50)
def test_text_without_a_scheme_is_a_config_error_naming_the_accepted_forms(text: str) -> None:
    with pytest.raises(csf.ConfigError, match="accepted forms"):
        parse_registry_url(text)


# A query whose every field is `key=value`: the keys CSF knows, and others.
fields = st.builds(
    "{}={}".format,
    st.sampled_from(["session_timeout", "digest"]) | st.text(CHARS.replace("&", ""), max_size=8),
    st.text(st.characters(blacklist_characters="&"), max_size=16),
)
queries = st.lists(fields, min_size=1, max_size=3).map("&".join)


@given(location=st.sampled_from(["h1:2181", "h1:1,h2:2/csf"]), query=queries)
@examples(1_000)
@example(location="h1:2181", query="session_timeout=nan")
@example(location="h1:2181", query="session_timeout=inf")
@example(location="h1:2181", query="session_timeout=0")
@example(location="h1:2181", query="session_timeout=1e400")
@example(location="h1:2181", query="digest=u:")
@example(location="h1:2181", query="digest=:pw")
@example(location="h1:2181", query="digest=")
@example(location="h1:2181", query="colour=red")
def test_any_query_of_key_value_fields_gives_a_bounded_url_or_a_config_error(
    location: str, query: str
) -> None:
    assert_url_or_config_error(f"zk://{location}?{query}")


@given(text=st.text() | st.builds("{}{}".format, schemes, st.text()))
@examples(2_000)
@example(text="zk://h1:2181?digest=u:p&")
@example(text="zk://h1:2181?session_timeout=1e306")
@example(text="zk://h1:" + "9" * 5_000)
def test_any_text_at_all_gives_a_bounded_url_or_a_config_error(text: str) -> None:
    assert_url_or_config_error(text)


# -- well-formed URLs parse into the parts they were built from ----------------------------

hosts = st.one_of(
    st.lists(st.from_regex(LABEL, fullmatch=True), min_size=1, max_size=3)
    .map(".".join)
    .filter(lambda host: not host.rpartition(".")[2].isdigit()),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map("[{}]".format),
)
addresses = st.lists(st.tuples(hosts, st.integers(1, 65535)), min_size=1, max_size=3)
chroots = st.lists(st.from_regex(NAME, fullmatch=True), max_size=3).map(
    lambda names: "".join(f"/{name}" for name in names)
)
session_timeouts = st.floats(bounds.SESSION_TIMEOUT.low, bounds.SESSION_TIMEOUT.high)
# A digest is taken literally up to the next '&': '+' and '%' included.
# UTF-8 text (no lone surrogates): ZooKeeper hashes a digest's bytes.
users = st.text(
    st.characters(blacklist_characters=":&", blacklist_categories=("Cs",)), min_size=1, max_size=12
)
passwords = st.text(
    st.characters(blacklist_characters="&", blacklist_categories=("Cs",)), min_size=1, max_size=12
)


def zk_url(
    ensemble: list[tuple[str, int]],
    chroot: str,
    session_timeout: float | None,
    digest: tuple[str, str] | None,
    trailing_slash: bool,
) -> str:
    query = []
    if session_timeout is not None:
        query.append(f"session_timeout={session_timeout!r}")
    if digest is not None:
        query.append(f"digest={digest[0]}:{digest[1]}")
    location = ",".join(f"{host}:{port}" for host, port in ensemble)
    slash = "/" if trailing_slash else ""
    return f"zk://{location}{chroot}{slash}" + ("?" + "&".join(query) if query else "")


@given(
    ensemble=addresses,
    chroot=chroots,
    session_timeout=st.none() | session_timeouts,
    digest=st.none() | st.tuples(users, passwords),
    trailing_slash=st.booleans(),
)
@examples(150)
@example(
    ensemble=[("127.0.0.1", 2181)],
    chroot="/csf/prod",
    session_timeout=4.0,
    digest=("app", "s3cr=t/?#x"),
    trailing_slash=False,
)
def test_a_well_formed_zk_url_parses_into_the_parts_it_was_built_from(
    ensemble: list[tuple[str, int]],
    chroot: str,
    session_timeout: float | None,
    digest: tuple[str, str] | None,
    trailing_slash: bool,
) -> None:
    text = zk_url(ensemble, chroot, session_timeout, digest, trailing_slash)
    expected = ZooKeeperURL(
        tuple(ensemble),
        chroot,
        DEFAULT_SESSION_TIMEOUT if session_timeout is None else session_timeout,
        digest,
    )
    assert parse_registry_url(text) == expected


@given(
    ensemble=addresses,
    chroot=chroots,
    session_timeout=session_timeouts,
    digest=st.none() | st.tuples(users, passwords),
)
@examples(50)
def test_a_server_and_a_consumer_hand_their_zookeeper_session_the_url_they_were_given(
    ensemble: list[tuple[str, int]],
    chroot: str,
    session_timeout: float,
    digest: tuple[str, str] | None,
) -> None:
    text = zk_url(ensemble, chroot, session_timeout, digest, False)
    expected = ZooKeeperURL(tuple(ensemble), chroot, session_timeout, digest)
    server = csf.Server(registry=text, tenant="TenantA", handle_signals=False)
    assert isinstance(server.registry, ZooKeeperRegistry)
    assert server.registry.url == expected
    consumer = csf.Consumer(registry=text, tenant="TenantA", app="web", snapshot_dir="unused")
    assert consumer.tenant == "TenantA"


@given(ensemble=addresses)
@examples(50)
def test_a_well_formed_static_url_parses_into_its_addresses(
    ensemble: list[tuple[str, int]],
) -> None:
    text = "static://" + ",".join(f"{host}:{port}" for host, port in ensemble)
    assert parse_registry_url(text) == StaticURL(tuple(ensemble))
    server = csf.Server(registry=text, tenant="TenantA", handle_signals=False)
    assert isinstance(server.registry, StaticRegistry)


@given(text=near_urls | queries.map("zk://h1:2181?{}".format))
@examples(50)
def test_a_consumer_and_a_server_refuse_with_a_config_error_just_the_urls_the_parser_refuses(
    text: str,
) -> None:
    accepted = assert_url_or_config_error(text) is not None
    for build in (
        lambda: csf.Consumer(registry=text, tenant="TenantA", app="web", snapshot_dir="unused"),
        lambda: csf.Server(registry=text, tenant="TenantA", handle_signals=False),
    ):
        try:
            build()
        except csf.ConfigError:
            assert not accepted, text
        else:
            assert accepted, text


# -- names: tenant, service, cluster, group, app --------------------------------------------


@given(name=st.text(st.characters(blacklist_characters="\n"), max_size=140))
@examples(150)
@example(name="")
@example(name="-x")
@example(name="a" * 129)
@example(name="a/b")
def test_a_name_is_one_safe_path_segment_or_a_config_error(name: str) -> None:
    try:
        checked = check_name("tenant", name)
    except csf.ConfigError as error:
        assert "tenant" in str(error)
        return
    assert checked == name and NAME.fullmatch(name)


# -- each class of input that once escaped as another exception, or was accepted --------------


@given(
    query=st.lists(st.text(CHARS.replace("&", "").replace("=", ""), max_size=8), min_size=1)
    .map("&".join)
    .filter(bool)
)
@examples(50)
@example(query="x")
@example(query="digest=u:p&")
@example(query="session_timeout=3&&digest=u:p")
def test_a_query_field_without_a_value_is_a_config_error(query: str) -> None:
    with pytest.raises(
        csf.ConfigError, match=r"^registry: query field \d+ \(.*\) is not key=value"
    ):
        parse_registry_url(f"zk://h1:2181?{query}")


@given(
    scheme=st.sampled_from(["zk://", "static://"]),
    port=st.text(st.characters(whitelist_categories=["Nd", "No"]), min_size=1, max_size=8),
)
@examples(50)
@example(scheme="zk://", port="\u00b2")
@example(scheme="static://", port="9" * 5_000)
def test_a_port_that_is_not_ascii_digits_gives_a_bounded_url_or_a_config_error(
    scheme: str, port: str
) -> None:
    assert_url_or_config_error(f"{scheme}h1:{port}")


@given(
    url=st.sampled_from(["zk://{}:2181", "static://{}:1", "zk://h1:2181/{}"]),
    name=st.from_regex(NAME, fullmatch=True),
)
@examples(30)
@example(url="zk://{}:2181", name="h")
@example(url="zk://h1:2181/{}", name="csf")
def test_a_final_newline_in_a_host_or_chroot_is_a_config_error(url: str, name: str) -> None:
    with pytest.raises(csf.ConfigError, match=r"^registry"):
        parse_registry_url(url.format(name + "\n"))


@given(name=st.from_regex(NAME, fullmatch=True))
@examples(30)
@example(name="TenantA")
def test_a_name_with_a_final_newline_is_a_config_error(name: str) -> None:
    with pytest.raises(csf.ConfigError):
        check_name("tenant", name + "\n")


@given(user=users, password=st.text(st.sampled_from("ab+%41"), min_size=1, max_size=8))
@examples(50)
@example(user="u", password="p+w%41")
def test_a_digest_is_taken_literally(user: str, password: str) -> None:
    url = parse_registry_url(f"zk://h1:2181?digest={user}:{password}")
    assert isinstance(url, ZooKeeperURL)
    assert url.digest == (user, password)


@given(session_timeout=st.floats(min_value=1.8e305, allow_infinity=False) | session_timeouts)
@examples(20)
@example(session_timeout=1e306)
@example(session_timeout=600.0)
def test_a_session_timeout_the_parser_accepts_builds_a_server_or_is_a_config_error(
    session_timeout: float,
) -> None:
    text = zk_url([("h1", 2181)], "", session_timeout, None, False)
    try:
        server = csf.Server(registry=text, tenant="TenantA", handle_signals=False)
    except csf.ConfigError as error:
        assert str(error).startswith("registry session_timeout:")
        assert not bounds.SESSION_TIMEOUT.low <= session_timeout <= bounds.SESSION_TIMEOUT.high
    else:
        assert isinstance(server.registry, ZooKeeperRegistry)
        assert server.registry.url.session_timeout == session_timeout


@given(
    user=st.text(max_size=8),
    password=st.text(max_size=8),
    surrogate=st.sampled_from("\ud800\udfff"),
)
@examples(50)
def test_a_digest_that_is_not_utf8_text_is_a_config_error(
    user: str, password: str, surrogate: str
) -> None:
    for digest in ((user + surrogate, password or "p"), (user or "u", password + surrogate)):
        with pytest.raises(csf.ConfigError, match="UTF-8"):
            ZooKeeperURL((("127.0.0.1", 2181),), digest=digest)
