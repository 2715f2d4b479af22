import pytest

import csf
from csf.config import StaticURL, ZooKeeperURL, parse_registry_url
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
    with pytest.raises(csf.ConfigError, match="tags"):
        csf.provider(service="XIESR", tags={"zone": 1})  # type: ignore[dict-item]
    server = csf.Server(registry="static://127.0.0.1:1", tenant="T")
    with pytest.raises(csf.ConfigError, match=r"not decorated with @csf\.provider"):
        server.add(greeter_pb2_grpc.GreeterServicer())
