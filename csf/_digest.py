"""ZooKeeper digest credentials: where they come from, and texts that never show them.

A tenant's `user:password` comes from the registry URL (`digest=user:password`, taken
literally up to the next '&'), from a file named there (`digest_file=/path`, holding
`user:password` and an optional final newline), or from the `CSF_ZK_DIGEST` environment
variable when the URL names neither; the last two keep the password off command lines.
Error messages quote URLs only through `redact_url`, which masks every password.
"""

from __future__ import annotations

import os
import re

from csf._exceptions import ConfigError
from csf._files import read_at_most

DIGEST_ENV = "CSF_ZK_DIGEST"
# A credentials file is one line; anything much longer is not one.
_MAX_FILE_BYTES = 4096
MASK = "***"

# In a query field, whatever follows the first ':' (a digest's password, or a password
# typed where a key belongs).
_QUERY_SECRET = re.compile(r"(?<=:)[^&]+")
# In the location, everything after an '=' or a ':' that does not start a port (a
# password may hold ',' and '/'); bracketed IPv6 addresses are kept as they are.
_LOCATION_SECRET = re.compile(r"(\[[0-9A-Fa-f:.]*\])|[=:](?![0-9]{1,5}(?:[,/]|$)).*")


def parse_digest(field_name: str, text: str) -> tuple[str, str]:
    """`user:password` into its parts, both non-empty; the password may hold ':'.
    The error never quotes the text: it is a secret."""
    user, colon, password = text.partition(":")
    if not colon or not user or not password:
        raise ConfigError(f"{field_name}: expected user:password")
    return user, password


def read_digest_file(field_name: str, path: str) -> tuple[str, str]:
    """The credentials held by the file at `path` (blocking: read once, at configuration)."""
    data = read_at_most(field_name, path, _MAX_FILE_BYTES)
    try:
        text = data.decode()
    except UnicodeDecodeError:
        text = ""
    if len(data) > _MAX_FILE_BYTES or not text:
        raise ConfigError(f"{field_name}: {path!r} does not hold user:password")
    line = text.removesuffix("\n").removesuffix("\r")
    return parse_digest(f"{field_name} {path!r}", line)


def digest_from_env() -> tuple[str, str] | None:
    """The credentials in CSF_ZK_DIGEST, or None when it is unset or empty."""
    text = os.environ.get(DIGEST_ENV)
    return parse_digest(DIGEST_ENV, text) if text else None


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")


def redact_url(url: str) -> str:
    """`url` with whatever may be a password masked: `digest=user:***`, `zk://***@host`,
    `zk://h:1,user:***`. A well-formed URL without credentials comes out unchanged. By
    URL syntax, a password typed in the location ends at '@' or '?'."""
    location, question, query = url.partition("?")
    scheme, sep, rest = location.partition("://")
    if not sep or not _SCHEME.fullmatch(scheme):  # "zk:/digest=u:pw://" has none
        scheme, sep, rest = "", "", location
    _, at, tail = rest.rpartition("@")
    if at:
        rest = MASK + at + tail
    rest = _LOCATION_SECRET.sub(_mask_location, rest)
    fields = "&".join(map(redact_query_field, query.split("&")))
    return scheme + sep + rest + question + fields


def _mask_location(found: re.Match[str]) -> str:
    return found.group(1) or found.group(0)[0] + MASK


def redact_query_field(text: str) -> str:
    """A query field, key or value with whatever follows its first ':' masked."""
    return _QUERY_SECRET.sub(MASK, text, count=1)
