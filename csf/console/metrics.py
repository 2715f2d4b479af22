"""The live view's figures: scraping the metrics endpoints a service's instances announce.

Only `http://<host>:<metrics_port>/metrics` of a registered instance is ever fetched, and
only when its host passes `check_host` and its port is a port: no redirect is followed,
no proxy from the environment is used. Each fetch is bounded in time (`TIMEOUT_S` in
all) and size (`MAX_BYTES`); the endpoints of a service are fetched together, at most
once per `EVERY_S` however many pages show it. The series are kept per login and
service, at most `MAX_SERIES` of them; one no page asked for in `IDLE_S` is dropped.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpx

from csf import bounds
from csf._exceptions import ConfigError
from csf.config import check_host
from csf.console import exposition
from csf.console.series import Series

TIMEOUT_S = 1.0
MAX_BYTES = 2 * 1024 * 1024
EVERY_S = 1.0
MAX_SERIES = 64
IDLE_S = 60.0
MAX_ENDPOINTS = 64  # scraped per service and round; a larger service shows the first ones

UP = "up"
NO_METRICS = "no metrics"
UNREACHABLE = "unreachable"
BAD_METRICS = "bad metrics"
NOT_SCRAPED = "not scraped"
IDENTITY = {"Accept-Encoding": "identity"}


def endpoint(provider: Mapping[str, Any]) -> str | None:
    """The metrics URL a provider announces; None when it announces none we may fetch."""
    port, host = provider.get("metrics_port"), provider.get("host")
    if type(port) is not int or not bounds.PORT.low <= port <= bounds.PORT.high:
        return None
    try:
        check_host("host", host)
    except ConfigError:
        return None
    return f"http://{host}:{port}/metrics"


class _Watched:
    """A series, the health of its endpoints at the last scrape, and its lock."""

    def __init__(self, used_at: float) -> None:
        self.series = Series()
        self.health: dict[str, str] = {}
        self.lock = asyncio.Lock()
        self.used_at = used_at


class LiveMetrics:
    """The series open pages show; owns the HTTP client, closed by `close`."""

    def __init__(
        self,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_series: int = MAX_SERIES,
    ) -> None:
        # `transport` is for tests: the client's rules (no proxy, no redirect) stay.
        self._client = httpx.AsyncClient(
            transport=transport, timeout=TIMEOUT_S, trust_env=False, follow_redirects=False
        )
        self._clock = clock
        self._max_series = max_series
        self._watched: OrderedDict[tuple[str, str], _Watched] = OrderedDict()

    def __len__(self) -> int:
        return len(self._watched)

    async def close(self) -> None:
        await self._client.aclose()

    async def scrape(
        self, login_id: str, service: str, providers: Iterable[Mapping[str, Any]]
    ) -> tuple[Series, dict[str, str]]:
        """The service's series, scraped again if `EVERY_S` passed since the last time,
        and each provider's health by address: "up", "unreachable", "bad metrics",
        "no metrics" (it announces none) or "not scraped" (past MAX_ENDPOINTS)."""
        watched = self._watch((login_id, service))
        urls = {p.get("address", ""): endpoint(p) for p in providers}
        scraped = sorted({url for url in urls.values() if url is not None})[:MAX_ENDPOINTS]
        async with watched.lock:
            at = self._clock()
            due = watched.series.scraped_at is None or at - watched.series.scraped_at >= EVERY_S
            if due or not set(scraped) <= set(watched.health):
                answers = await asyncio.gather(*(self._fetch(url, service) for url in scraped))
                by_url = dict(zip(scraped, answers, strict=True))
                watched.health = {url: health for url, (health, _) in by_url.items()}
                readings = {url: r for url, (_, r) in by_url.items() if r is not None}
                watched.series.add(at, readings)
        health = {
            address: NO_METRICS if url is None else watched.health.get(url, NOT_SCRAPED)
            for address, url in urls.items()
        }
        return watched.series, health

    def _watch(self, key: tuple[str, str]) -> _Watched:
        now = self._clock()
        for old_key, old in list(self._watched.items()):
            if now - old.used_at > IDLE_S:
                del self._watched[old_key]
        watched = self._watched.get(key)
        if watched is None:
            while len(self._watched) >= self._max_series:
                self._watched.popitem(last=False)  # the least recently shown
            watched = self._watched[key] = _Watched(now)
        watched.used_at = now
        self._watched.move_to_end(key)
        return watched

    async def _fetch(self, url: str, service: str) -> tuple[str, exposition.Reading | None]:
        """The endpoint's health and reading; never raises."""
        try:
            async with asyncio.timeout(TIMEOUT_S):
                text = await self._get(url)
        # ValueError and InvalidURL: a name check_host allows that IDNA refuses (xn--...).
        except (httpx.HTTPError, httpx.InvalidURL, TimeoutError, OSError, ValueError):
            return UNREACHABLE, None
        if text is None:
            return BAD_METRICS, None
        # Up to MAX_BYTES of text to parse: in a thread, so that the loop never waits on it.
        reading = await asyncio.to_thread(exposition.read, text, service)
        return (UP, reading) if reading is not None else (BAD_METRICS, None)

    async def _get(self, url: str) -> str | None:
        """The body of a 200 answer of at most MAX_BYTES, as text; None for any other.
        Uncompressed only: a small compressed answer could inflate past any bound."""
        async with self._client.stream("GET", url, headers=IDENTITY) as response:
            if response.status_code != 200:
                return None
            body = bytearray()
            async for chunk in response.aiter_raw():
                body += chunk
                if len(body) > MAX_BYTES:
                    return None
        return body.decode("utf-8", "replace")
