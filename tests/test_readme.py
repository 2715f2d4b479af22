"""The README's API example runs as it stands."""

import os
import re
import subprocess
import sys
from pathlib import Path

from csf.testing.zookeeper import LocalZooKeeper
from tests.conftest import ROOT


def test_readme_api_example_runs(zookeeper: LocalZooKeeper, tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    assert blocks, "the README has no python example"
    script = tmp_path / "example.py"
    script.write_text(blocks[0])
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
    assert result.stdout.splitlines() == ["hi x", "later, y (DEADLINE_EXCEEDED)"]
