"""The entry points of the commands that need an extra: one line naming the missing extra,
not a traceback, when it is not installed."""

from __future__ import annotations

import importlib
import sys


def _run(command: str, module: str, extra: str) -> None:
    try:
        cli = importlib.import_module(module)
    except ModuleNotFoundError as missing:
        sys.exit(
            f"{command}: needs the '{extra}' extra ({missing.name} is not installed): "
            f"pip install 'csf[{extra}]', or -e '/path/to/csf[{extra}]'"
        )
    cli.main()


def gateway() -> None:
    _run("csf-gateway", "csf.gateway.cli", "gateway")


def console() -> None:
    _run("csf-console", "csf.console.cli", "console")
