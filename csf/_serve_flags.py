"""The flags csf-gateway and csf-console share: where to listen, how much to log."""

from __future__ import annotations

import logging

from csf._exceptions import ConfigError
from csf.config import check_host


def check_serve_flags(host: str, port: int, log_level: str) -> str:
    """The logging level's name (upper case); ConfigError naming a bad flag."""
    check_host("--host", host)
    level = log_level.upper()
    if not isinstance(logging.getLevelName(level), int):
        raise ConfigError(f"--log-level: {log_level!r} is not a logging level")
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port: {port} is not 0 to 65535")
    return level
