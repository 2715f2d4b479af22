"""csf-registry: the operators' command line for CSF's ZooKeeper registry.

Exit codes: 0 done, 1 refused (validation, illegal transition, missing node, no
permission), 2 usage, 3 ZooKeeper unreachable, 4 `audit` found open nodes. Every error
is one line on stderr; `--json` gives machine output on stdout.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from kazoo.exceptions import KazooException
from rich.console import Console
from rich.table import Table

from csf._exceptions import ConfigError
from csf.config import ZooKeeperURL, parse_registry_url
from csf.registry.admin import LIFECYCLE, Refused, RegistryAdmin, RegistryUnreachable
from csf.registry.descriptors import export, parse
from csf.registry.paths import tenant_path

T = TypeVar("T")
REFUSED, USAGE, UNREACHABLE, FOUND_OPEN = 1, 2, 3, 4

app = typer.Typer(
    name="csf-registry",
    help="Operate CSF's registry: service descriptors, lifecycle, subscriptions and rules.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
rule_app = typer.Typer(help="Governance rules under configs/<kind>.", no_args_is_help=True)
app.add_typer(rule_app, name="rule")
out = Console(soft_wrap=True)


@dataclass(frozen=True)
class Options:
    zk: str
    tenant: str
    digest: str | None
    json: bool


@app.callback()
def registry_options(
    ctx: typer.Context,
    zk: Annotated[
        str, typer.Option(envvar="CSF_ZK", help="ZooKeeper registry URL (zk://host:port,...).")
    ] = "zk://127.0.0.1:2181",
    tenant: Annotated[str, typer.Option(envvar="CSF_TENANT", help="Tenant to operate on.")] = (
        "TenantA"
    ),
    digest: Annotated[
        str | None, typer.Option(help="user:password for an ACL-protected tenant.")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Machine output (JSON).")] = False,
) -> None:
    """Options shared by every command."""
    # kazoo narrates its reconnection attempts; errors here are one line of our own.
    logging.getLogger("kazoo").setLevel(logging.CRITICAL)
    ctx.obj = Options(zk, tenant, digest, json_output)


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"csf-registry: {message}", err=True)
    return typer.Exit(code)


def _url(options: Options) -> ZooKeeperURL:
    try:
        url = parse_registry_url(options.zk)
    except ConfigError as exc:
        raise _fail(f"--zk: {exc}", USAGE) from None
    if not isinstance(url, ZooKeeperURL):
        raise _fail("--zk: csf-registry needs a zk:// registry", USAGE)
    if options.digest:
        user, colon, password = options.digest.partition(":")
        if not colon:
            raise _fail("--digest: expected user:password", USAGE)
        url = replace(url, digest=(user, password))
    return url


def _run(ctx: typer.Context, action: Callable[[RegistryAdmin], T]) -> T:
    """Run `action` on a connected admin; errors become one line and an exit code."""
    options: Options = ctx.obj
    try:
        with RegistryAdmin(_url(options), options.tenant) as admin:
            return action(admin)
    except RegistryUnreachable as exc:
        raise _fail(str(exc), UNREACHABLE) from None
    except (Refused, ConfigError) as exc:
        raise _fail(str(exc), REFUSED) from None
    except KazooException as exc:
        raise _fail(f"ZooKeeper refused: {type(exc).__name__}", REFUSED) from None


def _show(
    ctx: typer.Context, data: Any, table: Callable[[], Table | str], *, one_line: bool = False
) -> None:
    if ctx.obj.json:
        typer.echo(json.dumps(data, indent=None if one_line else 2, sort_keys=True))
    else:
        out.print(table())


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    return table


# -- descriptors --------------------------------------------------------------------------


@app.command("export")
def export_command(
    targets: Annotated[
        list[str], typer.Argument(help="MODULE or MODULE:CLASS with @csf.provider.")
    ],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write here.")] = None,
) -> None:
    """Write the descriptors of provider classes (services, methods, protos) as JSON."""
    try:
        document = export(targets)
    except ConfigError as exc:
        raise _fail(str(exc), REFUSED) from None
    text = json.dumps(document, indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)


@app.command("import")
def import_command(
    ctx: typer.Context, file: Annotated[Path, typer.Argument(help="A descriptor document.")]
) -> None:
    """Store descriptors under services/ (new ones registered; a re-import keeps the
    status, and brings a deregistered service back to registered), all or nothing."""
    try:
        descriptors = parse(json.loads(file.read_text()))
    except OSError as exc:
        raise _fail(f"{file}: {exc.strerror}", USAGE) from None
    except ValueError as exc:
        raise _fail(f"{file}: {exc}", REFUSED) from None
    paths = _run(ctx, lambda admin: admin.import_descriptors(descriptors))
    _show(ctx, paths, lambda: _table("imported", ["znode"], [[p] for p in paths]))


def _lifecycle(action: str) -> None:
    sources, target = LIFECYCLE[action]

    def command(
        ctx: typer.Context,
        service: Annotated[str, typer.Argument(help="Microservice code, e.g. XIESR.")],
        grpc_service: Annotated[
            str | None, typer.Option(help="Only this gRPC service of it.")
        ] = None,
    ) -> None:
        names = _run(ctx, lambda admin: admin.transition(service, action, grpc_service))
        rows = [[name, target] for name in names]
        _show(ctx, dict(rows), lambda: _table(f"{service}: {action}", ["service", "status"], rows))

    command.__doc__ = f"Move services from {' or '.join(sorted(sources))} to {target}."
    app.command(action)(command)


for _action in LIFECYCLE:
    _lifecycle(_action)


# -- subscriptions ----------------------------------------------------------------------


@app.command()
def subscribe(
    ctx: typer.Context, app_name: Annotated[str, typer.Argument(metavar="APP")], service: str
) -> None:
    """Let APP call SERVICE (it must be open)."""
    _run(ctx, lambda admin: admin.subscribe(app_name, service))
    _show(
        ctx,
        {"app": app_name, "service": service, "subscribed": True},
        lambda: f"{app_name} -> {service}",
    )


@app.command()
def unsubscribe(
    ctx: typer.Context, app_name: Annotated[str, typer.Argument(metavar="APP")], service: str
) -> None:
    """Stop APP calling SERVICE."""
    _run(ctx, lambda admin: admin.unsubscribe(app_name, service))
    _show(
        ctx,
        {"app": app_name, "service": service, "subscribed": False},
        lambda: f"{app_name} -/-> {service}",
    )


@app.command()
def subscriptions(ctx: typer.Context, service: str) -> None:
    """The apps subscribed to SERVICE."""
    apps = _run(ctx, lambda admin: admin.subscriptions(service))
    _show(ctx, apps, lambda: _table(f"{service} subscribers", ["app"], [[a] for a in apps]))


# -- rules --------------------------------------------------------------------------------


@rule_app.command("set")
def rule_set(
    ctx: typer.Context,
    service: str,
    kind: str,
    document: Annotated[str | None, typer.Option("--json", help="The rule as JSON.")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="A file holding the rule.")] = None,
) -> None:
    """Validate a rule as consumers will, then write it."""
    if (document is None) == (file is None):
        raise _fail("rule set: give exactly one of --json DOC or --file F", USAGE)
    try:
        data = (document or "").encode() if file is None else file.read_bytes()
    except OSError as exc:
        raise _fail(f"{file}: {exc.strerror}", USAGE) from None
    written = _run(ctx, lambda admin: admin.set_rule(service, kind, data))
    _show(ctx, written, lambda: f"{service} {kind} rule set: {json.dumps(written)}")


@rule_app.command("get")
def rule_get(ctx: typer.Context, service: str, kind: str) -> None:
    """Show one rule."""
    rule = _run(ctx, lambda admin: admin.get_rule(service, kind))
    _show(ctx, rule, lambda: json.dumps(rule, indent=2))


@rule_app.command("rm")
def rule_rm(ctx: typer.Context, service: str, kind: str) -> None:
    """Remove one rule (its defaults apply again)."""
    _run(ctx, lambda admin: admin.remove_rule(service, kind))
    _show(ctx, {"removed": kind}, lambda: f"{service} {kind} rule removed")


@rule_app.command("ls")
def rule_ls(ctx: typer.Context, service: str) -> None:
    """Every rule of SERVICE."""
    rules = _run(ctx, lambda admin: admin.rules(service))
    rows = [[kind, json.dumps(doc)] for kind, doc in rules.items()]
    _show(ctx, rules, lambda: _table(f"{service} rules", ["kind", "rule"], rows))


# -- views --------------------------------------------------------------------------------


@app.command()
def ls(
    ctx: typer.Context, path: Annotated[str | None, typer.Argument(help="A znode path.")] = None
) -> None:
    """The children of PATH (default: the tenant's node)."""
    where = path or tenant_path(ctx.obj.tenant)
    children = _run(ctx, lambda admin: admin.ls(where))
    _show(ctx, children, lambda: _table(where, ["child"], [[c] for c in children]))


def _provider_rows(providers: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [p["cluster"], p["group"], p["address"], p["weight"], p["version"], f"{p['uptime_s']:.0f}s"]
        for p in providers
    ]


PROVIDER_COLUMNS = ["cluster", "group", "provider", "weight", "version", "uptime"]


@app.command()
def providers(ctx: typer.Context, service: str) -> None:
    """The provider instances of SERVICE."""
    found = _run(ctx, lambda admin: admin.providers(service))
    _show(
        ctx, found, lambda: _table(f"{service} providers", PROVIDER_COLUMNS, _provider_rows(found))
    )


@app.command()
def tree(ctx: typer.Context, service: str) -> None:
    """SERVICE at a glance: providers, gRPC services with status, rules, subscribers."""
    view = _run(ctx, lambda admin: admin.tree(service))

    def render() -> Table:
        table = _table(
            f"{ctx.obj.tenant}/{service}", PROVIDER_COLUMNS, _provider_rows(view["providers"])
        )
        for name, status in view["services"].items():
            table.add_row("service", name, status, "", "", "")
        for kind, rule in view["rules"].items():
            table.add_row("rule", kind, json.dumps(rule), "", "", "")
        for subscriber in view["subscriptions"]:
            table.add_row("subscriber", subscriber, "", "", "", "")
        return table

    _show(ctx, view, render)


@app.command()
def audit(ctx: typer.Context) -> None:
    """List every node under the tenant that world:anyone may read (exit 4 if any).
    Give the tenant's credentials with --digest."""
    found = _run(ctx, lambda admin: admin.audit())
    rows = [[node["path"], " ".join(node["acl"])] for node in found]
    title = f"{ctx.obj.tenant}: {len(found)} nodes readable by world:anyone"
    _show(ctx, found, lambda: _table(title, ["znode", "acl"], rows))
    if found:
        raise typer.Exit(FOUND_OPEN)


@app.command()
def watch(ctx: typer.Context, service: str) -> None:
    """Print SERVICE's providers now and on every change, until interrupted (--json: one
    line of JSON a report)."""
    stop = threading.Event()

    def report(found: list[dict[str, Any]]) -> None:
        rows = _provider_rows(found)
        title = f"{service} providers"
        _show(ctx, found, lambda: _table(title, PROVIDER_COLUMNS, rows), one_line=True)
        sys.stdout.flush()

    # Interrupts only set `stop`: a KeyboardInterrupt raised inside kazoo's own waits
    # can leave its locks held and hang the session's close.
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    _run(ctx, lambda admin: admin.watch(service, report, stop))


def main() -> None:
    app(prog_name="csf-registry")


if __name__ == "__main__":
    main()
