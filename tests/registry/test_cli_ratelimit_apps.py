"""`csf-registry rule set ... ratelimit` takes the gateway's per-app limits (`apps`) and
refuses bad ones before writing, with the parser consumers and gateways use."""

import json
from pathlib import Path

from kazoo.client import KazooClient

from csf.rules import AppRate, RateLimitRule, parse_rule
from tests.registry.conftest import Cli

APPS = {"schema": 1, "apps": {"web": {"rate": 50, "burst": 10}}, "methods": {
    "SayHello": {"apps": {"web": {"rate": 5}}},
}}  # fmt: skip


def test_rule_set_writes_a_ratelimit_with_apps_and_refuses_a_bad_one(
    cli: Cli, descriptor: Path, kazoo: KazooClient, tenant: str
) -> None:
    cli("import", str(descriptor))
    cli("rule", "set", "XIESR", "ratelimit", "--json", json.dumps(APPS))
    stored, _ = kazoo.get(f"/busidomain/csf/{tenant}/XIESR/configs/ratelimit")
    rule = parse_rule("ratelimit", stored)
    assert isinstance(rule, RateLimitRule)
    assert rule.app_limit("web", "Chat") == AppRate(50.0, 10.0)
    assert rule.app_limit("web", "SayHello") == AppRate(5.0, 1.0)

    bad = {"schema": 1, "apps": {"web": {"rate": 0}}}
    refused = cli("rule", "set", "XIESR", "ratelimit", "--json", json.dumps(bad), code=1)
    assert "ratelimit.apps['web'].rate: expected a number from 0.001" in refused.stderr
    assert kazoo.get(f"/busidomain/csf/{tenant}/XIESR/configs/ratelimit")[0] == stored
