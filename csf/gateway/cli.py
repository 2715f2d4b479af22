"""csf-gateway: serve a tenant's open CSF services as HTTP/JSON.

Exit codes: 0 stopped, 2 a bad flag or file (one line on stderr naming it). The gateway's
own app secret, when providers check callers, comes from `--app-secret-file` or the
environment variable CSF_GATEWAY_SECRET, never from a flag.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn

from csf._exceptions import ConfigError
from csf._files import read_at_most
from csf._serve_flags import check_serve_flags
from csf.gateway.access import load_apps
from csf.gateway.app import Gateway
from csf.gateway.settings import (
    DEFAULT_APP,
    DEFAULT_MAX_BODY,
    DEFAULT_MAX_TIMEOUT,
    GatewaySettings,
)
from csf.observability import Observability

SECRET_ENV = "CSF_GATEWAY_SECRET"
# The gateway logs each request itself (csf.gateway.access) and reads no X-Forwarded-*
# header: its callers are its signed apps, not addresses.
SERVER_OPTIONS: dict[str, Any] = {"access_log": False, "lifespan": "on", "proxy_headers": False}
MAX_SECRET_FILE = 4096

# Help text is plain: "[/chroot]" in a URL form is no markup.
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)


def _secret(path: Path | None) -> str | None:
    if path is None:
        return os.environ.get(SECRET_ENV) or None
    data = read_at_most("--app-secret-file", path, MAX_SECRET_FILE)
    if len(data) > MAX_SECRET_FILE:
        raise ConfigError(f"--app-secret-file {path}: more than {MAX_SECRET_FILE} bytes")
    try:
        return data.decode().strip()
    except UnicodeDecodeError:
        raise ConfigError(f"--app-secret-file {path}: not UTF-8 text") from None


@app.command()
def serve(
    registry: Annotated[str, typer.Option(help="zk://host:port[/chroot][?digest=...]")],
    tenant: Annotated[str, typer.Option(help="The tenant whose open services are served")],
    apps: Annotated[Path, typer.Option(help='JSON file {"app": "secret"} of the callers')],
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8080,
    gateway_app: Annotated[
        str, typer.Option("--app", help="The app the gateway calls providers as")
    ] = DEFAULT_APP,
    app_secret_file: Annotated[
        Path | None, typer.Option(help=f"The gateway app's secret (else ${SECRET_ENV})")
    ] = None,
    max_body: Annotated[int, typer.Option(help="Largest request body, bytes")] = DEFAULT_MAX_BODY,
    max_timeout: Annotated[
        float, typer.Option(help="Longest deadline of a call, seconds")
    ] = DEFAULT_MAX_TIMEOUT,
    exporter: Annotated[str, typer.Option(help="Where traces go: none, console or otlp")] = "none",
    sample_ratio: Annotated[
        float, typer.Option(help="Share of requests traced, whatever a traceparent asks")
    ] = 1.0,
    log_level: Annotated[str, typer.Option(help="Python logging level")] = "info",
) -> None:
    """Serve HTTP/JSON for every open CSF service of a tenant."""
    try:
        level = check_serve_flags(host, port, log_level)
        settings = GatewaySettings(
            registry=registry,
            tenant=tenant,
            app=gateway_app,
            app_secret=_secret(app_secret_file),
            max_body=max_body,
            max_timeout=max_timeout,
            sample_ratio=sample_ratio,
        )
        observability = Observability(exporter=exporter)
        gateway = Gateway(settings, load_apps(apps), observability=observability)
    except ConfigError as exc:
        print(f"csf-gateway: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(gateway, host=host, port=port, log_level=log_level, **SERVER_OPTIONS)


def main() -> None:
    app(prog_name="csf-gateway")


if __name__ == "__main__":
    main()
