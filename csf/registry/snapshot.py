"""The consumer's on-disk copy of each provider list, to start from when ZooKeeper is down.

A snapshot file is outside data like a znode: any bytes there load as a list of valid
instances or as None (with a warning), never as an exception. A snapshot older than
MAX_SNAPSHOT_AGE is not used, and none is read from a directory that another user owns
or may write to: that user could plant providers. Directories CSF creates are 0o700.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from csf._json import has_schema, load_json_object
from csf.bounds import MAX_PROVIDERS
from csf.registry._base import ServiceKey
from csf.registry.instance import MAX_INSTANCE_BYTES, Instance, InstanceFormatError

logger = logging.getLogger("csf.registry")

SNAPSHOT_SCHEMA = 1
MAX_SNAPSHOT_AGE = 7 * 24 * 3600.0
"""Seconds after which a snapshot is too old to start from: its providers are long gone."""
MAX_CLOCK_SKEW = 300.0
"""A snapshot saved this far in the future (by the clock) is not trusted either."""
MAX_SNAPSHOT_BYTES = MAX_PROVIDERS * MAX_INSTANCE_BYTES
PRIVATE_MODE = 0o700


class SnapshotFormatError(ValueError):
    """A snapshot file CSF will not start from; the message says why."""


def default_snapshot_dir() -> Path:
    return Path(os.environ.get("CSF_SNAPSHOT_DIR", Path.home() / ".csf" / "snapshots"))


def parse_snapshot(data: bytes, now: float) -> list[Instance]:
    """The instances of a snapshot file's bytes; SnapshotFormatError if any is wrong."""
    try:
        document = load_json_object(data, MAX_SNAPSHOT_BYTES)
    except ValueError as exc:
        raise SnapshotFormatError(str(exc)) from None
    if not has_schema(document, SNAPSHOT_SCHEMA):
        raise SnapshotFormatError(f"schema {document.get('schema')!r}, expected {SNAPSHOT_SCHEMA}")
    saved_at = document.get("saved_at")
    # load_json refuses NaN and infinities: a number here is a finite one.
    if not isinstance(saved_at, int | float) or isinstance(saved_at, bool):
        raise SnapshotFormatError(f"saved_at {saved_at!r} is not a time")
    age = now - saved_at
    if age > MAX_SNAPSHOT_AGE or age < -MAX_CLOCK_SKEW:
        raise SnapshotFormatError(
            f"saved {age / 3600:.0f} hours ago, outside 0..{MAX_SNAPSHOT_AGE / 3600:.0f}"
        )
    items = document.get("instances")
    if not isinstance(items, list) or len(items) > MAX_PROVIDERS:
        raise SnapshotFormatError(f"instances: expected a list of {MAX_PROVIDERS} at most")
    instances = []
    for item in items:
        if not isinstance(item, dict):
            raise SnapshotFormatError("instances: expected objects")
        try:
            instances.append(Instance.from_document(item))
        except InstanceFormatError as exc:
            raise SnapshotFormatError(f"instance: {exc}") from None
    return instances


class SnapshotStore:
    """One JSON file per service cluster; blocking, so callers run it in a thread."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._warned: set[Path] = set()
        self._lock = threading.Lock()  # for _warned: loads run in worker threads

    def path(self, key: ServiceKey) -> Path:
        return self.directory / key.tenant / key.service / f"{key.cluster}.json"

    def save(self, key: ServiceKey, instances: Sequence[Instance]) -> None:
        """Write the list, replacing the last; OSError if it cannot be written."""
        document = {
            "schema": SNAPSHOT_SCHEMA,
            "saved_at": time.time(),
            "instances": [instance.to_document() for instance in instances],
        }
        target = self.path(key)
        self._make_private_dirs(target.parent)
        # Write then rename, so a crash never leaves half a snapshot; a failed write or
        # rename leaves no temporary file behind.
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(fd, "w") as file:
                json.dump(document, file)
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    def load(self, key: ServiceKey) -> list[Instance] | None:
        """The saved list, or None when there is none, it is unsafe, too old or corrupt."""
        target = self.path(key)
        try:
            unsafe = self._unsafe_dir(target.parent)
            if unsafe is not None:
                self._warn_once(*unsafe)
                return None
            with open(target, "rb") as file:
                data = file.read(MAX_SNAPSHOT_BYTES + 1)
            return parse_snapshot(data, time.time())
        except FileNotFoundError:
            return None
        except (OSError, SnapshotFormatError) as exc:
            logger.warning("ignoring snapshot %s: %s", target, exc)
            return None

    def _make_private_dirs(self, directory: Path) -> None:
        """Create each missing level of `directory`, from the root down, as 0o700."""
        missing = []
        for level in (directory, *directory.parents):
            if level.exists():
                break
            missing.append(level)
        for level in reversed(missing):
            with contextlib.suppress(FileExistsError):
                level.mkdir(mode=PRIVATE_MODE)

    def _unsafe_dir(self, directory: Path) -> tuple[Path, str] | None:
        """The first directory from the store's root down to `directory` (those that
        exist) that another user owns or may write to, and why; else None."""
        levels = [self.directory]
        if directory.is_relative_to(self.directory):
            for part in directory.relative_to(self.directory).parts:
                levels.append(levels[-1] / part)
        for level in levels:
            try:
                info = level.stat()
            except FileNotFoundError:
                return None
            why = _unsafe(info)
            if why:
                return level, why
        return None

    def _warn_once(self, directory: Path, why: str) -> None:
        with self._lock:
            if directory in self._warned:
                return
            self._warned.add(directory)
        logger.warning("not reading snapshots from %s: it is %s", directory, why)


def _unsafe(info: os.stat_result) -> str:
    """Why another user could plant a snapshot under this directory; '' if none could."""
    if info.st_uid != os.getuid():
        return f"owned by uid {info.st_uid}, not this user ({os.getuid()})"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"writable by group or others (mode {stat.S_IMODE(info.st_mode):o})"
    return ""
