"""csf-console: serve the operators' web portal.

Exit codes: 0 stopped, 2 a bad flag (one line on stderr naming it). It listens on
127.0.0.1 unless `--host` says otherwise; there is no default account: operators log in
with a tenant's ZooKeeper digest credentials.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated, Any

import typer
import uvicorn

from csf._exceptions import ConfigError
from csf._serve_flags import check_serve_flags
from csf.console.app import create_app
from csf.console.settings import DEFAULT_IDLE_S, ConsoleSettings

# The console logs what operators do through csf.registry's own messages; uvicorn's
# access log would add every SSE reconnection.
SERVER_OPTIONS: dict[str, Any] = {"access_log": False, "lifespan": "on", "proxy_headers": False}

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)


@app.command()
def serve(
    registry: Annotated[str, typer.Option(help="zk://host:port[/chroot]")],
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8081,
    open_tenants: Annotated[
        bool, typer.Option(help="Let tenants without ACLs log in (no user, no password)")
    ] = False,
    idle: Annotated[float, typer.Option(help="Seconds a login lasts unused")] = DEFAULT_IDLE_S,
    log_level: Annotated[str, typer.Option(help="Python logging level")] = "info",
) -> None:
    """Serve the console for every tenant of a registry; each operator logs in to one."""
    try:
        level = check_serve_flags(host, port, log_level)
        console = create_app(ConsoleSettings(registry, open_tenants=open_tenants, idle_s=idle))
    except ConfigError as exc:
        print(f"csf-console: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(console, host=host, port=port, log_level=log_level, **SERVER_OPTIONS)


def main() -> None:
    app(prog_name="csf-console")


if __name__ == "__main__":
    main()
