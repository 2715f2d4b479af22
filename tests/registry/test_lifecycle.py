"""csf-registry's lifecycle commands, each one, against a real ZooKeeper."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient
from typer.testing import CliRunner

from csf.registry.cli import app
from csf.testing.zookeeper import LocalZooKeeper

# (command, the status it leaves, or None: refused and the status stays as it was)
WALK = [
    ("open", None),  # registered
    ("close", None),
    ("offline", None),
    ("online", "online"),
    ("close", None),  # online
    ("online", None),
    ("deregister", None),
    ("open", "open"),
    ("open", None),  # open
    ("online", None),
    ("deregister", None),
    ("close", "online"),
    ("open", "open"),
    ("offline", "offline"),  # from open
    ("open", None),  # offline
    ("close", None),
    ("offline", None),
    ("online", "online"),  # from offline
    ("offline", "offline"),  # from online
    ("deregister", "deregistered"),  # from offline
    ("online", None),  # deregistered: every command refused
    ("open", None),
    ("close", None),
    ("offline", None),
    ("deregister", None),
]
# Which statuses each command may start from, as the README states it.
SOURCES = {
    "online": "offline or registered",
    "open": "online",
    "close": "open",
    "offline": "online or open",
    "deregister": "offline or registered",
}


class Cli:
    def __init__(self, zookeeper: LocalZooKeeper, tenant: str) -> None:
        self.base = ["--zk", zookeeper.url, "--tenant", tenant]
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Any:
        return self.runner.invoke(app, [*self.base, *args])


class Stored:
    """The service's descriptor as ZooKeeper holds it."""

    def __init__(self, kazoo: KazooClient, tenant: str, service: str) -> None:
        self.kazoo = kazoo
        self.path = f"/busidomain/csf/{tenant}/{service}/services/demo.Greeter"

    def document(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.kazoo.get(self.path)[0])
        return document

    def status(self) -> str:
        return str(self.document()["status"])


@pytest.fixture
def cli(zookeeper: LocalZooKeeper, tenant: str) -> Cli:
    return Cli(zookeeper, tenant)


@pytest.fixture
def imported(cli: Cli, tmp_path: Path, kazoo: KazooClient, tenant: str) -> Stored:
    """XIESR's descriptor exported from the demo and imported: status `registered`."""
    path = tmp_path / "xiesr.json"
    for command in (("export", "demo.providers", "-o", str(path)), ("import", str(path))):
        result = cli(*command)
        assert result.exit_code == 0, result.stderr
    stored = Stored(kazoo, tenant, "XIESR")
    assert stored.status() == "registered"
    return stored


def test_each_lifecycle_command_moves_the_status_exactly_as_promised(
    cli: Cli, imported: Stored
) -> None:
    imported_document = imported.document()
    for command, leads_to in WALK:
        before = imported.status()
        result = cli("--json", command, "XIESR")
        step = f"{command} from {before}"
        if leads_to is None:
            assert result.exit_code == 1, step
            assert result.stderr == (
                f"csf-registry: demo.Greeter is {before}: '{command}' needs it to be "
                f"{SOURCES[command]}\n"
            ), step
            assert imported.status() == before, step
        else:
            assert result.exit_code == 0, (step, result.stderr)
            assert json.loads(result.stdout) == {"demo.Greeter": leads_to}, step
            assert imported.status() == leads_to, step
        unchanged = {k: v for k, v in imported.document().items() if k != "status"}
        assert unchanged == {k: v for k, v in imported_document.items() if k != "status"}, step


def test_a_service_just_imported_can_be_deregistered(cli: Cli, imported: Stored) -> None:
    result = cli("deregister", "XIESR")
    assert result.exit_code == 0, result.stderr
    assert imported.status() == "deregistered"


def test_the_installed_command_refuses_close_from_online_with_exit_1(
    zookeeper: LocalZooKeeper, tenant: str, cli: Cli, imported: Stored
) -> None:
    assert cli("online", "XIESR").exit_code == 0
    command = [sys.executable, "-m", "csf.registry.cli", "--zk", zookeeper.url,
               "--tenant", tenant, "close", "XIESR"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert result.stderr == "csf-registry: demo.Greeter is online: 'close' needs it to be open\n"
    assert imported.status() == "online"
