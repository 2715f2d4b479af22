"""What csf-registry does to ZooKeeper, as plain blocking calls (it is a command line).

Multi-node writes (an import, a lifecycle change of several gRPC services) go in one
kazoo transaction: all or nothing. Everything is checked before anything is written.
"""

from __future__ import annotations

import json
import posixpath
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict
from typing import Any, TypeVar

from kazoo.exceptions import (
    BadVersionError,
    ConnectionLoss,
    KazooException,
    NoAuthError,
    NodeExistsError,
    NoNodeError,
    RolledBackError,
    SessionExpiredError,
)
from kazoo.handlers.threading import KazooTimeoutError

from csf._exceptions import RegistryError
from csf._json import load_json
from csf.config import ZooKeeperURL, check_name
from csf.registry.access import audit, ensure_shared_parents, kazoo_client, tenant_acl
from csf.registry.applied import MAX_LISTED, AppliedSummary, parse_applied, summarize
from csf.registry.descriptors import ServiceDescriptor
from csf.registry.instance import Instance, InstanceFormatError
from csf.registry.lifecycle import STATUSES
from csf.registry.paths import (
    applied_path,
    apps_path,
    history_path,
    rule_path,
    service_path,
    tenant_path,
)
from csf.rules import PARSERS, RuleError, parse_rule
from csf.set_rule import SetName, SetRule

CONNECT_TIMEOUT = 5.0
T = TypeVar("T")
MAX_NODE_BYTES = 1024 * 1024
"""ZooKeeper's own default limit on a node's data (jute.maxbuffer)."""
HISTORY_KEPT = 20  # versions of each rule kept under history/<kind>
MAX_DESCRIPTION = 500  # characters of an app's description
# action -> (the statuses it may start from, the status it leads to)
LIFECYCLE: dict[str, tuple[frozenset[str], str]] = {
    "online": (frozenset({"registered", "offline"}), "online"),
    "open": (frozenset({"online"}), "open"),
    "close": (frozenset({"open"}), "online"),
    "offline": (frozenset({"online", "open"}), "offline"),
    "deregister": (frozenset({"registered", "offline"}), "deregistered"),
}


class RegistryUnreachable(RegistryError):
    """ZooKeeper did not answer."""


class Refused(RegistryError):
    """The operation is not allowed (validation, illegal transition, missing node)."""


class UnknownTarget(Refused):
    """A rule for a tenant, service or method nothing declares (a typo, or a rule written
    before its service: `force` writes it anyway)."""


class NotPermitted(Refused):
    """ZooKeeper refused the credentials: the node is not the tenant's (or not theirs)."""


def _json(data: bytes) -> Any:
    """A node's JSON document; None for data that is not JSON CSF could use."""
    try:
        return load_json(data, MAX_NODE_BYTES)
    except ValueError:
        return None


def _object(data: bytes) -> dict[str, Any]:
    """A node's JSON object; empty for anything else (another writer's garbage)."""
    document = _json(data)
    return document if isinstance(document, dict) else {}


def _unannounced(rule: SetRule, announced: Counter[str]) -> list[str]:
    return sorted(str(name) for name in rule.sets if str(name) not in announced)


def _version_order(name: str) -> int:
    return int(name) if name.isdigit() else -1


def _failed_operation(operations: list[Any], results: list[Any]) -> tuple[str, Exception]:
    """The path and error of the operation that made a transaction fail: ZooKeeper marks
    every other operation RolledBackError."""
    for operation, result in zip(operations, results, strict=False):
        if isinstance(result, Exception) and not isinstance(result, RolledBackError):
            return operation.path, result
    return "", next(result for result in results if isinstance(result, Exception))


class RegistryAdmin:
    def __init__(self, url: ZooKeeperURL, tenant: str) -> None:
        self.tenant = check_name("tenant", tenant)
        self._hosts = url.connect_string
        self.client = kazoo_client(url)
        self._closed_tenant = tenant_acl(url) is not None
        self._no_access = (
            "the digest credentials do not grant access"
            if self._closed_tenant
            else "it needs the tenant's digest credentials (--digest-file or CSF_ZK_DIGEST)"
        )

    def refusal(self, path: str, error: BaseException) -> Refused:
        """One line saying why ZooKeeper refused an operation on `path`."""
        if isinstance(error, NoAuthError):
            return NotPermitted(f"ZooKeeper refused {path}: {self._no_access}")
        if isinstance(error, NodeExistsError):
            return Refused(f"{path} was created meanwhile by someone else; try again")
        if isinstance(error, BadVersionError):
            return Refused(f"{path} was changed meanwhile by someone else; try again")
        if isinstance(error, NoNodeError):
            return Refused(f"{path} was removed meanwhile by someone else; try again")
        return Refused(f"ZooKeeper refused {path} ({type(error).__name__})")

    def __enter__(self) -> RegistryAdmin:
        try:
            self.client.start(timeout=CONNECT_TIMEOUT)
        except KazooTimeoutError:
            self.client.close()
            raise RegistryUnreachable(f"ZooKeeper at {self._hosts} did not answer") from None
        if self._closed_tenant:
            ensure_shared_parents(self.client)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.client.stop()
        self.client.close()

    # -- paths and reads ---------------------------------------------------------

    def _service(self, service: str) -> str:
        return service_path(self.tenant, check_name("service", service))

    def _call(self, operation: Callable[..., T], path: str, *args: Any, **kwargs: Any) -> T:
        """A kazoo node operation; NoNodeError and a lost session pass (the CLI says
        ZooKeeper was lost), other refusals name the node."""
        try:
            return operation(path, *args, **kwargs)
        except (NoNodeError, ConnectionLoss, SessionExpiredError):
            raise
        except KazooException as exc:
            raise self.refusal(path, exc) from None

    def _children(self, path: str, watch: Callable[[Any], None] | None = None) -> list[str]:
        """The children of `path`, none if it is missing; `watch` fires on a change (or on
        its creation)."""
        try:
            return sorted(self._call(self.client.get_children, path, watch=watch))
        except NoNodeError:
            if watch is not None:
                self._call(self.client.exists, path, watch=watch)
            return []

    def _document(self, path: str) -> Any:
        """The node's JSON document; None when it is missing or not JSON CSF could use."""
        try:
            data, _ = self._call(self.client.get, path)
        except NoNodeError:
            return None
        return _json(data)

    def node(self, path: str | None) -> str:
        """The absolute path of `path` (absolute, or relative to the tenant's node, which
        is the default); Refused when it leads outside the tenant's node."""
        home = tenant_path(self.tenant)
        resolved = posixpath.normpath(posixpath.join(home, path or "."))
        if resolved != home and not resolved.startswith(f"{home}/"):
            raise Refused(f"{path} is outside the tenant's node {home}")
        return resolved

    def ls(self, path: str) -> list[str]:
        try:
            return sorted(self._call(self.client.get_children, path))
        except NoNodeError:
            raise Refused(f"no node {path}") from None

    # -- descriptors and their lifecycle --------------------------------------------

    def import_descriptors(self, descriptors: Iterable[ServiceDescriptor]) -> list[str]:
        """Write the descriptors (status `registered`; a re-import keeps the status, but
        brings a deregistered service back to registered)."""
        transaction = self.client.transaction()
        planned: set[str] = set()
        paths = []
        for descriptor in descriptors:
            path = f"{self._service(descriptor.service)}/services/{descriptor.grpc_service}"
            if path in paths:
                raise Refused(
                    f"import: {descriptor.grpc_service} of {descriptor.service} "
                    "appears twice; nothing was written"
                )
            self._plan_parents(transaction, path, planned)
            try:
                data, stat = self._call(self.client.get, path)
                status = _object(data).get("status", "registered")
                if status not in STATUSES or status == "deregistered":
                    status = "registered"
                body = json.dumps(descriptor.to_document(status)).encode()
                transaction.set_data(path, body, stat.version)
            except NoNodeError:
                body = json.dumps(descriptor.to_document("registered")).encode()
                transaction.create(path, body)
            planned.add(path)
            paths.append(path)
        self._commit(transaction, "import")
        return paths

    def _plan_parents(self, transaction: Any, path: str, planned: set[str]) -> None:
        parts = path.strip("/").split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            parent = "/" + "/".join(parts[:depth])
            if parent not in planned and self._call(self.client.exists, parent) is None:
                transaction.create(parent, b"")
                planned.add(parent)

    def _commit(self, transaction: Any, what: str) -> None:
        results = transaction.commit()
        if any(isinstance(result, Exception) for result in results):
            path, error = _failed_operation(transaction.operations, results)
            raise Refused(f"{what}: nothing was written: {self.refusal(path, error)}")

    def descriptors(self, service: str) -> dict[str, dict[str, Any]]:
        base = f"{self._service(service)}/services"
        documents = {name: self._document(f"{base}/{name}") for name in self._children(base)}
        # Another writer's garbage shows as a descriptor with no status.
        return {name: doc if isinstance(doc, dict) else {} for name, doc in documents.items()}

    def transition(self, service: str, action: str, grpc_service: str | None = None) -> list[str]:
        """Move the service's gRPC services (or one) through `action`; all or nothing."""
        sources, target = LIFECYCLE[action]
        base = f"{self._service(service)}/services"
        names = [grpc_service] if grpc_service else self._children(base)
        if not names:
            raise Refused(f"{service} has no imported services: import its descriptors first")
        transaction = self.client.transaction()
        for name in names:
            path = f"{base}/{name}"
            try:
                data, stat = self._call(self.client.get, path)
            except NoNodeError:
                raise Refused(f"{service} has no service {name}") from None
            document = _object(data)
            status = document.get("status")
            if status not in STATUSES:
                raise Refused(f"{path} holds no valid descriptor: import it again")
            if status not in sources:
                allowed = " or ".join(sorted(sources))
                raise Refused(f"{name} is {status}: '{action}' needs it to be {allowed}")
            document["status"] = target
            transaction.set_data(path, json.dumps(document).encode(), stat.version)
        self._commit(transaction, action)
        return names

    # -- subscriptions -------------------------------------------------------------

    def subscribe(self, app: str, service: str) -> None:
        check_name("app", app)
        statuses = {name: doc.get("status") for name, doc in self.descriptors(service).items()}
        if not statuses:
            raise Refused(f"{service} has no imported services to subscribe to")
        closed = sorted(name for name, status in statuses.items() if status != "open")
        if closed:
            raise Refused(f"{service} is not open: {', '.join(closed)} not open")
        path = f"{self._service(service)}/subscriptions/{app}"
        document = {"schema": 1, "app": app, "service": service, "since": time.time()}
        self._call(self.client.ensure_path, path)
        self._call(self.client.set, path, json.dumps(document).encode())

    def unsubscribe(self, app: str, service: str) -> None:
        path = f"{self._service(service)}/subscriptions/{check_name('app', app)}"
        try:
            self._call(self.client.delete, path)
        except NoNodeError:
            raise Refused(f"{app} is not subscribed to {service}") from None

    def existing(self, service: str) -> str:
        """`service`, if the tenant has a node for it that its credentials may read; else
        Refused, so that a view of a misspelt service is an error, not an empty table
        (NotPermitted for a node someone else owns)."""
        try:
            self._call(self.client.get_children, self._service(service))
        except NoNodeError:
            raise Refused(
                f"{service} is not a service of tenant {self.tenant}: no node for it"
            ) from None
        return service

    def subscriptions(self, service: str) -> list[str]:
        return self._children(f"{self._service(service)}/subscriptions")

    # -- the tenant's services and apps (the console's lists) ----------------------

    def services(self) -> list[str]:
        """The tenant's service codes (its children, without CSF's own `_` nodes)."""
        return [name for name in self._children(tenant_path(self.tenant)) if name[:1] != "_"]

    def apps(self) -> dict[str, dict[str, Any]]:
        """The tenant's apps (`_apps/<app>`) and their documents (empty if unusable)."""
        base = apps_path(self.tenant)
        documents = {name: self._document(f"{base}/{name}") for name in self._children(base)}
        return {name: doc if isinstance(doc, dict) else {} for name, doc in documents.items()}

    def add_app(self, app: str, description: str = "") -> None:
        path = f"{apps_path(self.tenant)}/{check_name('app', app)}"
        if len(description) > MAX_DESCRIPTION:
            raise Refused(f"description: at most {MAX_DESCRIPTION} characters")
        document = {"schema": 1, "app": app, "description": description, "since": time.time()}
        transaction = self.client.transaction()
        self._plan_parents(transaction, path, set())
        transaction.create(path, json.dumps(document).encode())
        try:
            self._commit(transaction, f"app {app}")
        except Refused:
            if self._call(self.client.exists, path) is not None:
                raise Refused(f"app {app} exists already") from None
            raise

    def has_app(self, app: str) -> bool:
        return (
            self._call(self.client.exists, f"{apps_path(self.tenant)}/{check_name('app', app)}")
            is not None
        )

    def subscribed(self, services: Iterable[str]) -> dict[str, list[str]]:
        """Each app's subscriptions among `services` (the reads go out together; a node
        that cannot be read lists none)."""
        pending = [
            (service, self.client.get_children_async(f"{self._service(service)}/subscriptions"))
            for service in services
        ]
        by_app: dict[str, list[str]] = {}
        for service, result in pending:
            try:
                apps = result.get()
            except KazooException:
                continue
            for app in apps:
                by_app.setdefault(app, []).append(service)
        return by_app

    # -- rules --------------------------------------------------------------------------

    def set_rule(
        self, service: str, kind: str, data: bytes, *, force: bool = False, over: int | None = None
    ) -> Any:
        """Validate the rule as consumers will, and unless `force`, refuse one for a
        tenant, service or method nothing declares (a typo must not "succeed"). `over`:
        only over that version of the rule (-1: only if there is none)."""
        self.check_rule(service, kind, data, force=force)
        self._write_rule(check_name("service", service), kind, data, note="set", over=over)
        return _json(data)

    def check_rule(self, service: str, kind: str, data: bytes, *, force: bool = False) -> None:
        """Refused, saying why, unless `set_rule` would write the rule."""
        try:
            rule = parse_rule(kind, data)
        except RuleError as exc:
            raise Refused(str(exc)) from None
        if not force:
            self._check_known(service, set(getattr(rule, "methods", {})))

    def _write_rule(
        self, service: str, kind: str, data: bytes, *, note: str, over: int | None = None
    ) -> int:
        """Write `configs/<kind>` and its history entry in one transaction; the rule's
        new version. `over`: only over that version of the rule (compare-and-set). The
        history keeps the last HISTORY_KEPT versions; a rule created again after a delete
        starts over at version 0, its old history dropped."""
        path = rule_path(self.tenant, service, kind)
        history = history_path(self.tenant, service, kind)
        transaction = self.client.transaction()
        planned: set[str] = set()
        self._plan_parents(transaction, path, planned)
        self._plan_parents(transaction, f"{history}/0", planned)
        names = self._children(history)
        kept = sorted((n for n in names if n.isascii() and n.isdigit()), key=int, reverse=True)
        stat = self._call(self.client.exists, path)
        if over is not None and (-1 if stat is None else stat.version) != over:
            raise Refused(f"{path} changed since version {over} was read")
        if stat is None:
            version, dropped = 0, kept
            transaction.create(path, data)
        else:
            version, dropped = stat.version + 1, kept[HISTORY_KEPT - 1 :]
            transaction.set_data(path, data, stat.version)
        if str(version) in names and str(version) not in dropped:
            dropped.append(str(version))  # another writer's node where this entry goes
        for old in dropped:
            transaction.delete(f"{history}/{old}")
        entry = {"schema": 1, "version": version, "at": time.time(), "note": note,
                 "rule": data.decode("utf-8", "replace")}  # fmt: skip
        transaction.create(f"{history}/{version}", json.dumps(entry).encode())
        self._commit(transaction, f"{kind} rule of {service}")
        return version

    def rule_history(self, service: str, kind: str) -> list[dict[str, Any]]:
        """The kept versions of a rule, newest first: version, time, note, document."""
        history = history_path(self.tenant, check_name("service", service), self._known_kind(kind))
        entries = []
        for name in sorted(self._children(history), key=_version_order, reverse=True):
            entry = self._document(f"{history}/{name}")
            if isinstance(entry, dict) and isinstance(entry.get("rule"), str):
                entries.append(entry)
        return entries

    def rollback_rule(self, service: str, kind: str, version: int) -> int:
        """Write the document of a kept version again, as a new version (validated as
        any rule: one a later CSF refuses is refused here too)."""
        for entry in self.rule_history(service, kind):
            if entry.get("version") == version:
                data = str(entry["rule"]).encode()
                try:
                    parse_rule(kind, data)
                except RuleError as exc:
                    raise Refused(f"version {version} is no longer a valid rule: {exc}") from None
                return self._write_rule(service, kind, data, note=f"rollback to {version}")
        raise Refused(f"{service} keeps no version {version} of its {kind} rule")

    def _check_known(self, service: str, methods: set[str]) -> None:
        if self._call(self.client.exists, tenant_path(self.tenant)) is None:
            raise UnknownTarget(f"tenant {self.tenant} does not exist in ZooKeeper")
        declared = self.declared_methods(service)
        if declared is None:
            raise UnknownTarget(
                f"{service} is not a service of tenant {self.tenant}: no imported "
                "descriptor, no provider"
            )
        unknown = sorted(methods - declared)
        if unknown:
            raise UnknownTarget(
                f"{service} declares no method {', '.join(unknown)}; declared: "
                f"{', '.join(sorted(declared)) or 'none'}"
            )

    def declared_methods(self, service: str) -> set[str] | None:
        """The method names the service's descriptors and providers declare; None when
        the tenant has neither for it."""
        descriptors = self.descriptors(service)
        clusters = self._children(f"{self._service(service)}/clusters")
        if not descriptors and not clusters:
            return None
        declared = {
            method.get("name")
            for document in descriptors.values()
            for method in document.get("methods", [])
            if isinstance(method, dict)
        }
        for provider in self.providers(service):
            declared.update(name for names in provider["services"].values() for name in names)
        return {name for name in declared if isinstance(name, str)}

    def _known_kind(self, kind: str) -> str:
        if kind not in PARSERS:
            raise Refused(f"rule kind {kind!r} is not known; known: {', '.join(sorted(PARSERS))}")
        return kind

    def get_rule(self, service: str, kind: str) -> Any:
        self._known_kind(kind)
        document = self._document(rule_path(self.tenant, check_name("service", service), kind))
        if document is None:
            raise Refused(f"{service} has no {kind} rule")
        return document

    def remove_rule(self, service: str, kind: str) -> None:
        path = rule_path(self.tenant, check_name("service", service), self._known_kind(kind))
        try:
            self._call(self.client.delete, path)
        except NoNodeError:
            raise Refused(f"{service} has no {kind} rule") from None

    def rules(self, service: str) -> dict[str, Any]:
        base = f"{self._service(service)}/configs"
        return {kind: self._document(f"{base}/{kind}") for kind in self._children(base)}

    # -- who applied a rule (csf.registry.applied) ---------------------------------------

    def applied(self, service: str, kind: str) -> list[dict[str, Any]]:
        """What each process did with the rule: its `process` name and its report
        (version, status, reason, role, app, host, pid, at), by process name. Nodes CSF
        did not write, or may not read, are skipped; at most MAX_LISTED are read."""
        base = applied_path(self.tenant, check_name("service", service), self._known_kind(kind))
        pending = [
            (name, self.client.get_async(f"{base}/{name}"))
            for name in self._children(base)[:MAX_LISTED]
        ]  # sent together: one round trip for the lot, not one per process
        found = []
        for name, result in pending:
            try:
                data, _ = result.get()
            except (ConnectionLoss, SessionExpiredError):
                raise
            except KazooException:  # gone meanwhile (its process ended), or not ours
                continue
            report = parse_applied(data)
            if report is not None:
                found.append({"process": name, **asdict(report)})
        return found

    def applied_summary(self, service: str, kind: str) -> AppliedSummary:
        """`applied` counted against the rule's version now (None: there is no rule)."""
        applied = self.applied(service, kind)  # first: a change meanwhile shows as lagging
        stat = self._call(self.client.exists, rule_path(self.tenant, service, kind))
        return summarize(applied, None if stat is None else stat.version)

    # -- SET routing (DESIGN section 8) ------------------------------------------------

    def set_rule_of(self, service: str) -> tuple[SetRule, int]:
        """The service's `set` rule as consumers read it, and its version."""
        path = rule_path(self.tenant, check_name("service", service), SetRule.KIND)
        try:
            data, stat = self._call(self.client.get, path)
        except NoNodeError:
            raise Refused(f"{service} has no set rule: it is not SET-ized") from None
        try:
            return SetRule.parse(data), stat.version
        except RuleError as exc:
            raise Refused(f"{path} holds a rule consumers refuse: {exc}") from None

    def move_buckets(self, service: str, first: int, last: int, to: SetName) -> tuple[SetRule, int]:
        """Give buckets `first`..`last` to `to`: one new version of the rule, validated as
        consumers will read it, written only over the version read (compare-and-set) so
        that a concurrent edit is refused rather than lost. Returns the rule and version."""
        rule, version = self.set_rule_of(service)
        try:
            moved = rule.moved(first, last, to)
            data = json.dumps(moved.to_document()).encode()
            SetRule.parse(data)  # exactly what consumers will read
        except RuleError as exc:
            raise Refused(str(exc)) from None
        note = f"set move {first}..{last} to {to}"
        try:
            written = self._write_rule(service, SetRule.KIND, data, note=note, over=version)
        except Refused:
            raise Refused(
                f"set move: the set rule of {service} changed since it was read (version "
                f"{version}); nothing was written: look at it again and retry"
            ) from None
        return moved, written

    def announced_sets(self, service: str) -> Counter[str]:
        """How many providers of the service announce each SET (providers in none aside)."""
        return Counter(p["set"] for p in self.providers(service) if p.get("set") is not None)

    def unannounced_sets(self, service: str, rule: SetRule) -> list[str]:
        """The SETs `rule` may send calls to that no provider of the service announces
        (yet: a SET may be deployed after its rule)."""
        return _unannounced(rule, self.announced_sets(service))

    def set_view(self, service: str, rule: SetRule, version: int) -> dict[str, Any]:
        """The rule's table as operators read it: each range with its share of the
        buckets, the providers announcing its SET and where its calls go if it has none."""
        announced = self.announced_sets(service)
        ranges = []
        for bucket_range in rule.ranges:
            count = bucket_range.last - bucket_range.first + 1
            fallback = rule.fallback(bucket_range.set)
            ranges.append({
                **bucket_range.to_document(),
                "buckets": count,
                "share": round(100 * count / rule.buckets, 3),
                "providers": announced[str(bucket_range.set)],
                "fallback": None if fallback is None else str(fallback),
            })  # fmt: skip
        return {
            "service": service,
            "version": version,
            "rule": rule.to_document(),
            "ranges": ranges,
            "unannounced": _unannounced(rule, announced),
        }

    # -- views -------------------------------------------------------------------------

    def providers(
        self, service: str, watch: Callable[[Any], None] | None = None
    ) -> list[dict[str, Any]]:
        """Every provider instance of the service, cluster by cluster, group by group."""
        clusters = f"{self._service(service)}/clusters"
        found = []
        now = time.time()
        for cluster in self._children(clusters, watch):
            for group in self._children(f"{clusters}/{cluster}", watch):
                group_path = f"{clusters}/{cluster}/{group}"
                try:
                    addresses = self._children(group_path, watch)
                except Refused:  # not the tenant's node (audit lists it): it hides no other
                    continue
                for address in addresses:
                    try:
                        data, _ = self._call(self.client.get, f"{group_path}/{address}")
                        instance = Instance.from_json(data)
                    except (NoNodeError, InstanceFormatError, Refused):
                        continue
                    found.append({
                        "cluster": cluster,
                        "group": group,
                        "address": address,
                        "weight": instance.weight,
                        "version": instance.version,
                        "tags": dict(instance.tags),
                        "uptime_s": round(max(0.0, now - instance.start_time), 1),
                        "services": {k: list(v) for k, v in instance.services.items()},
                        "set": instance.set,
                        "warmup": instance.warmup,
                        "tls": instance.tls,
                        "metrics_port": instance.metrics_port,
                        "host": instance.host,
                    })  # fmt: skip
        return found

    def tree(self, service: str) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "service": service,
            "providers": self.providers(service),
            "services": {
                name: doc.get("status") for name, doc in self.descriptors(service).items()
            },
            "rules": self.rules(service),
            "subscriptions": self.subscriptions(service),
        }

    def audit(self) -> list[dict[str, Any]]:
        """Nodes under the tenant whose ACL is not exactly the tenant's own, and nodes its
        credentials may not read (csf.registry.access.audit)."""
        try:
            return list(audit(self.client, self.tenant))
        except NoAuthError as exc:  # raised for the tenant's node alone
            raise self.refusal(tenant_path(self.tenant), exc) from None

    def watch(
        self, service: str, report: Callable[[list[dict[str, Any]]], None], stop: threading.Event
    ) -> None:
        """Call `report` with the provider list now and whenever it changes, until `stop`."""
        changed = threading.Event()

        def on_change(event: Any) -> None:
            changed.set()

        last: list[dict[str, Any]] | None = None
        while not stop.is_set():
            changed.clear()
            # One watcher function for every pass: kazoo keeps a set of them per node,
            # so a new one each pass would pile up on the nodes that did not change.
            found = self.providers(service, watch=on_change)
            # Parent nodes appear one by one: report what differs, not every event.
            comparable = [{k: v for k, v in p.items() if k != "uptime_s"} for p in found]
            if comparable != last:
                report(found)
                last = comparable
            while not changed.wait(0.2):
                if stop.is_set():
                    return
