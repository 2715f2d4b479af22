"""What a gateway process is told: where the registry is, whom it calls as, its limits."""

from __future__ import annotations

from dataclasses import dataclass, field

from csf._exceptions import ConfigError
from csf.config import DEFAULT_STARTUP_WAIT, check_name, check_timeout, parse_registry_url
from csf.gateway.access import MIN_SECRET_CHARS

DEFAULT_APP = "csf-gateway"
DEFAULT_MAX_BODY = 4 * 1024 * 1024
DEFAULT_MAX_TIMEOUT = 30.0
MAX_BODY_LIMIT = 256 * 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class GatewaySettings:
    """`registry` and `tenant` as a Consumer takes them; `app` is the gateway's own app
    (with `app_secret` when providers check callers); `max_body` bounds a request body
    (bytes), `max_timeout` every call's deadline (seconds); `sample_ratio` is the share
    of requests traced, whatever a caller's `traceparent` asks."""

    registry: str
    tenant: str
    app: str = DEFAULT_APP
    app_secret: str | None = field(default=None, repr=False)
    max_body: int = DEFAULT_MAX_BODY
    max_timeout: float = DEFAULT_MAX_TIMEOUT
    sample_ratio: float = 1.0
    startup_wait: float = DEFAULT_STARTUP_WAIT
    snapshot_dir: str | None = None

    def __post_init__(self) -> None:
        parse_registry_url(self.registry)
        check_name("tenant", self.tenant)
        check_name("app", self.app)
        if self.app_secret is not None and len(self.app_secret) < MIN_SECRET_CHARS:
            raise ConfigError(f"app secret: expected a string of {MIN_SECRET_CHARS}+ characters")
        body_ok = isinstance(self.max_body, int) and not isinstance(self.max_body, bool)
        if not body_ok or not 0 < self.max_body <= MAX_BODY_LIMIT:
            raise ConfigError(
                f"max_body: expected 1 to {MAX_BODY_LIMIT} bytes, got {self.max_body!r}"
            )
        if check_timeout("max_timeout", self.max_timeout) <= 0:
            raise ConfigError("max_timeout: expected seconds > 0")
        check_timeout("startup_wait", self.startup_wait)
        ratio = self.sample_ratio
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 <= ratio <= 1:
            raise ConfigError(f"sample_ratio: expected 0 to 1, got {ratio!r}")
