"""The ZooKeeper layout of DESIGN section 2, as path builders."""

from __future__ import annotations

ROOT = "/busidomain/csf"


def tenant_path(tenant: str) -> str:
    return f"{ROOT}/{tenant}"


def service_path(tenant: str, service: str) -> str:
    return f"{ROOT}/{tenant}/{service}"


def cluster_path(tenant: str, service: str, cluster: str) -> str:
    return f"{ROOT}/{tenant}/{service}/clusters/{cluster}"


def group_path(tenant: str, service: str, cluster: str, group: str) -> str:
    return f"{cluster_path(tenant, service, cluster)}/{group}"


def instance_path(tenant: str, service: str, cluster: str, group: str, address: str) -> str:
    return f"{group_path(tenant, service, cluster, group)}/{address}"


def rule_path(tenant: str, service: str, kind: str) -> str:
    return f"{ROOT}/{tenant}/{service}/configs/{kind}"


def subscriptions_path(tenant: str, service: str) -> str:
    return f"{ROOT}/{tenant}/{service}/subscriptions"


def history_path(tenant: str, service: str, kind: str) -> str:
    """The last versions of a rule, one child per version (`<version>`)."""
    return f"{ROOT}/{tenant}/{service}/history/{kind}"


def apps_path(tenant: str) -> str:
    """The tenant's apps, one child per app (`<app>`)."""
    return f"{ROOT}/{tenant}/_apps"


def applied_path(tenant: str, service: str, kind: str) -> str:
    """Which version of a rule each process applied, one ephemeral child per process."""
    return f"{ROOT}/{tenant}/{service}/applied/{kind}"
