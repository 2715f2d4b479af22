"""Per-app rate limits: the `apps` map of a service's `ratelimit` rule, one token bucket
per (app, service code, method scope) in this gateway process.

A call that finds no token is refused at once (429 with `Retry-After`): a gateway does
not queue an outside caller's requests.
"""

from __future__ import annotations

import math

from aiolimiter import AsyncLimiter

from csf.gateway.errors import HttpError
from csf.rule_set import ServiceRules
from csf.rules import RateLimitRule


class AppLimits:
    def __init__(self) -> None:
        self._buckets: dict[tuple[str, str, str], tuple[float, float, AsyncLimiter]] = {}

    async def admit(self, rules: ServiceRules, app: str, service: str, method: str) -> None:
        """Take a token for `app`'s call, or raise HttpError 429."""
        rule = rules.get(RateLimitRule)
        limit = None if rule is None else rule.app_limit(app, method)
        if limit is None:
            return
        key = (app, service, method if rule is not None and rule.app_scope(method) else "")
        found = self._buckets.get(key)
        if found is None or found[:2] != (limit.rate, limit.burst):
            bucket = AsyncLimiter(max_rate=limit.burst, time_period=limit.burst / limit.rate)
            found = self._buckets[key] = (limit.rate, limit.burst, bucket)
        bucket = found[2]
        if not bucket.has_capacity():
            raise HttpError(
                429,
                "RESOURCE_EXHAUSTED",
                f"app {app} is over its rate limit for {service}",
                retry_after=max(1.0, math.ceil(1 / limit.rate)),
            )
        await bucket.acquire()  # has capacity: takes the token without suspending
