"""What the console's pages show, read from ZooKeeper (blocking: run in a worker thread).

A list page reads only its page: the service codes come from one listing of the tenant
node, and the status and provider counts only for the codes shown, their reads sent
together. Whatever another writer left in a node shows as what it is (an unknown status,
no descriptor), never as an error of the page.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException, NoNodeError

from csf._exceptions import ConfigError
from csf._json import load_json
from csf.config import check_name
from csf.console.metrics import NO_METRICS, NOT_SCRAPED, endpoint
from csf.gateway.catalogue import Built, build
from csf.registry.admin import LIFECYCLE, MAX_NODE_BYTES, Refused, RegistryAdmin
from csf.registry.applied import summarize
from csf.registry.descriptors import DescriptorError, parse_stored
from csf.registry.lifecycle import LifecycleFormatError, parse_status
from csf.registry.paths import rule_path, service_path
from csf.rules import PARSERS

PAGE_SIZE = 50
MAX_PROCESSES_SHOWN = 200  # of those that read a rule; the counts and refusals cover all
PARTS = ("services", "clusters")
MAX_QUERY = 128


@dataclass(frozen=True)
class ServiceRow:
    code: str
    valid: bool  # a name CSF accepts (another writer's node may not be)
    status: str
    providers: dict[str, int]  # "cluster/group" -> instances


@dataclass(frozen=True)
class ServicePage:
    rows: list[ServiceRow]
    total: int
    page: int
    pages: int
    query: str


def valid_name(name: str) -> bool:
    """A name CSF accepts (a node another writer made may carry any other)."""
    try:
        check_name("name", name)
    except ConfigError:
        return False
    return True


def _result(async_result: Any, default: Any) -> Any:
    try:
        return async_result.get()
    except KazooException:  # missing, or not the tenant's: it shows as nothing
        return default


def _children_of(client: KazooClient, paths: list[str]) -> dict[str, list[str]]:
    """The children of each path, the reads sent together."""
    pending = {path: client.get_children_async(path) for path in paths}
    return {path: sorted(_result(result, [])) for path, result in pending.items()}


def _statuses_of(client: KazooClient, paths: list[str]) -> dict[str, str]:
    """The lifecycle status in each descriptor node, the reads sent together."""
    pending = {path: client.get_async(path) for path in paths}
    statuses = {}
    for path, result in pending.items():
        found = _result(result, None)
        try:
            statuses[path] = "unknown" if found is None else parse_status(found[0])
        except LifecycleFormatError:
            statuses[path] = "unknown"
    return statuses


def _summary(statuses: set[str]) -> str:
    if not statuses:
        return "no descriptor"
    return statuses.pop() if len(statuses) == 1 else "mixed: " + ", ".join(sorted(statuses))


def _rows(admin: RegistryAdmin, codes: list[str]) -> list[ServiceRow]:
    """The list's rows: a level of the tree at a time, every read of a level sent
    together, so that a page costs three round trips to ZooKeeper, not three a row."""
    client = admin.client
    base = {code: service_path(admin.tenant, code) for code in codes if valid_name(code)}
    listed = _children_of(client, [f"{b}/{part}" for b in base.values() for part in PARTS])
    descriptors = [f"{b}/services/{n}" for b in base.values() for n in listed[f"{b}/services"]]
    clusters = [f"{b}/clusters/{n}" for b in base.values() for n in listed[f"{b}/clusters"]]
    statuses = _statuses_of(client, descriptors)
    groups = _children_of(client, clusters)
    instances = _children_of(client, [f"{c}/{g}" for c in clusters for g in groups[c]])
    rows = []
    for code in codes:
        if code not in base:
            rows.append(ServiceRow(code, False, "not a valid name", {}))
            continue
        where = base[code]
        status = {statuses[f"{where}/services/{name}"] for name in listed[f"{where}/services"]}
        counts = {
            f"{cluster}/{group}": len(instances[f"{where}/clusters/{cluster}/{group}"])
            for cluster in listed[f"{where}/clusters"]
            for group in groups[f"{where}/clusters/{cluster}"]
        }
        rows.append(ServiceRow(code, True, _summary(status), counts))
    return rows


def page_number(text: str) -> int:
    """A `page=` parameter as a page number; 1 for anything that is not one."""
    return int(text) if text.isascii() and text.isdigit() and len(text) < 7 else 1


def service_page(admin: RegistryAdmin, query: str, page: int) -> ServicePage:
    """One page of the tenant's services whose code contains `query` (any case)."""
    query = query[:MAX_QUERY]
    needle = query.casefold()
    codes = [code for code in admin.services() if needle in code.casefold()]
    pages = max(1, math.ceil(len(codes) / PAGE_SIZE))
    page = min(max(1, page), pages)
    rows = _rows(admin, codes[(page - 1) * PAGE_SIZE : page * PAGE_SIZE])
    return ServicePage(rows, len(codes), page, pages, query)


@dataclass(frozen=True)
class GrpcService:
    name: str
    status: str
    version: str
    methods: list[dict[str, Any]]  # name, kind, input/output type names and fields
    problem: str | None  # why the stored descriptor cannot be read


def _fields(message: Any) -> list[str]:
    return [f"{f.name}: {f.message_type.full_name if f.message_type else f.type}"
            for f in message.DESCRIPTOR.fields]  # fmt: skip


def compiled(admin: RegistryAdmin, code: str) -> list[tuple[str, bytes, Built | str]]:
    """Each gRPC service of the service: its name, its node's data, and the node compiled
    as the gateway compiles it (with its message classes), or why it cannot be."""
    base = f"{service_path(admin.tenant, code)}/services"
    found: list[tuple[str, bytes, Built | str]] = []
    for name in admin.ls(base) if admin.client.exists(base) else []:
        data, _ = admin.client.get(f"{base}/{name}")
        try:
            found.append((name, data, build((code, name), data)))
        except DescriptorError as exc:
            found.append((name, data, str(exc)[:300]))
    return found


def grpc_services(admin: RegistryAdmin, code: str) -> list[GrpcService]:
    """The service's gRPC services, their methods and message types, read from the
    stored FileDescriptorSet (what the gateway would serve)."""
    found = []
    for name, data, built in compiled(admin, code):
        if isinstance(built, str):
            found.append(GrpcService(name, "unknown", "", [], built))
            continue
        methods = [
            {
                "name": method.name,
                "kind": method.kind,
                "input": method.input.DESCRIPTOR.full_name,
                "output": method.output.DESCRIPTOR.full_name,
                "input_fields": _fields(method.input),
                "output_fields": _fields(method.output),
            }
            for method in built.methods
        ]
        version = parse_stored(data)[0].version
        found.append(GrpcService(name, built.status, version, methods, None))
    return found


def allowed_actions(statuses: set[str]) -> list[tuple[str, bool]]:
    """Each lifecycle action, and whether the CLI would allow it from `statuses` (those of
    the service's gRPC services: an action moves them all, or none)."""
    return [
        (action, bool(statuses) and statuses <= sources)
        for action, (sources, _) in sorted(LIFECYCLE.items())
    ]


def service_view(admin: RegistryAdmin, code: str) -> dict[str, Any]:
    """Everything the service page shows."""
    admin.existing(code)
    services = grpc_services(admin, code)
    try:
        rules = admin.rules(code)
    except Refused:
        rules = {}
    return {
        "code": code,
        "grpc_services": services,
        # The first paint; the page's live part puts the last scrape's health in place.
        "providers": [
            {**p, "health": NOT_SCRAPED if endpoint(p) else NO_METRICS}
            for p in admin.providers(code)
        ],
        "rule_kinds": sorted(PARSERS),
        "actions": allowed_actions({grpc.status for grpc in services}),
        "subscribers": admin.subscriptions(code),
        "rules": rules,
    }


@dataclass(frozen=True)
class RuleState:
    document: Any  # None: no rule, or not JSON
    text: str | None  # the node's data as text; None: no rule
    version: int  # -1: no rule


def rule_state(admin: RegistryAdmin, code: str, kind: str) -> RuleState:
    """A service's rule of `kind` as its node holds it now."""
    admin.existing(code)
    try:
        data, stat = admin.client.get(rule_path(admin.tenant, code, kind))
    except NoNodeError:
        return RuleState(None, None, -1)
    text = data.decode("utf-8", "replace")
    try:
        return RuleState(load_json(data, MAX_NODE_BYTES), text, stat.version)
    except ValueError:
        return RuleState(None, text, stat.version)


def rule_view(admin: RegistryAdmin, code: str, kind: str) -> dict[str, Any]:
    """The rule page's live part: the rule in force, its version and who applied it."""
    processes = admin.applied(code, kind)  # first: a change meanwhile shows as lagging
    state = rule_state(admin, code, kind)
    version = None if state.version < 0 else state.version
    return {
        "code": code,
        "kind": kind,
        "state": state,
        "pretty": pretty(state.document) if state.document is not None else state.text,
        "applied": summarize(processes, version),
        "processes": sorted(processes, key=lambda p: (p["role"], str(p["app"]), p["process"]))[
            :MAX_PROCESSES_SHOWN
        ],
    }


def pretty(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
