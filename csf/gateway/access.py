"""The gateway's access layer: which app calls, proven by an HMAC signature, and no replay.

A caller sends four headers (DESIGN section 6):

- `X-Csf-App`: its app name, one of the `--apps` file;
- `X-Csf-Timestamp`: Unix milliseconds, ASCII digits;
- `X-Csf-Nonce`: 8-64 characters of `[A-Za-z0-9_-]`, never used twice by the app;
- `X-Csf-Signature`: base64 (standard, padded) of HMAC-SHA256 keyed with the app's
  secret over `string_to_sign(...)`.

`Signatures.verify` answers the app or raises `AccessError`: 401 for anything wrong with
the caller's proof, 503 when the nonce cache is full of live entries. Whatever the header
values (huge, empty, non-ASCII), it raises nothing else. Messages say what was wrong and
never echo a secret, a signature or the caller's header text.

`verify` does not await: in one event loop its check-and-remember is atomic. The cache
lives in one process; several gateways behind a load balancer need a shared one.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import math
import os
import re
import secrets
import time
from collections.abc import Callable, Mapping

from csf import bounds
from csf._exceptions import ConfigError
from csf._files import read_at_most
from csf._json import load_json_object
from csf.config import check_name
from csf.gateway.errors import HttpError

APP_HEADER = "x-csf-app"
TIMESTAMP_HEADER = "x-csf-timestamp"
NONCE_HEADER = "x-csf-nonce"
SIGNATURE_HEADER = "x-csf-signature"

DEFAULT_WINDOW_S = 300.0
DEFAULT_MAX_NONCES = 100_000
MAX_APPS_FILE_BYTES = 1 << 20
MIN_SECRET_CHARS = 16

# Unix ms has 13 digits until the year 2286; 15 leaves room and keeps int() cheap.
_TIMESTAMP = re.compile(r"[0-9]{1,15}")
_NONCE = re.compile(r"[A-Za-z0-9_-]{8,64}")
# Base64 of 32 bytes is 44 characters; anything much longer is not worth comparing.
_MAX_SIGNATURE_CHARS = 128
_DROPS_PER_REQUEST = 8


class AccessError(HttpError):
    """A refused caller: HTTP status, gRPC code name, message (no secrets), optional
    retry_after seconds."""


def _unauthenticated(message: str) -> AccessError:
    return AccessError(401, "UNAUTHENTICATED", message)


def string_to_sign(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """What the signature covers: method (upper case), path (raw, with `?` and the raw
    query when there is one), timestamp, nonce and the body's SHA-256, one per line, UTF-8."""
    digest = hashlib.sha256(body).hexdigest()
    text = "\n".join([method.upper(), path, timestamp, nonce, digest])
    # surrogatepass: a path no client can have signed still gives bytes, never an error.
    return text.encode("utf-8", "surrogatepass")


def sign(secret: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    """The X-Csf-Signature of a request: base64 (standard, padded) of HMAC-SHA256."""
    message = string_to_sign(method, path, timestamp, nonce, body)
    mac = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(mac).decode("ascii")


def signed_headers(
    app: str, secret: str, method: str, path: str, body: bytes = b""
) -> dict[str, str]:
    """The X-Csf-* headers of one request signed now with a fresh nonce; `path` as sent,
    with `?` and the query when there is one."""
    timestamp, nonce = str(int(time.time() * 1000)), secrets.token_urlsafe(16)
    return {
        "X-Csf-App": app,
        "X-Csf-Timestamp": timestamp,
        "X-Csf-Nonce": nonce,
        "X-Csf-Signature": sign(secret, method, path, timestamp, nonce, body),
    }


def check_apps(where: str, apps: object) -> dict[str, str]:
    """A non-empty {app: secret} mapping, app names valid, secrets strings of 16+
    characters; else ConfigError naming `where` (and never a secret)."""
    if not isinstance(apps, Mapping) or not apps:
        raise ConfigError(f"{where}: expected a non-empty JSON object {{app: secret}}")
    checked: dict[str, str] = {}
    for app, secret in apps.items():
        check_name(f"{where} app", app)
        if not isinstance(secret, str) or len(secret) < MIN_SECRET_CHARS:
            raise ConfigError(
                f"{where}: the secret of {app!r} must be a string of {MIN_SECRET_CHARS}+ characters"
            )
        try:
            secret.encode()
        except UnicodeEncodeError:
            raise ConfigError(f"{where}: the secret of {app!r} is not valid Unicode") from None
        checked[app] = secret
    return checked


def load_apps(path: str | os.PathLike[str]) -> dict[str, str]:
    """The `--apps` file: a JSON object {app: secret} of at most 1 MiB (blocking: read
    once, at start). ConfigError naming the file and what is wrong."""
    data = read_at_most("apps file", path, MAX_APPS_FILE_BYTES)
    where = f"apps file {os.fspath(path)!r}"
    try:
        document = load_json_object(data, MAX_APPS_FILE_BYTES)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return check_apps(where, document)


def _window_text(window_s: float) -> str:
    if window_s % 60 == 0:
        return f"{window_s / 60:g}-minute window"
    return f"{window_s:g}-second window"


class Signatures:
    """Verifies signed requests for the apps of `secrets`, and refuses replays.

    A timestamp must be within `window_s` of `clock()` either way, and not before this
    object was made (its nonce cache starts empty, so an older request may be a replay).
    An (app, nonce) pair is remembered once its signature verifies, until its timestamp
    leaves the window; at `max_nonces` live pairs, new requests get 503 rather than
    evicting one (which would reopen it to replay).
    """

    def __init__(
        self,
        secrets: Mapping[str, str],
        *,
        window_s: float = DEFAULT_WINDOW_S,
        max_nonces: int = DEFAULT_MAX_NONCES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        apps = check_apps("gateway apps", secrets)
        # Keyed by name; the stored name is reused in cache keys, so each entry holds
        # only its nonce's own text.
        self._keys = {app: (app, secret.encode()) for app, secret in apps.items()}
        self._window = bounds.WINDOW_S.check("window_s", window_s, ConfigError)
        self._window_text = _window_text(self._window)
        self._max_nonces = bounds.CALLS.check_whole("max_nonces", max_nonces, ConfigError)
        self._clock = clock
        # Whole ms, as timestamps are: a request signed in the start's millisecond passes.
        self._started_ms = math.floor(clock() * 1000)
        # (app, nonce) -> expiry, and the same entries in a heap by expiry: dropping an
        # expired one costs O(log n), never a scan.
        self._nonces: dict[tuple[str, str], float] = {}
        self._expiries: list[tuple[float, str, str]] = []

    def __repr__(self) -> str:
        return f"Signatures(apps={sorted(self._keys)!r}, window_s={self._window!r})"

    def verify(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> str:
        """The verified app name; AccessError otherwise. `headers` are lower-case names."""
        now = self._clock()
        app, secret = self._app(headers.get(APP_HEADER))
        timestamp = self._timestamp(headers.get(TIMESTAMP_HEADER), now)
        nonce = headers.get(NONCE_HEADER)
        if not nonce:
            raise _unauthenticated("missing X-Csf-Nonce")
        if not _NONCE.fullmatch(nonce):
            raise _unauthenticated("X-Csf-Nonce must be 8-64 characters of A-Z a-z 0-9 _ -")
        signature = headers.get(SIGNATURE_HEADER)
        if not signature:
            raise _unauthenticated("missing X-Csf-Signature")
        if len(signature) > _MAX_SIGNATURE_CHARS or not signature.isascii():
            raise _unauthenticated("X-Csf-Signature is not base64 of an HMAC-SHA256")
        message = string_to_sign(method, path, timestamp, nonce, body)
        expected = base64.b64encode(hmac.new(secret, message, hashlib.sha256).digest())
        if not hmac.compare_digest(signature.encode("ascii"), expected):
            raise _unauthenticated("signature does not match")
        self._remember(app, nonce, int(timestamp) / 1000 + self._window, now)
        return app

    def _app(self, app: str | None) -> tuple[str, bytes]:
        if not app:
            raise _unauthenticated("missing X-Csf-App")
        key = self._keys.get(app)
        if key is None:
            raise _unauthenticated("unknown app in X-Csf-App")
        return key

    def _timestamp(self, timestamp: str | None, now: float) -> str:
        if not timestamp:
            raise _unauthenticated("missing X-Csf-Timestamp")
        if not _TIMESTAMP.fullmatch(timestamp):
            raise _unauthenticated("X-Csf-Timestamp must be Unix milliseconds in ASCII digits")
        milliseconds = int(timestamp)
        if abs(now - milliseconds / 1000) > self._window:
            raise _unauthenticated(f"X-Csf-Timestamp outside the {self._window_text}")
        if milliseconds < self._started_ms:
            raise _unauthenticated("X-Csf-Timestamp is before the gateway started; sign again")
        return timestamp

    def _remember(self, app: str, nonce: str, expiry: float, now: float) -> None:
        # A few expired entries per request outpace the one it adds, and no request pays
        # for a whole cache expiring at once (100k entries: a third of a second).
        for _ in range(_DROPS_PER_REQUEST):
            if not self._drop_expired(now):
                break
        key = (app, nonce)
        held = self._nonces.get(key)
        if held is not None and held >= now:
            raise _unauthenticated("nonce already used")
        if held is None:
            while len(self._nonces) >= self._max_nonces and self._drop_expired(now):
                pass
            if len(self._nonces) >= self._max_nonces:
                wait = float(max(1, math.ceil(self._expiries[0][0] - now)))
                raise AccessError(
                    503, "UNAVAILABLE", "too many recent requests to check for replays", wait
                )
        self._nonces[key] = expiry
        heapq.heappush(self._expiries, (expiry, app, nonce))

    def _drop_expired(self, now: float) -> bool:
        """Drop the entry that expires first if it has expired; whether there was one."""
        if not self._expiries or self._expiries[0][0] >= now:
            return False
        expiry, app, nonce = heapq.heappop(self._expiries)
        # An expired pair used again has a newer entry: this one is only its old heap slot.
        if self._nonces.get((app, nonce)) == expiry:
            del self._nonces[app, nonce]
        return True
