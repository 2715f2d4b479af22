"""Which version of each rule each process applied: the `applied/` nodes.

Every holder of a service's rules (a consumer, a provider, a gateway) tells, after each
reading of a rule kind, what it did with it, as one EPHEMERAL node

    /busidomain/csf/<tenant>/<service>/applied/<kind>/<process>

`<process>` is `<role>-<host>-<pid>-<8 hex>`, one name per holder of the rules (a
`ServiceRules`), so two consumers in one process have a node each. Its data:

    {"schema": 1, "version": 7, "status": "applied", "reason": null, "role": "consumer",
     "app": "web", "host": "h1", "pid": 4242, "at": 1700000000.0}

- `version` is the ZooKeeper version (stat.version) of `configs/<kind>` that was read.
- `applied`: that document is the rule in force (also when it equals the one before).
- `refused`: the document did not parse; `reason` says why (at most MAX_REASON
  characters) and the last good rule stays in force.
- A rule deleted: the kind's node is removed. The process runs with the defaults then,
  and there is no version to have applied.

The node lives with the registry session: it is written again after a session expiry
and goes when the rules are closed (or the process ends). A node is written only when
what it says changes, not at every re-reading. `summarize` counts the nodes against the
rule's version, as the console shows them ("applied by 12 of 12 processes").
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from csf import bounds
from csf._json import has_schema, load_json_object
from csf.registry._base import Registry

logger = logging.getLogger("csf.rules")

SCHEMA = 1
STATUSES = ("applied", "refused")
MAX_REASON = 300
"""Characters of a refusal's reason kept in the node."""
MAX_APPLIED_BYTES = 4 * 1024
"""What a reader takes of one node's data; CSF writes well under a kilobyte."""
MAX_LISTED = 10_000
"""Applied nodes a reader reads for one rule, in the order of their names."""
MAX_VERSION = 2**31 - 1  # stat.version is a signed 32-bit integer
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def process_name(role: str) -> str:
    """A znode name unique to one holder of rules: `<role>-<host>-<pid>-<8 hex>`, the
    host cut to what is safe in a name (no `/`)."""
    host = _UNSAFE.sub("_", socket.gethostname())[:63]
    return f"{role}-{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True, slots=True)
class AppliedReport:
    """What one process did with one version of one rule (the node's data)."""

    version: int
    status: str
    """"applied" or "refused"."""
    reason: str | None
    role: str
    app: str | None
    host: str
    pid: int
    at: float
    """Unix time it first read this version with this outcome."""

    def to_document(self) -> dict[str, Any]:
        return {"schema": SCHEMA, **asdict(self)}

    def to_json(self) -> bytes:
        return json.dumps(self.to_document(), separators=(",", ":"), sort_keys=True).encode()


def parse_applied(data: bytes) -> AppliedReport | None:
    """The report in an applied node's data; None for anything CSF did not write (not
    JSON, another schema, a field missing or of the wrong type). A long reason is cut."""
    try:
        document = load_json_object(data, MAX_APPLIED_BYTES)
    except ValueError:
        return None
    if not has_schema(document, SCHEMA):
        return None
    version, status, reason, role, app, host, pid, at = (
        document.get(name)
        for name in ("version", "status", "reason", "role", "app", "host", "pid", "at")
    )
    if not (
        type(version) is int
        and 0 <= version <= MAX_VERSION
        and status in STATUSES
        and (reason is None or isinstance(reason, str))
        and isinstance(role, str)
        and (app is None or isinstance(app, str))
        and isinstance(host, str)
        and type(pid) is int
        and bounds.PID.low <= pid <= bounds.PID.high
        and isinstance(at, int | float)
        and not isinstance(at, bool)
        and bounds.START_TIME.low <= at <= bounds.START_TIME.high
    ):
        return None
    reason = None if reason is None else reason[:MAX_REASON]
    return AppliedReport(version, status, reason, role, app, host, pid, float(at))


@dataclass(frozen=True, slots=True)
class AppliedSummary:
    """The applied nodes of one rule against its version now."""

    version: int | None
    """The rule's version (stat.version of `configs/<kind>`); None: there is no rule."""
    total: int
    """Processes that told what they did with the rule."""
    current: int
    """Processes that applied `version`."""
    lagging: tuple[Mapping[str, Any], ...]
    """Those that applied another version (they have not read this one yet)."""
    refused: tuple[Mapping[str, Any], ...]
    """Those whose last reading was refused (with its `reason` and `version`)."""


def summarize(applied: Iterable[Mapping[str, Any]], version: int | None) -> AppliedSummary:
    """Count `applied` (the documents `RegistryAdmin.applied` lists) against the rule's
    `version` now: "applied by `current` of `total` processes"."""
    entries = list(applied)
    refused = tuple(e for e in entries if e["status"] == "refused")
    applying = [e for e in entries if e["status"] == "applied"]
    lagging = tuple(e for e in applying if version is None or e["version"] != version)
    return AppliedSummary(
        version=version,
        total=len(entries),
        current=len(applying) - len(lagging),
        lagging=lagging,
        refused=refused,
    )


class AppliedNodes:
    """The applied nodes of one holder of a service's rules, one per kind it read.

    Each call only tells the registry what the node should hold (the registry writes it
    in the background); a failure is logged, never raised into the rule's reading."""

    def __init__(
        self, registry: Registry, tenant: str, service: str, role: str, app: str | None
    ) -> None:
        self.process = process_name(role)
        self._registry = registry
        self._where = (tenant, service)
        self._role = role
        self._app = app
        self._host = socket.gethostname()
        self._told: dict[str, tuple[int, str, str | None]] = {}

    def applied(self, kind: str, version: int) -> None:
        self._tell(kind, version, "applied", None)

    def refused(self, kind: str, version: int, reason: str) -> None:
        self._tell(kind, version, "refused", reason[:MAX_REASON])

    def removed(self, kind: str) -> None:
        """The rule is gone: so is the node (if one was written)."""
        if self._told.pop(kind, None) is not None:
            self._report(kind, None)

    def close(self) -> None:
        for kind in list(self._told):
            self.removed(kind)

    def _tell(self, kind: str, version: int, status: str, reason: str | None) -> None:
        told = (version, status, reason)
        if self._told.get(kind) == told:
            return  # read again (after a reconnection, say): the node says so already
        self._told[kind] = told
        report = AppliedReport(
            version, status, reason, self._role, self._app, self._host, os.getpid(), time.time()
        )
        self._report(kind, report.to_json())

    def _report(self, kind: str, document: bytes | None) -> None:
        tenant, service = self._where
        try:
            self._registry.report_applied(tenant, service, kind, self.process, document)
        except Exception:  # telling what was applied must never undo the applying
            logger.exception("%s/%s: could not record the %s rule applied", tenant, service, kind)
