"""The committed demo/*_pb2* files are what the pinned generators make of protos/."""

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_committed_generated_code_is_fresh(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*_pb2*"))
    assert generated, "the generator wrote nothing"
    committed = sorted(p.relative_to(ROOT) for p in (ROOT / "demo").rglob("*_pb2*"))
    assert committed == generated, "run: python scripts/gen_protos.py"
    for relative in generated:
        fresh = (tmp_path / relative).read_bytes()
        assert (ROOT / relative).read_bytes() == fresh, (
            f"{relative} is stale: run scripts/gen_protos.py"
        )
