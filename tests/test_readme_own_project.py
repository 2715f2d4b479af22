"""The README's "Use CSF in your project" works as written: its proto generates typed code,
its provider serves all four call kinds to its consumer, and mypy --strict accepts both."""

import os
import re
import subprocess
import sys
from pathlib import Path

from mypy import api

from csf.testing.zookeeper import LocalZooKeeper
from tests.conftest import ROOT

EXPECTED = [
    "delivered 7 items",
    "apple: 5",
    "on the shelf: apple 5",
    "on the shelf: pear 2",
    "reserved 3 apple",
    "reserved 2 pear",
]


def _write_project(directory: Path, tenant: str) -> None:
    """The section's proto and Python files, named by each block's docstring."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Use CSF in your project\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(\w+)\n(.*?)```", section, flags=re.DOTALL)
    (proto,) = [text for kind, text in blocks if kind == "proto"]
    (directory / "inventory.proto").write_text(proto)
    names = {'"""Serves INVENTORY': "provider.py", '"""One call of each kind': "consumer.py"}
    for kind, text in blocks:
        name = next((n for start, n in names.items() if text.startswith(start)), None)
        if kind == "python" and name:
            # Its own tenant, so the shared test ZooKeeper sees no other test's INVENTORY.
            (directory / name).write_text(text.replace('"TenantA"', repr(tenant)))
    assert all((directory / name).exists() for name in names.values())
    (command,) = [text for kind, text in blocks if "grpc_tools.protoc" in text]
    assert "--mypy_out=. --mypy_grpc_out=." in command


def _generate(directory: Path) -> None:
    # As with the venv active: protoc finds mypy-protobuf's plugins on PATH.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I.", "--python_out=.",
         "--grpc_python_out=.", "--mypy_out=.", "--mypy_grpc_out=.", "inventory.proto"],
        cwd=directory, env={**os.environ, "PATH": path}, check=True, capture_output=True,
    )  # fmt: skip


def test_the_section_s_provider_serves_its_consumer_all_four_call_kinds(
    zookeeper: LocalZooKeeper, tenant: str, tmp_path: Path
) -> None:
    _write_project(tmp_path, tenant)
    _generate(tmp_path)
    env = {**os.environ, "CSF_ZK": zookeeper.url, "CSF_SNAPSHOT_DIR": str(tmp_path)}
    with subprocess.Popen(
        [sys.executable, "provider.py"], cwd=tmp_path, env=env, text=True,
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
    ) as provider:  # fmt: skip
        try:
            assert provider.stdout is not None
            assert provider.stdout.readline().startswith("serving 127.0.0.1:")
            consumer = subprocess.run(
                [sys.executable, "consumer.py"], cwd=tmp_path, env=env,
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
        finally:
            provider.terminate()  # SIGTERM: it deregisters, drains and exits 0
            provider.wait(timeout=30)
    assert consumer.returncode == 0, consumer.stderr
    assert consumer.stdout.splitlines() == EXPECTED
    assert provider.returncode == 0


def test_mypy_strict_accepts_the_section_s_provider_and_consumer(
    tenant: str, tmp_path: Path
) -> None:
    _write_project(tmp_path, tenant)
    _generate(tmp_path)
    # This venv's editable install is an import hook mypy cannot follow, so csf comes from
    # the clone here, checked by CSF's own settings and silenced: only the user's code counts.
    os.symlink(ROOT / "csf", tmp_path / "csf")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        stdout, stderr, status = api.run(
            ["--strict", "--config-file", str(ROOT / "pyproject.toml"),
             "--follow-imports", "silent", "--cache-dir", str(tmp_path / "cache"),
             "provider.py", "consumer.py"]
        )  # fmt: skip
    finally:
        os.chdir(cwd)
    assert status == 0, stdout + stderr
    assert "Success: no issues found in 2 source files" in stdout
