import math

import pytest

import csf
from csf.config import (
    STATIC_URL_FORM,
    ZK_URL_FORM,
    MethodSettings,
    StaticURL,
    StubConfig,
    ZooKeeperURL,
    parse_registry_url,
)
from demo import greeter_pb2_grpc


def test_zk_url_with_ensemble_chroot_and_options() -> None:
    url = parse_registry_url("zk://h1:2181,h2:2182/csf/prod?session_timeout=4&digest=app:s3cret")
    assert url == ZooKeeperURL((("h1", 2181), ("h2", 2182)), "/csf/prod", 4.0, ("app", "s3cret"))
    assert url.connect_string == "h1:2181,h2:2182/csf/prod"
    assert "s3cret" not in repr(url)


def test_static_url() -> None:
    assert parse_registry_url("static://127.0.0.1:1,[::1]:2") == StaticURL(
        (("127.0.0.1", 1), ("[::1]", 2))
    )


@pytest.mark.parametrize(
    ("url", "names"),
    [
        ("127.0.0.1:2181", "accepted forms"),
        ("http://h:1", "accepted forms"),
        ("zk://", "names no ZooKeeper host"),
        ("zk://h1", "is not host:port"),
        ("zk://h1:99999", "out of range"),
        ("zk://h1:2181?session_timeout=soon", "session_timeout"),
        ("zk://h1:2181?session_timeout=-1", "session_timeout"),
        ("zk://h1:2181?digest=nopassword", "digest"),
        ("zk://h1:2181?colour=red", "unknown parameter 'colour'"),
        ("zk://h1:2181/bad//chroot", "chroot"),
        ("static://", "static://host:port"),
        ("static://h:1/x", "static://host:port"),
        (42, "expected a URL string"),
    ],
)
def test_bad_registry_urls_name_the_problem(url: object, names: str) -> None:
    with pytest.raises(csf.ConfigError, match="registry") as caught:
        parse_registry_url(url)
    assert names in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"timeout": 0}, "MethodConfig.timeout"),
        ({"timeout": "1s"}, "MethodConfig.timeout"),
        ({"retries": -1}, "MethodConfig.retries"),
        ({"idempotent": "yes"}, "MethodConfig.idempotent"),
        ({"cluster": "a/b"}, "MethodConfig.cluster"),
    ],
)
def test_method_config_validates(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(csf.ConfigError, match=field):
        csf.MethodConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"registry": "nope"}, "registry"),
        ({"tenant": "a/b"}, "tenant"),
        ({"app": ""}, "app"),
        ({"chain": ["load_balance", "mystery"]}, "chain: unknown filter 'mystery'"),
        ({"chain": []}, "chain: must include 'load_balance'"),
        ({"startup_wait": -1}, "startup_wait"),
    ],
)
def test_consumer_rejects_bad_settings(kwargs: dict[str, object], field: str) -> None:
    settings: dict[str, object] = {"registry": "static://127.0.0.1:1", "tenant": "T", "app": "a"}
    settings.update(kwargs)
    with pytest.raises(csf.ConfigError, match=field):
        csf.Consumer(**settings)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"service": "bad name"}, "service"),
        ({"lb": "fastest"}, "lb: unknown balancer 'fastest'"),
        ({"timeout": 0}, "timeout"),
        ({"retries": 1.5}, "retries"),
        ({"methods": {"SayHello": {"timeout": 1}}}, "methods"),
        ({"methods": {"SayHello": csf.MethodConfig(lb="nope")}}, r"methods\['SayHello'\].lb"),
        ({"fallback": {"SayHello": "not a function"}}, "fallback"),
        ({"hash_key": "name"}, "hash_key"),
    ],
)
async def test_stub_rejects_bad_settings(kwargs: dict[str, object], field: str) -> None:
    settings: dict[str, object] = {"service": "XIESR"}
    settings.update(kwargs)
    async with csf.Consumer(registry="static://127.0.0.1:1", tenant="T", app="a") as consumer:
        with pytest.raises(csf.ConfigError, match=field):
            consumer.stub(greeter_pb2_grpc.GreeterStub, **settings)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"registry": "zk:/h:1"}, "registry"),
        ({"port": 70000}, "port"),
        ({"host": "0.0.0.0"}, "advertise_host"),
        ({"grace": 0}, "grace"),
        ({"cluster": ""}, "cluster"),
    ],
)
def test_server_rejects_bad_settings(kwargs: dict[str, object], field: str) -> None:
    settings: dict[str, object] = {"registry": "static://127.0.0.1:1", "tenant": "T"}
    settings.update(kwargs)
    with pytest.raises(csf.ConfigError, match=field):
        csf.Server(**settings)  # type: ignore[arg-type]


def test_provider_decorator_validates_and_server_needs_it() -> None:
    with pytest.raises(csf.ConfigError, match="weight"):
        csf.provider(service="XIESR", weight=-1)
    with pytest.raises(csf.ConfigError, match="weight: expected a whole number from 0 to 100,000"):
        csf.provider(service="XIESR", weight=100_001)
    with pytest.raises(csf.ConfigError, match="warmup: expected a number from 0 to 86,400"):
        csf.provider(service="XIESR", warmup=math.inf)
    with pytest.raises(csf.ConfigError, match="executes: expected a whole number from 1"):
        csf.provider(service="XIESR", executes=0)
    with pytest.raises(csf.ConfigError, match="tags"):
        csf.provider(service="XIESR", tags={"zone": 1})  # type: ignore[dict-item]
    server = csf.Server(registry="static://127.0.0.1:1", tenant="T")
    with pytest.raises(csf.ConfigError, match=r"not decorated with @csf\.provider"):
        server.add(greeter_pb2_grpc.GreeterServicer())


SECONDS = "expected a number from 0.001 to 86,400"
NAME_RULES = "(letters, digits, '.', '_', '-'; at most 128; not starting with a symbol)"


@pytest.mark.parametrize(
    ("url", "parsed"),
    [
        ("zk://h1:2181", ZooKeeperURL((("h1", 2181),), "", 10.0, None)),
        ("zk://h1:2181/", ZooKeeperURL((("h1", 2181),), "", 10.0, None)),
        ("zk://h1:2181/csf/", ZooKeeperURL((("h1", 2181),), "/csf", 10.0, None)),
        ("zk://h1:2181/X", ZooKeeperURL((("h1", 2181),), "/X", 10.0, None)),
        ("zk://h:65535?digest=a:p:w", ZooKeeperURL((("h", 65535),), "", 10.0, ("a", "p:w"))),
        ("zk://h1:1?digest=app://x", ZooKeeperURL((("h1", 1),), "", 10.0, ("app", "//x"))),
    ],
)  # fmt: skip
def test_a_good_zk_url_parses_into_its_parts(url: str, parsed: ZooKeeperURL) -> None:
    assert parse_registry_url(url) == parsed


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("zk://", "registry: 'zk://' names no ZooKeeper host; form: " + ZK_URL_FORM),
        ("zk://h1:0", "registry: port 0 is out of range in 'h1:0'"),
        ("zk://h1:65536", "registry: port 65536 is out of range in 'h1:65536'"),
        ("zk://b@d:1", "registry: 'zk://***@d:1' puts credentials before '@'; give them "
                       "with digest=, digest_file= or CSF_ZK_DIGEST"),
        ("zk://h:1,digest=u:pw", "registry: 'digest=***' is not host:port"),
        ("zk://h:\u00b2", "registry: 'h:***' is not host:port"),
        ("zk://h:" + "9" * 5_000, "registry: 'h:***' is not host:port"),
        ("zk://h:1,alice:pw", "registry: 'alice:***' is not host:port"),
        ("zk://h1:2181\n", "registry: 'h1:2181\\n' is not host:port"),
        ("static://h1:1, h2:2", "registry: ' h2' is not a host name, an IPv4 address or a "
                                "bracketed IPv6 address"),
        ("zk://h_1:1", "registry: 'h_1' is not a host name, an IPv4 address or a bracketed "
                       "IPv6 address"),
        ("zk://h1:1/csf\n", "registry: the chroot in 'zk://h1:1/csf\\n' is not a valid path"),
        ("zk://h1:1?session_timeout", "registry: query field 1 ('session_timeout') is not "
                                      "key=value"),
        ("zk://h1:1?digest=u:p&", "registry: query field 2 ('') is not key=value"),
        ("zk://h1:1?digestu:pw", "registry: query field 1 ('digestu:***') is not key=value"),
        ("zk://h1:1?colour=red", "registry: unknown parameter 'colour'; accepted: "
                                 "session_timeout, digest, digest_file"),
        ("zk://h1:1?digest=u:p&digest=u:q", "registry digest: given twice"),
        ("zk://h1:1?digest=u:p&digest_file=/f", "registry: give digest= or digest_file=, "
                                                "not both"),
        ("zk://h1:1?session_timeout=0.5", "registry session_timeout: expected a number from "
                                          "1 to 600, got 0.5"),
        ("zk://h1:1?session_timeout=601", "registry session_timeout: expected a number from "
                                          "1 to 600, got 601.0"),
        ("zk://h1:1?session_timeout=1e306", "registry session_timeout: '1e306' is not a "
                                            "number of seconds"),
        ("zk://h1:1?session_timeout=nan", "registry session_timeout: 'nan' is not a number "
                                          "of seconds"),
        ("zk://h1:1?session_timeout=\u0661\u0660", "registry session_timeout: "
                                                   "'\u0661\u0660' is not a number of seconds"),
        ("static://h1:65536", "registry: port 65536 is out of range in 'h1:65536'"),
        ("static://h:1?x", "registry: 'static://h:1?x' is not of the form " + STATIC_URL_FORM),
        ("zk://h1:1?session_timeout=", "registry session_timeout: '' is not a number of seconds"),
        ("zk://h1:1?digest=", "registry digest: expected user:password"),
        ("zk://h1:1?digest=:pw", "registry digest: expected user:password"),
        ("zk://h1:1?digest=app:", "registry digest: expected user:password"),
    ],
)  # fmt: skip
def test_bad_registry_urls_say_exactly_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(csf.ConfigError) as caught:
        parse_registry_url(url)
    assert str(caught.value) == message


def test_a_malformed_query_is_a_config_error() -> None:
    with pytest.raises(csf.ConfigError, match="registry"):
        parse_registry_url("zk://h1:2181?session_timeout")


def test_a_digest_is_taken_literally_up_to_the_next_ampersand() -> None:
    url = parse_registry_url("zk://h1:1?digest=u:p+w%41=b&session_timeout=2")
    assert url == ZooKeeperURL((("h1", 1),), "", 2.0, ("u", "p+w%41=b"))


def test_a_session_timeout_outside_its_range_is_refused_however_the_url_is_built() -> None:
    assert parse_registry_url("zk://h1:1?session_timeout=1") == ZooKeeperURL((("h1", 1),), "", 1.0)
    assert parse_registry_url("zk://h1:1?session_timeout=600.0").session_timeout == 600.0  # type: ignore[union-attr]
    for seconds in (0.999, 600.5, 1e306, float("inf"), float("nan"), 10**400):
        with pytest.raises(csf.ConfigError, match="registry session_timeout"):
            ZooKeeperURL((("h1", 1),), "", seconds)


def test_a_method_config_takes_good_values() -> None:
    config = csf.MethodConfig(timeout=0.5, retries=0, idempotent=True, cluster="c2", lb="p2c")
    assert (config.timeout, config.retries, config.cluster, config.lb) == (0.5, 0, "c2", "p2c")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timeout": 0}, f"MethodConfig.timeout: {SECONDS}, got 0"),
        ({"timeout": "1s"}, f"MethodConfig.timeout: {SECONDS}, got '1s'"),
        ({"retries": -1}, "MethodConfig.retries: expected a whole number from 0 to 10, got -1"),
        ({"retries": 11}, "MethodConfig.retries: expected a whole number from 0 to 10, got 11"),
        ({"timeout": 86_401}, f"MethodConfig.timeout: {SECONDS}, got 86401"),
        ({"cluster": "a/b"}, f"MethodConfig.cluster: 'a/b' is not a valid name {NAME_RULES}"),
        ({"lb": "-x"}, f"MethodConfig.lb: '-x' is not a valid name {NAME_RULES}"),
    ],
)
def test_method_config_errors_name_the_field(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(csf.ConfigError) as caught:
        csf.MethodConfig(**kwargs)  # type: ignore[arg-type]
    assert str(caught.value) == message


async def _fallback(request: object, error: BaseException) -> str:
    return "fallback"


def test_a_stub_config_takes_good_values_and_resolves_each_method() -> None:
    config = StubConfig(
        service="XIESR", cluster="c1", lb="random", timeout=2.0, retries=0,
        hash_key=lambda request: "k", fallback={"SayHello": _fallback},
        group="gray", version="2.0.0", tags={"zone": "hz"},
        methods={"SayHello": csf.MethodConfig(timeout=0.5, retries=3, idempotent=True,
                                              cluster="c2", lb="p2c_ewma")},
    )  # fmt: skip
    assert config.method("SayHello") == MethodSettings(
        timeout=0.5, retries=3, idempotent=True, cluster="c2", lb="p2c_ewma",
        group="gray", version="2.0.0", tags={"zone": "hz"},
    )  # fmt: skip
    assert config.method("Other") == MethodSettings(
        timeout=2.0, retries=0, idempotent=False, cluster="c1", lb="random",
        group="gray", version="2.0.0", tags={"zone": "hz"},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"service": "bad name"}, f"service: 'bad name' is not a valid name {NAME_RULES}"),
        ({"cluster": ""}, f"cluster: '' is not a valid name {NAME_RULES}"),
        ({"lb": "a/b"}, f"lb: 'a/b' is not a valid name {NAME_RULES}"),
        ({"group": "a/b"}, f"group: 'a/b' is not a valid name {NAME_RULES}"),
        ({"version": 2}, "version: expected a string, got 2"),
        ({"tags": {"zone": 1}}, "tags: expected a mapping of str to str, got {'zone': 1}"),
        ({"timeout": -1}, f"timeout: {SECONDS}, got -1"),
        ({"timeout": 1e13}, f"timeout: {SECONDS}, got 10000000000000.0"),
        ({"retries": True}, "retries: expected a whole number from 0 to 10, got True"),
        ({"hash_key": "name"}, "hash_key: expected a function of the request, got 'name'"),
        ({"methods": {"M": 1}}, "methods: expected a mapping of method name to csf.MethodConfig"),
        ({"fallback": {1: _fallback}}, "fallback: 1 must map a method name to a function"),
        ({"fallback": {"M": "f"}}, "fallback: 'M' must map a method name to a function"),
    ],
)
def test_stub_config_errors_name_the_field(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(csf.ConfigError) as caught:
        StubConfig(**{"service": "XIESR", **kwargs})  # type: ignore[arg-type]
    assert str(caught.value) == message


def test_a_stub_without_settings_gets_the_documented_defaults() -> None:
    assert StubConfig(service="S").method("M") == MethodSettings(
        timeout=5.0, retries=2, idempotent=False, cluster="defaultCluster", lb="round_robin",
        group=None, version=None, tags={},
    )  # fmt: skip


class _Fallbacks:
    async def SayHello(self, request: object, error: BaseException) -> str:
        return "fallback"

    Chat = "not a function"


def test_a_stub_finds_each_methods_fallback_in_a_mapping_or_an_object() -> None:
    by_name = StubConfig(service="S", fallback={"SayHello": _fallback, "Chat": _fallback})
    assert by_name.fallback_for("SayHello") is _fallback
    assert by_name.fallback_for("Other") is None
    holder = _Fallbacks()
    by_object = StubConfig(service="S", fallback=holder)
    assert by_object.fallback_for("SayHello") == holder.SayHello
    assert by_object.fallback_for("Chat") is None
    assert by_object.fallback_for("Other") is None
    assert StubConfig(service="S").fallback_for("SayHello") is None
