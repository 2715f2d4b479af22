"""The README's API example runs as it stands."""

import os
import re
import subprocess
import sys
from pathlib import Path

from csf.testing.zookeeper import LocalZooKeeper
from tests.conftest import ROOT


def run_example(block: str, zookeeper: LocalZooKeeper, tmp_path: Path) -> list[str]:
    """Run a README example as a script; its output lines."""
    script = tmp_path / "example.py"
    script.write_text(block)
    result = subprocess.run(
        [sys.executable, str(script)],
        # The example imports the demo's generated code, which lives in the clone only.
        env={
            **os.environ,
            "CSF_ZK": zookeeper.url,
            "CSF_SNAPSHOT_DIR": str(tmp_path),
            "PYTHONPATH": str(ROOT),
        },
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def python_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)


def test_readme_api_example_runs(zookeeper: LocalZooKeeper, tmp_path: Path) -> None:
    blocks = python_blocks()
    assert blocks, "the README has no python example"
    lines = run_example(blocks[0], zookeeper, tmp_path)
    assert lines == ["hi x", "later, y (DEADLINE_EXCEEDED)"]


def test_readme_set_example_runs(zookeeper: LocalZooKeeper, tmp_path: Path) -> None:
    [block] = [b for b in python_blocks() if 'set="hz.a.2"' in b]
    lines = run_example(block, zookeeper, tmp_path)
    assert lines == [
        "user 12 served in hz.a.1",
        "user 1712 served in hz.a.2",
        "no key served in hz.a.2",
    ]
