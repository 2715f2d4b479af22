"""Caller authentication: which app is calling, proven with a token, and whether it may.

A consumer with an `app_secret` sends its app name and a token in every call's
metadata: `<issued>.<HMAC-SHA256(secret, app, tenant, service, issued)>`, renewed
every minute, so a token seen in transit is good for minutes, not forever. A provider
configured with `CallerAuth` checks it before the handler runs:

- no app, no token, an unknown app or a wrong, stale or malformed token: UNAUTHENTICATED;
- an app with no node under the service's `subscriptions/` (csf-registry subscribe):
  PERMISSION_DENIED.

A token is `<issued>.<64 lowercase hex digits>`, `issued` being whole Unix seconds in
ASCII digits (at most 11); it is accepted within `max_skew` (at most a day: bounds.SECONDS)
either way of the provider's clock. Anything else, whatever its size or characters, is
an invalid token: `verify` answers False, it never raises.

The apps a provider names in `gateways` (csf-gateway) call on behalf of HTTP callers
and send the caller's app in `csf-origin-app`; a handler reads it with
`csf.origin_app(context)`. It is honoured only from a gateway that authenticated, so
no other caller can forge it.

Tokens and secrets never reach logs, span attributes, error messages or reprs.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping, Set
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import grpc

from csf import bounds
from csf._exceptions import ConfigError
from csf._handlers import OnEntry
from csf.config import check_name

APP_KEY = "csf-app"
TOKEN_KEY = "csf-token"
ORIGIN_APP_KEY = "csf-origin-app"
TOKEN_RENEWAL = 60.0
DEFAULT_MAX_SKEW = 300.0
_TOKEN = re.compile(r"([0-9]{1,11})\.[0-9a-f]{64}")

Metadata = tuple[tuple[str, str], ...]

# Set by AuthGuard in the handler's task: whether the authenticated caller is a trusted
# gateway. None: no caller was authenticated (a server without CallerAuth).
_from_gateway: ContextVar[bool | None] = ContextVar("csf_from_gateway", default=None)


def sign(secret: str, app: str, tenant: str, service: str, issued: int) -> str:
    message = f"{app}\n{tenant}\n{service}\n{issued}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"{issued}.{digest}"


class CallerToken:
    """Consumer side: the app's metadata for calls to one service, renewed each minute."""

    __slots__ = ("_app", "_pairs", "_renew_at", "_secret", "_service", "_tenant")

    def __init__(self, app: str, secret: str, tenant: str, service: str) -> None:
        self._app, self._secret = app, secret
        self._tenant, self._service = tenant, service
        self._renew_at = 0.0
        self._pairs: Metadata = ()

    def metadata(self) -> Metadata:
        now = time.monotonic()
        if now >= self._renew_at:
            token = sign(self._secret, self._app, self._tenant, self._service, int(time.time()))
            self._pairs = ((APP_KEY, self._app), (TOKEN_KEY, token))
            self._renew_at = now + TOKEN_RENEWAL
        return self._pairs


@dataclass(frozen=True)
class CallerAuth:
    """Provider side: `secrets` maps each app allowed to authenticate to its secret.
    With `require_subscription` (the default) the app must also be subscribed to the
    service; `max_skew` bounds a token's age (seconds, either way of the clock).
    `gateways` names the apps (each with a secret) trusted to say, in `csf-origin-app`,
    which app their HTTP caller is (`csf.origin_app`); from any other caller it is
    dropped."""

    secrets: Mapping[str, str] = field(repr=False)
    require_subscription: bool = True
    max_skew: float = DEFAULT_MAX_SKEW
    gateways: Set[str] = frozenset()

    def __post_init__(self) -> None:
        if not isinstance(self.secrets, Mapping) or not self.secrets:
            raise ConfigError("auth.secrets: expected a non-empty {app: secret} mapping")
        for app, secret in self.secrets.items():
            check_name("auth.secrets app", app)
            if not isinstance(secret, str) or len(secret) < 16:
                raise ConfigError(f"auth.secrets[{app!r}]: expected a string of 16+ characters")
        # A clock error beyond a day is no skew: a token that old is a replay.
        bounds.SECONDS.check("auth.max_skew", self.max_skew, ConfigError)
        if not isinstance(self.gateways, Set):  # a str would be a set of letters
            raise ConfigError(f"auth.gateways: expected a set of app names, got {self.gateways!r}")
        for app in self.gateways:
            if check_name("auth.gateways app", app) not in self.secrets:
                raise ConfigError(f"auth.gateways: {app!r} has no secret in auth.secrets")
        object.__setattr__(self, "gateways", frozenset(self.gateways))

    def __repr__(self) -> str:
        return (
            f"CallerAuth(apps={sorted(self.secrets)!r}, "
            f"require_subscription={self.require_subscription!r}, max_skew={self.max_skew!r}, "
            f"gateways={sorted(self.gateways)!r})"
        )

    def verify(self, tenant: str, service: str, app: str | None, token: str | None) -> bool:
        """Whether `token` proves `app` for this tenant and service now; False for any
        malformed, unknown or stale input."""
        if not isinstance(app, str) or not isinstance(token, str):
            return False
        secret = self.secrets.get(app)
        shape = _TOKEN.fullmatch(token)
        if secret is None or shape is None:
            return False
        issued = int(shape.group(1))
        if abs(time.time() - issued) > self.max_skew:
            return False
        return hmac.compare_digest(token, sign(secret, app, tenant, service, issued))


class Subscribers:
    """The apps subscribed to one service, as the registry last listed them (None until
    the first listing)."""

    __slots__ = ("apps",)

    def __init__(self) -> None:
        self.apps: frozenset[str] | None = None

    def update(self, apps: frozenset[str]) -> None:
        self.apps = apps


class AuthGuard:
    """Provider side: refuse a call before its handler unless its caller proves who it
    is and, when required, is subscribed."""

    def __init__(
        self, auth: CallerAuth, tenant: str, service: str, subscribers: Subscribers | None
    ) -> None:
        self._auth = auth
        self._gateways = auth.gateways
        self._tenant = tenant
        self._service = service
        self._subscribers = subscribers

    def __call__(self, context: grpc.aio.ServicerContext[Any, Any]) -> OnEntry:
        return OnEntry(self._check, context)

    async def _check(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        app = token = None
        for key, value in context.invocation_metadata() or ():
            if key == APP_KEY and isinstance(value, str):
                app = value
            elif key == TOKEN_KEY and isinstance(value, str):
                token = value
        if not self._auth.verify(self._tenant, self._service, app, token):
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED, "missing, unknown or invalid caller credentials"
            )
        _from_gateway.set(app in self._gateways)
        if self._subscribers is None:
            return
        if self._subscribers.apps is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "subscriptions not loaded yet")
        elif app not in self._subscribers.apps:
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"app {app!r} is not subscribed to {self._service}",
            )


def origin_app(context: grpc.aio.ServicerContext[Any, Any]) -> str | None:
    """Inside a handler: the app of the HTTP caller a gateway called on behalf of
    (metadata `csf-origin-app`), or None.

    On a server with `CallerAuth` the value counts only when the authenticated caller is
    one of its `gateways`; from any other caller it is None, whatever the call sent. On a
    server without CallerAuth nothing is authenticated: the value is taken as sent, with
    the same trust as the caller's own `csf-app`. A value that is not a valid app name
    is None.
    """
    if _from_gateway.get() is False:
        return None
    for key, value in context.invocation_metadata() or ():
        if key == ORIGIN_APP_KEY:
            try:
                return check_name(ORIGIN_APP_KEY, value)
            except ConfigError:
                return None
    return None
