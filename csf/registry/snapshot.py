"""The consumer's on-disk copy of each provider list, and of each service's rules, to
start from when ZooKeeper is down.

A snapshot file is outside data like a znode: any bytes there load as a list of valid
instances (or of valid rule documents) or as None (with a warning), never as an
exception. A snapshot older than MAX_SNAPSHOT_AGE is not used, and none is read from a
directory that another user owns or may write to: that user could plant providers or
rules. Directories CSF creates are 0o700.
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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from csf._json import has_schema, load_json_object
from csf._quoted import quoted
from csf._rule_document import MAX_RULE_BYTES
from csf.bounds import MAX_PROVIDERS
from csf.registry._base import ServiceKey
from csf.registry.instance import MAX_INSTANCE_BYTES, Instance, InstanceFormatError
from csf.rules import PARSERS, Rule, parse_rule

logger = logging.getLogger("csf.registry")

SNAPSHOT_SCHEMA = 1
MAX_SNAPSHOT_AGE = 7 * 24 * 3600.0
"""Seconds after which a snapshot is too old to start from: its providers are long gone."""
MAX_CLOCK_SKEW = 300.0
"""A snapshot saved this far in the future (by the clock) is not trusted either."""
MAX_SNAPSHOT_BYTES = MAX_PROVIDERS * MAX_INSTANCE_BYTES
MAX_RULES_SNAPSHOT_BYTES = len(PARSERS) * MAX_RULE_BYTES * 6 + 4096
"""Every kind's largest document, each byte escaped in JSON as at most 6 (`\\u00XX`)."""
RULES_FILE = "_rules.json"
"""Next to the provider lists (`<cluster>.json`): no cluster name starts with '_'."""
PRIVATE_MODE = 0o700

T = TypeVar("T")


class SnapshotFormatError(ValueError):
    """A snapshot file CSF will not start from; the message says why."""


def default_snapshot_dir() -> Path:
    return Path(os.environ.get("CSF_SNAPSHOT_DIR", Path.home() / ".csf" / "snapshots"))


def parse_snapshot(data: bytes, now: float) -> list[Instance]:
    """The instances of a snapshot file's bytes; SnapshotFormatError if any is wrong."""
    document = _fresh_document(data, MAX_SNAPSHOT_BYTES, now)
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


class SavedRule(NamedTuple):
    """A rule document from a rules snapshot, and the rule it parses as."""

    document: bytes
    rule: Rule


def parse_rules_snapshot(data: bytes, now: float) -> dict[str, SavedRule]:
    """The valid rule documents of a rules snapshot file's bytes, by kind; an invalid
    document is left out with a warning; SnapshotFormatError if the file is wrong."""
    documents = _fresh_document(data, MAX_RULES_SNAPSHOT_BYTES, now).get("rules")
    if not isinstance(documents, dict) or len(documents) > len(PARSERS):
        raise SnapshotFormatError(f"rules: expected an object of {len(PARSERS)} kinds at most")
    saved = {}
    for kind, text in documents.items():
        try:
            if not isinstance(text, str):
                raise ValueError(f"expected the document as a string, got {type(text).__name__}")
            data = text.encode("utf-8", "surrogateescape")  # the bytes save_rules was given
            saved[kind] = SavedRule(data, parse_rule(kind, data))
        except ValueError as exc:  # RuleError and UnicodeError are ValueErrors
            logger.warning("ignoring the saved %s rule: %s", quoted(kind), exc)
    return saved


def _fresh_document(data: bytes, limit: int, now: float) -> dict[str, Any]:
    """The JSON object of a snapshot file's bytes (at most `limit`), of the schema and
    saved recently; SnapshotFormatError if not."""
    try:
        document = load_json_object(data, limit)
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
    return document


class SnapshotStore:
    """One JSON file per service cluster, and one of each service's rules; blocking, so
    callers run it in a thread."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._warned: set[Path] = set()
        self._lock = threading.Lock()  # for _warned: loads run in worker threads

    def path(self, key: ServiceKey) -> Path:
        return self.directory / key.tenant / key.service / f"{key.cluster}.json"

    def rules_path(self, tenant: str, service: str) -> Path:
        return self.directory / tenant / service / RULES_FILE

    def save(self, key: ServiceKey, instances: Sequence[Instance]) -> None:
        """Write the list, replacing the last; OSError if it cannot be written."""
        self._write(self.path(key), "instances", [i.to_document() for i in instances])

    def save_rules(self, tenant: str, service: str, documents: Mapping[str, bytes]) -> None:
        """Write the rule documents by kind (those of the rules in force; a kind left out
        has its defaults), replacing the last; OSError if they cannot be written."""
        # surrogateescape keeps any bytes, even those that are not UTF-8, as text.
        texts = {kind: data.decode("utf-8", "surrogateescape") for kind, data in documents.items()}
        self._write(self.rules_path(tenant, service), "rules", texts)

    def _write(self, target: Path, field: str, value: object) -> None:
        document = {"schema": SNAPSHOT_SCHEMA, "saved_at": time.time(), field: value}
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
        return self._load(self.path(key), MAX_SNAPSHOT_BYTES, parse_snapshot)

    def load_rules(self, tenant: str, service: str) -> dict[str, SavedRule] | None:
        """The saved rule documents by kind, each valid (an invalid one is left out with
        a warning), or None when there are none, or they are unsafe, too old or corrupt."""
        return self._load(
            self.rules_path(tenant, service), MAX_RULES_SNAPSHOT_BYTES, parse_rules_snapshot
        )

    def _load(self, target: Path, limit: int, parse: Callable[[bytes, float], T]) -> T | None:
        try:
            unsafe = self._unsafe_dir(target.parent)
            if unsafe is not None:
                self._warn_once(*unsafe)
                return None
            with open(target, "rb") as file:
                data = file.read(limit + 1)
            return parse(data, time.time())
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
