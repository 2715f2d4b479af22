"""Fixtures of the registry tests: csf-registry driven in process against a real ZooKeeper."""

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from csf.registry.cli import app
from csf.testing.zookeeper import LocalZooKeeper


class Cli:
    def __init__(self, zookeeper: LocalZooKeeper, tenant: str) -> None:
        self.base = ["--zk", zookeeper.url, "--tenant", tenant]
        self.runner = CliRunner()

    def __call__(self, *args: str, code: int = 0) -> Any:
        result = self.runner.invoke(app, [*self.base, *args])
        assert result.exit_code == code, (result.stdout, result.stderr)
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self("--json", *args).stdout)


@pytest.fixture
def cli(zookeeper: LocalZooKeeper, tenant: str) -> Cli:
    return Cli(zookeeper, tenant)


@pytest.fixture
def descriptor(tmp_path: Path, cli: Cli) -> Path:
    """The descriptor document of demo.providers, as `csf-registry export` writes it."""
    path = tmp_path / "xiesr.json"
    cli("export", "demo.providers", "-o", str(path))
    return path
