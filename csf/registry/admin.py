"""What csf-registry does to ZooKeeper, as plain blocking calls (it is a command line).

Multi-node writes (an import, a lifecycle change of several gRPC services) go in one
kazoo transaction: all or nothing. Everything is checked before anything is written.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from kazoo.exceptions import NoNodeError
from kazoo.handlers.threading import KazooTimeoutError

from csf._exceptions import RegistryError
from csf.config import ZooKeeperURL, check_name
from csf.registry.access import audit, ensure_shared_parents, kazoo_client, tenant_acl
from csf.registry.descriptors import ServiceDescriptor
from csf.registry.instance import Instance, InstanceFormatError
from csf.registry.paths import rule_path, service_path
from csf.rules import PARSERS, RuleError, parse_rule

CONNECT_TIMEOUT = 5.0
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


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


class RegistryAdmin:
    def __init__(self, url: ZooKeeperURL, tenant: str) -> None:
        self.tenant = check_name("tenant", tenant)
        self._hosts = url.connect_string
        self.client = kazoo_client(url)
        self._closed_tenant = tenant_acl(url) is not None

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

    def _children(self, path: str, watch: Callable[[Any], None] | None = None) -> list[str]:
        """The children of `path`, none if it is missing; `watch` fires on a change (or on
        its creation)."""
        try:
            return sorted(self.client.get_children(path, watch=watch))
        except NoNodeError:
            if watch is not None:
                self.client.exists(path, watch=watch)
            return []

    def _document(self, path: str) -> Any:
        try:
            data, _ = self.client.get(path)
        except NoNodeError:
            return None
        return _json(data)

    def ls(self, path: str) -> list[str]:
        try:
            return sorted(self.client.get_children(path))
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
                data, stat = self.client.get(path)
                status = (_json(data) or {}).get("status", "registered")
                if status == "deregistered":
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
            if parent not in planned and self.client.exists(parent) is None:
                transaction.create(parent, b"")
                planned.add(parent)

    def _commit(self, transaction: Any, what: str) -> None:
        results = transaction.commit()
        failures = [result for result in results if isinstance(result, Exception)]
        if failures:
            raise Refused(f"{what}: ZooKeeper refused it, nothing was written ({failures[0]!r})")

    def descriptors(self, service: str) -> dict[str, dict[str, Any]]:
        base = f"{self._service(service)}/services"
        return {name: self._document(f"{base}/{name}") or {} for name in self._children(base)}

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
                data, stat = self.client.get(path)
            except NoNodeError:
                raise Refused(f"{service} has no service {name}") from None
            document = _json(data) or {}
            status = document.get("status")
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
        self.client.ensure_path(path)
        self.client.set(path, json.dumps(document).encode())

    def unsubscribe(self, app: str, service: str) -> None:
        path = f"{self._service(service)}/subscriptions/{check_name('app', app)}"
        try:
            self.client.delete(path)
        except NoNodeError:
            raise Refused(f"{app} is not subscribed to {service}") from None

    def subscriptions(self, service: str) -> list[str]:
        return self._children(f"{self._service(service)}/subscriptions")

    # -- rules --------------------------------------------------------------------------

    def set_rule(self, service: str, kind: str, data: bytes) -> Any:
        try:
            parse_rule(kind, data)
        except RuleError as exc:
            raise Refused(str(exc)) from None
        path = rule_path(self.tenant, check_name("service", service), kind)
        if self.client.exists(path) is None:
            self.client.create(path, data, makepath=True)
        else:
            self.client.set(path, data)
        return json.loads(data)

    def get_rule(self, service: str, kind: str) -> Any:
        if kind not in PARSERS:
            raise Refused(f"rule kind {kind!r} is not known; known: {', '.join(sorted(PARSERS))}")
        document = self._document(rule_path(self.tenant, check_name("service", service), kind))
        if document is None:
            raise Refused(f"{service} has no {kind} rule")
        return document

    def remove_rule(self, service: str, kind: str) -> None:
        try:
            self.client.delete(rule_path(self.tenant, check_name("service", service), kind))
        except NoNodeError:
            raise Refused(f"{service} has no {kind} rule") from None

    def rules(self, service: str) -> dict[str, Any]:
        base = f"{self._service(service)}/configs"
        return {kind: self._document(f"{base}/{kind}") for kind in self._children(base)}

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
                for address in self._children(group_path, watch):
                    try:
                        data, _ = self.client.get(f"{group_path}/{address}")
                        instance = Instance.from_json(data)
                    except (NoNodeError, InstanceFormatError):
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
        """Nodes under the tenant that anyone may read (`world:anyone`), with their ACLs."""
        return list(audit(self.client, self.tenant))

    def watch(
        self, service: str, report: Callable[[list[dict[str, Any]]], None], stop: threading.Event
    ) -> None:
        """Call `report` with the provider list now and whenever it changes, until `stop`."""
        changed = threading.Event()
        last: list[dict[str, Any]] | None = None
        while not stop.is_set():
            changed.clear()
            found = self.providers(service, watch=lambda event: changed.set())
            # Parent nodes appear one by one: report what differs, not every event.
            comparable = [{k: v for k, v in p.items() if k != "uptime_s"} for p in found]
            if comparable != last:
                report(found)
                last = comparable
            while not changed.wait(0.2):
                if stop.is_set():
                    return
