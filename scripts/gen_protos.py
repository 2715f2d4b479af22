"""Generate typed Python code for the protos under protos/ (grpcio-tools + mypy-protobuf).

Usage: python scripts/gen_protos.py [--out DIR]   (default: the repository root)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"


def generate(out_dir: Path) -> list[Path]:
    """Write <name>_pb2.py(i) and <name>_pb2_grpc.py(i) for every proto into out_dir."""
    protos = sorted(PROTO_ROOT.rglob("*.proto"))
    # protoc finds protoc-gen-mypy and protoc-gen-mypy_grpc next to this interpreter.
    bin_dir = str(Path(sys.executable).parent)
    os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    out = str(out_dir)
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{Path(protoc.__file__).parent / '_proto'}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *(str(p) for p in protos),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    return [out_dir / p.relative_to(PROTO_ROOT).parent for p in protos]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT)
    generate(parser.parse_args().out)
