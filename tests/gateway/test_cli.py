"""csf-gateway refuses a bad flag or file with one line naming it (exit 2), never a
traceback; its help prints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "csf.gateway.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_the_help_prints() -> None:
    done = _run("--help")
    assert done.returncode == 0, done.stderr
    assert "--apps" in done.stdout and "zk://host:port[/chroot]" in done.stdout


@pytest.fixture
def apps(tmp_path: Path) -> Path:
    path = tmp_path / "apps.json"
    path.write_text('{"web": "web-secret-0123456789"}')
    return path


@pytest.mark.parametrize(
    ("flags", "names"),
    [
        (["--registry", "http://nowhere", "--tenant", "T"], "registry"),
        (["--registry", "zk://127.0.0.1:1", "--tenant", "../T"], "tenant"),
        (["--registry", "zk://127.0.0.1:1", "--tenant", "T", "--host", "unix:/x"], "--host"),
        (["--registry", "zk://127.0.0.1:1", "--tenant", "T", "--port", "70000"], "--port"),
        (["--registry", "zk://127.0.0.1:1", "--tenant", "T", "--max-body", "0"], "max_body"),
        (["--registry", "zk://127.0.0.1:1", "--tenant", "T", "--max-timeout", "-1"], "max_timeout"),
        (
            ["--registry", "zk://127.0.0.1:1", "--tenant", "T", "--sample-ratio", "2"],
            "sample_ratio",
        ),
        (["--registry", "zk://127.0.0.1:1", "--tenant", "T", "--exporter", "zip"], "exporter"),
        (["--registry", "zk://127.0.0.1:1", "--tenant", "T", "--log-level", "loud"], "--log-level"),
    ],
)
def test_a_bad_flag_is_one_line_naming_it(apps: Path, flags: list[str], names: str) -> None:
    done = _run(*flags, "--apps", str(apps))
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("csf-gateway: ") and names in lines[0], lines


@pytest.mark.parametrize(
    "content", ["", "[]", '{"web": "short"}', '{"../x": "a-secret-of-16-chars"}', "{nope"]
)
def test_a_bad_apps_file_is_named_and_its_secrets_never_printed(
    tmp_path: Path, content: str
) -> None:
    path = tmp_path / "apps.json"
    path.write_text(content)
    done = _run("--registry", "zk://127.0.0.1:1", "--tenant", "T", "--apps", str(path))
    assert done.returncode == 2
    assert str(path) in done.stderr and "Traceback" not in done.stderr
    assert "a-secret-of-16-chars" not in done.stderr and "short" not in done.stderr


def test_a_missing_secret_file_is_named(apps: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    done = _run(
        "--registry", "zk://127.0.0.1:1", "--tenant", "T", "--apps", str(apps),
        "--app-secret-file", str(missing),
    )  # fmt: skip
    assert done.returncode == 2 and "--app-secret-file" in done.stderr
