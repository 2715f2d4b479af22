"""The gateway tells which rules it applied (csf.registry.applied) as a gateway, under
its own app name, beside the provider of the service it opens."""

from __future__ import annotations

from typing import Any

from csf.registry.admin import RegistryAdmin
from tests.conftest import wait_until
from tests.gateway.conftest import GATEWAY_APP, Deployment, GatewayProcess

RULE = b'{"schema": 1, "timeout_ms": 800}'


async def test_a_gateway_records_the_rule_version_it_applied_as_a_gateway(
    deployment: Deployment, gateway: GatewayProcess
) -> None:
    await deployment.run(lambda admin: admin.set_rule("SHOP", "timeout", RULE))

    def applied(admin: RegistryAdmin) -> list[dict[str, Any]]:
        return admin.applied("SHOP", "timeout")

    async def told() -> bool:
        return any(entry["role"] == "gateway" for entry in await deployment.run(applied))

    await wait_until(told, 10, "the gateway's applied node")
    [entry] = [e for e in await deployment.run(applied) if e["role"] == "gateway"]
    assert (entry["app"], entry["version"], entry["status"]) == (GATEWAY_APP, 0, "applied")
    assert entry["process"].startswith("gateway-")
    assert entry["pid"] == gateway.process.pid
