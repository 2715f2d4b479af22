"""Reading a file CSF is pointed at (PEM files, digest and secret files, the gateway's
apps): once, at configuration, and never more than its bound."""

from __future__ import annotations

import os
from pathlib import Path

from csf._exceptions import ConfigError
from csf._quoted import quoted


def read_at_most(where: str, path: object, limit: int) -> bytes:
    """The file's first `limit` + 1 bytes (a caller finding more knows it is too large:
    /dev/zero cannot stall it); ConfigError naming `where` and the file for any name the
    system cannot take (NUL, lone surrogate, not a path) and any file it cannot read."""
    try:
        shown = quoted(os.fspath(path))  # type: ignore[call-overload]
        name = Path(path)  # type: ignore[arg-type]
    except TypeError:
        raise ConfigError(f"{where}: expected a file name, got {quoted(path)}") from None
    try:
        with name.open("rb") as file:
            return file.read(limit + 1)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {shown}: {exc.strerror}") from None
    except ValueError:  # a NUL in the name; UnicodeEncodeError, a lone surrogate
        raise ConfigError(f"{where}: cannot read {shown}: not a usable file name") from None
