"""Scraping the metrics endpoints instances announce, and nothing else."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from csf.console import metrics
from csf.console.metrics import LiveMetrics, endpoint
from csf.testing.zookeeper import free_port

TEXT = 'csf_server_calls_total{csf_service="XIESR",rpc_grpc_status_code="0"} %d\n'


def provider(address: str, host: object = "127.0.0.1", port: object = 9464) -> dict[str, Any]:
    return {"address": address, "host": host, "metrics_port": port}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Body(httpx.AsyncByteStream):
    """An answer's body as a network sends it, in chunks, unread."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.data), 65536):
            yield self.data[start : start + 65536]


class Endpoints:
    """A fake network: what each URL answers; every URL asked is noted."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.asked.append(url)
        answer = self.answers.get(url, 404)
        if isinstance(answer, Exception):
            raise answer
        if answer == "hang":
            await asyncio.sleep(30)
        if isinstance(answer, int):
            return httpx.Response(answer, headers={"location": "http://127.0.0.1:1/metrics"})
        return httpx.Response(200, stream=Body(answer))


def live(endpoints: Endpoints, clock: Clock | None = None, max_series: int = 8) -> LiveMetrics:
    transport = httpx.MockTransport(endpoints)
    return LiveMetrics(transport=transport, clock=clock or Clock(), max_series=max_series)


def test_only_a_valid_host_and_port_make_a_metrics_url() -> None:
    assert endpoint(provider("a")) == "http://127.0.0.1:9464/metrics"
    assert endpoint(provider("a", host="[::1]")) == "http://[::1]:9464/metrics"
    for host in ["evil.example/x?", "unix:/tmp/s", "user@10.0.0.1", "", None, "a b"]:
        assert endpoint(provider("a", host=host)) is None, host
    for port in [None, 0, 65536, True, "9464", 9464.0]:
        assert endpoint(provider("a", port=port)) is None, port


async def test_only_the_announced_endpoints_are_fetched_each_once_and_health_says_how_it_went() -> (
    None
):
    endpoints = Endpoints({
        "http://10.0.0.1:9464/metrics": (TEXT % 5).encode(),
        "http://10.0.0.2:9464/metrics": httpx.ConnectError("refused"),
        "http://10.0.0.3:9464/metrics": 302,  # a redirect is not followed
        "http://10.0.0.4:9464/metrics": b"<html>",
    })  # fmt: skip
    scraper = live(endpoints)
    providers = [
        provider("10.0.0.1:1", "10.0.0.1"),
        provider("10.0.0.1:2", "10.0.0.1"),  # the same endpoint: fetched once
        provider("10.0.0.2:1", "10.0.0.2"),
        provider("10.0.0.3:1", "10.0.0.3"),
        provider("10.0.0.4:1", "10.0.0.4"),
        provider("10.0.0.5:1", "10.0.0.5", None),
        provider("bad:1", "evil/x"),
    ]
    series, health = await scraper.scrape("login", "XIESR", providers)
    await scraper.close()
    assert sorted(endpoints.asked) == [f"http://10.0.0.{n}:9464/metrics" for n in (1, 2, 3, 4)]
    assert health == {
        "10.0.0.1:1": "up",
        "10.0.0.1:2": "up",
        "10.0.0.2:1": "unreachable",
        "10.0.0.3:1": "bad metrics",
        "10.0.0.4:1": "bad metrics",
        "10.0.0.5:1": "no metrics",
        "bad:1": "no metrics",
    }
    assert series.readings["http://10.0.0.1:9464/metrics"].calls == 5


async def test_a_body_over_the_size_bound_or_an_endpoint_too_slow_gives_no_reading() -> None:
    endpoints = Endpoints({
        "http://10.0.0.1:9464/metrics": b"#" * (metrics.MAX_BYTES + 1),
        "http://10.0.0.2:9464/metrics": "hang",
    })  # fmt: skip
    scraper = live(endpoints)
    started = asyncio.get_running_loop().time()
    series, health = await scraper.scrape(
        "login", "XIESR", [provider("a", "10.0.0.1"), provider("b", "10.0.0.2")]
    )
    await scraper.close()
    assert health == {"a": "bad metrics", "b": "unreachable"}
    assert not series.readings
    assert asyncio.get_running_loop().time() - started < metrics.TIMEOUT_S + 1


async def test_a_service_is_scraped_at_most_once_a_second_unless_an_endpoint_joins() -> None:
    url = "http://10.0.0.1:9464/metrics"
    endpoints = Endpoints({url: (TEXT % 5).encode(), "http://10.0.0.2:9464/metrics": b""})
    clock = Clock()
    scraper = live(endpoints, clock)
    one = [provider("a", "10.0.0.1")]
    await scraper.scrape("login", "XIESR", one)
    clock.now += metrics.EVERY_S / 2
    await scraper.scrape("login", "XIESR", one)
    assert len(endpoints.asked) == 1
    await scraper.scrape("login", "XIESR", [*one, provider("b", "10.0.0.2")])
    assert len(endpoints.asked) == 3, "a new endpoint is scraped at once"
    endpoints.answers[url] = (TEXT % 25).encode()
    clock.now += metrics.EVERY_S * 2
    series, _ = await scraper.scrape("login", "XIESR", one)
    await scraper.close()
    assert series.points[-1].calls_per_s == 20 / (metrics.EVERY_S * 2)


async def test_series_are_kept_for_at_most_max_series_pages_and_idle_ones_are_dropped() -> None:
    clock = Clock()
    scraper = live(Endpoints({}), clock, max_series=3)
    for n in range(5):
        await scraper.scrape("login", f"S{n}", [])
    assert len(scraper) == 3
    clock.now += metrics.IDLE_S + 1
    await scraper.scrape("other", "S0", [])
    await scraper.close()
    assert len(scraper) == 1


async def test_no_proxy_from_the_environment_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """A real endpoint on loopback answers although the environment names a proxy."""
    body = (TEXT % 5).encode()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        writer.write(head.encode() + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{free_port()}")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    scraper = LiveMetrics()
    async with server:
        _, health = await scraper.scrape("login", "XIESR", [provider("a", port=port)])
    await scraper.close()
    assert health == {"a": "up"}


HOSTS = st.one_of(
    st.from_regex(r"\A(xn--)?[a-z0-9-]{1,12}(\.[a-z0-9-]{1,12}){0,2}\Z"),
    st.sampled_from(["127.0.0.1", "[::1]", "[fe80::1%eth0]", "xn--a", "xn--ls8h", "unix:/s"]),
    st.text(max_size=20),
    st.none(),
    st.integers(),
)
PORTS = st.one_of(st.integers(-1, 70000), st.none(), st.booleans(), st.text(max_size=5))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(HOSTS, PORTS), max_size=6))
def test_whatever_providers_announce_only_their_checked_urls_are_asked_and_none_raises(
    announced: list[tuple[object, object]],
) -> None:
    providers = [provider(f"p{n}", host, port) for n, (host, port) in enumerate(announced)]
    endpoints = Endpoints({})

    async def scrape() -> dict[str, str]:
        scraper = live(endpoints)
        _, health = await scraper.scrape("login", "XIESR", providers)
        await scraper.close()
        return health

    health = asyncio.run(scrape())
    allowed = {url.lower() for url in map(endpoint, providers) if url is not None}
    assert {url.lower() for url in endpoints.asked} <= allowed  # httpx lowercases the host
    assert set(health) == {p["address"] for p in providers}
    for p in providers:
        expected = {"no metrics"} if endpoint(p) is None else {"unreachable", "bad metrics"}
        assert health[p["address"]] in expected, p


async def test_a_service_with_more_endpoints_than_the_bound_has_the_first_ones_scraped() -> None:
    endpoints = Endpoints({})
    scraper = live(endpoints)
    many = [provider(f"10.0.{n // 250}.{n % 250 + 1}:1", f"10.0.{n // 250}.{n % 250 + 1}")
            for n in range(metrics.MAX_ENDPOINTS + 6)]  # fmt: skip
    _, health = await scraper.scrape("login", "XIESR", many)
    await scraper.close()
    assert len(endpoints.asked) == metrics.MAX_ENDPOINTS
    assert list(health.values()).count("not scraped") == 6


async def test_a_compressed_answer_is_not_inflated() -> None:
    compressed = gzip.compress((TEXT % 5).encode())
    url = "http://10.0.0.1:9464/metrics"

    async def gzipped(request: httpx.Request) -> httpx.Response:
        assert request.headers["accept-encoding"] == "identity"
        return httpx.Response(200, stream=Body(compressed), headers={"content-encoding": "gzip"})

    scraper = LiveMetrics(transport=httpx.MockTransport(gzipped))
    series, health = await scraper.scrape("login", "XIESR", [provider("a", "10.0.0.1")])
    await scraper.close()
    assert health == {"a": "bad metrics"} and url not in series.readings
