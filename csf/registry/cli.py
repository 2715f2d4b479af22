"""csf-registry: the operators' command line for CSF's ZooKeeper registry.

Exit codes: 0 done, 1 refused (validation, illegal transition, missing node, no
permission, unknown tenant, service or method), 2 usage, 3 ZooKeeper unreachable, 4
`audit` found nodes not the tenant's own. Every error is one line on stderr, never a traceback;
`--json` (before or after the command) gives machine output on stdout. Everything read
from ZooKeeper is printed as plain text, never as rich markup.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from kazoo.exceptions import ConnectionLoss, KazooException, SessionExpiredError
from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
from rich.table import Table

from csf._digest import parse_digest, read_digest_file
from csf._exceptions import ConfigError
from csf._json import load_json
from csf.config import ZooKeeperURL, parse_registry_url
from csf.registry.admin import (
    LIFECYCLE,
    Refused,
    RegistryAdmin,
    RegistryUnreachable,
    UnknownTarget,
)
from csf.registry.descriptors import export, parse
from csf.set_rule import SetName, SetRule

T = TypeVar("T")
REFUSED, USAGE, UNREACHABLE, FOUND_OPEN = 1, 2, 3, 4

app = typer.Typer(
    name="csf-registry",
    help="Operate CSF's registry: service descriptors, lifecycle, subscriptions and rules.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # help paragraphs rewrapped, not cut at source lines
)
rule_app = typer.Typer(help="Governance rules under configs/<kind>.", no_args_is_help=True)
app.add_typer(rule_app, name="rule")
set_app = typer.Typer(
    help="SET (cell) routing: the set rule's table of bucket ranges.", no_args_is_help=True
)
app.add_typer(set_app, name="set")


def _console(width: int | None = None) -> Console:
    """Text from ZooKeeper is shown as it is: no markup ("[/x]" would raise, "[link=...]"
    hide text), no emoji codes, no highlighting."""
    return Console(width=width, soft_wrap=True, markup=False, emoji=False, highlight=False)


MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_TABLE_WIDTH = 100_000


@dataclass(frozen=True)
class Options:
    zk: str
    tenant: str
    digest: tuple[str, str] | None
    """Credentials given to the CLI itself; they win over the URL's and CSF_ZK_DIGEST."""
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
        str | None,
        typer.Option(
            help="user:password for an ACL-protected tenant. Prefer CSF_ZK_DIGEST (used when "
            "the URL has no digest) or --digest-file: a command line is visible to every user.",
        ),
    ] = None,
    digest_file: Annotated[
        Path | None, typer.Option(help="A file holding user:password (see --digest).")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Machine output (JSON).")] = False,
) -> None:
    """Options shared by every command."""
    # kazoo narrates its reconnection attempts; errors here are one line of our own.
    logging.getLogger("kazoo").setLevel(logging.CRITICAL)
    if digest is not None and digest_file is not None:
        raise _fail("give one of --digest and --digest-file", USAGE)
    try:
        if digest is not None:
            credentials = parse_digest("--digest", digest)
        elif digest_file is not None:
            credentials = read_digest_file("--digest-file", str(digest_file))
        else:
            credentials = None
    except ConfigError as exc:
        raise _fail(str(exc), USAGE) from None
    ctx.obj = Options(zk, tenant, credentials, json_output)


def _one_line(message: str) -> str:
    return " ".join(message.split())


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"csf-registry: {_printable(_one_line(message))}", err=True)
    return typer.Exit(code)


def _read(file: Path, what: str) -> bytes:
    """A file's bytes (at most MAX_FILE_BYTES); a usage error naming it otherwise."""
    try:
        with file.open("rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise _fail(f"{what} {file}: {exc.strerror or 'cannot be read'}", USAGE) from None
    except ValueError:  # a path holding a NUL character
        raise _fail(f"{what}: {file!r} is not a usable path", USAGE) from None
    if len(data) > MAX_FILE_BYTES:
        raise _fail(f"{what} {file}: larger than {MAX_FILE_BYTES} bytes", USAGE)
    return data


def _machine_output(ctx: typer.Context, given: bool) -> bool:
    """A command's `--json`: given after the command, it counts as given before it (the
    shared options ran first and made ctx.obj)."""
    if given:
        ctx.obj = replace(ctx.obj, json=True)
    return given


JsonFlag = Annotated[
    bool, typer.Option("--json", help="Machine output (JSON).", callback=_machine_output)
]


def _url(options: Options) -> ZooKeeperURL:
    try:
        url = parse_registry_url(options.zk)
    except ConfigError as exc:
        raise _fail(f"--zk: {exc}", USAGE) from None
    if not isinstance(url, ZooKeeperURL):
        raise _fail("--zk: csf-registry needs a zk:// registry", USAGE)
    if options.digest is not None:
        url = replace(url, digest=options.digest)
    return url


def _run(ctx: typer.Context, action: Callable[[RegistryAdmin], T]) -> T:
    """Run `action` on a connected admin; errors become one line and an exit code. The
    admin names the node of each refusal; a kazoo error it did not map names none."""
    options: Options = ctx.obj
    url = _url(options)
    try:
        with RegistryAdmin(url, options.tenant) as admin:
            return action(admin)
    except RegistryUnreachable as exc:
        raise _fail(str(exc), UNREACHABLE) from None
    except (ConnectionLoss, SessionExpiredError):
        raise _fail(f"lost ZooKeeper at {url.connect_string}", UNREACHABLE) from None
    except (Refused, ConfigError) as exc:
        raise _fail(str(exc), REFUSED) from None
    except KazooException as exc:
        raise _fail(f"ZooKeeper refused the operation ({type(exc).__name__})", REFUSED) from None


def _show(
    ctx: typer.Context, data: Any, table: Callable[[], RenderableType], *, one_line: bool = False
) -> None:
    if ctx.obj.json:
        typer.echo(json.dumps(data, indent=None if one_line else 2, sort_keys=True))
        return
    shown = table()
    # As wide as the table needs: an address cut at 80 columns is a wrong address.
    out = _console()
    unbounded = out.options.update(max_width=MAX_TABLE_WIDTH)
    needed = Measurement.get(out, unbounded, shown).maximum
    (_console(needed) if needed > out.width else out).print(shown)


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    table = Table(title=_printable(title))
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(_printable(str(cell)) for cell in row))
    return table


# C0 and C1 controls (ESC starts terminal escape sequences) and the bidi overrides.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _printable(text: str) -> str:
    """Text with control characters written as escapes, so that data from ZooKeeper
    cannot move the cursor, clear the screen or retitle the operator's terminal."""
    return _CONTROL.sub(lambda found: ascii(found.group())[1:-1], text)


# -- descriptors --------------------------------------------------------------------------


@app.command("export")
def export_command(
    targets: Annotated[
        list[str], typer.Argument(help="MODULE or MODULE:CLASS with @csf.provider.")
    ],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write here.")] = None,
) -> None:
    """Write the descriptors of provider classes (services, methods, protos) as JSON.
    Modules are looked for in the current folder first, as `python -m` does."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        document = export(targets)
    except ConfigError as exc:
        raise _fail(str(exc), REFUSED) from None
    text = json.dumps(document, indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text)
    except OSError as exc:
        raise _fail(f"-o {output}: {exc.strerror or 'cannot be written'}", USAGE) from None


@app.command("import")
def import_command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A descriptor document.")],
    json_output: JsonFlag = False,
) -> None:
    """Store descriptors under services/ (new ones registered; a re-import keeps the
    status, and brings a deregistered service back to registered), all or nothing."""
    data = _read(file, "import")
    try:
        descriptors = parse(load_json(data, MAX_FILE_BYTES))
    except ValueError as exc:  # DescriptorError included
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
        json_output: JsonFlag = False,
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
    ctx: typer.Context,
    app_name: Annotated[str, typer.Argument(metavar="APP")],
    service: str,
    json_output: JsonFlag = False,
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
    ctx: typer.Context,
    app_name: Annotated[str, typer.Argument(metavar="APP")],
    service: str,
    json_output: JsonFlag = False,
) -> None:
    """Stop APP calling SERVICE."""
    _run(ctx, lambda admin: admin.unsubscribe(app_name, service))
    _show(
        ctx,
        {"app": app_name, "service": service, "subscribed": False},
        lambda: f"{app_name} -/-> {service}",
    )


@app.command()
def subscriptions(ctx: typer.Context, service: str, json_output: JsonFlag = False) -> None:
    """The apps subscribed to SERVICE."""
    apps = _run(ctx, lambda admin: admin.subscriptions(admin.existing(service)))
    _show(ctx, apps, lambda: _table(f"{service} subscribers", ["app"], [[a] for a in apps]))


# -- rules --------------------------------------------------------------------------------


@rule_app.command("set")
def rule_set(
    ctx: typer.Context,
    service: str,
    kind: str,
    document: Annotated[str | None, typer.Option("--json", help="The rule as JSON.")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="A file holding the rule.")] = None,
    force: Annotated[
        bool, typer.Option(help="Write it even for a tenant, service or method not known.")
    ] = False,
) -> None:
    """Validate a rule as consumers will, then write it. Refused for a tenant or service
    with no descriptor and no provider, or naming a method none declares, unless --force.
    (Here --json is the rule: give --json before `rule` for machine output.)"""
    if (document is None) == (file is None):
        raise _fail("rule set: give exactly one of --json DOC or --file F", USAGE)
    if file is not None:
        data = _read(file, "rule set --file")
    else:
        data = (document or "").encode("utf-8", "surrogateescape")

    def write(admin: RegistryAdmin) -> tuple[Any, list[str]]:
        try:
            written = admin.set_rule(service, kind, data, force=force)
        except UnknownTarget as exc:
            raise UnknownTarget(f"{exc} (--force writes the rule anyway)") from None
        if kind != SetRule.KIND:
            return written, []
        return written, admin.unannounced_sets(service, SetRule.parse(data))

    written, unannounced = _run(ctx, write)
    _warn_unannounced(service, unannounced)
    _show(ctx, written, lambda: f"{service} {kind} rule set: {json.dumps(written)}")


@rule_app.command("get")
def rule_get(ctx: typer.Context, service: str, kind: str, json_output: JsonFlag = False) -> None:
    """Show one rule."""
    rule = _run(ctx, lambda admin: admin.get_rule(service, kind))
    _show(ctx, rule, lambda: json.dumps(rule, indent=2))


@rule_app.command("rm")
def rule_rm(ctx: typer.Context, service: str, kind: str, json_output: JsonFlag = False) -> None:
    """Remove one rule (its defaults apply again)."""
    _run(ctx, lambda admin: admin.remove_rule(service, kind))
    _show(ctx, {"removed": kind}, lambda: f"{service} {kind} rule removed")


@rule_app.command("history")
def rule_history(
    ctx: typer.Context, service: str, kind: str, json_output: JsonFlag = False
) -> None:
    """The kept versions of one rule, newest first (the last 20)."""
    entries = _run(ctx, lambda admin: admin.rule_history(service, kind))
    rows = [
        [str(entry.get("version")), _when(entry.get("at")), str(entry.get("note", "")),
         str(entry["rule"])]
        for entry in entries
    ]  # fmt: skip
    columns = ["version", "written", "how", "rule"]
    _show(ctx, entries, lambda: _table(f"{service} {kind} rule history", columns, rows))


@rule_app.command("rollback")
def rule_rollback(
    ctx: typer.Context, service: str, kind: str, version: int, json_output: JsonFlag = False
) -> None:
    """Write a kept version of a rule again, as its newest version."""
    written = _run(ctx, lambda admin: admin.rollback_rule(service, kind, version))
    shown = {"rolled_back_to": version, "version": written}
    _show(ctx, shown, lambda: f"{service} {kind} rule: version {version} again, as {written}")


def _when(at: object) -> str:
    if isinstance(at, int | float) and 0 <= at < 4_102_444_800:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))
    return "?"


@rule_app.command("ls")
def rule_ls(ctx: typer.Context, service: str, json_output: JsonFlag = False) -> None:
    """Every rule of SERVICE."""
    rules = _run(ctx, lambda admin: admin.rules(admin.existing(service)))
    rows = [[kind, json.dumps(doc)] for kind, doc in rules.items()]
    _show(ctx, rules, lambda: _table(f"{service} rules", ["kind", "rule"], rows))


# -- SET routing --------------------------------------------------------------------------


def _warn_unannounced(service: str, names: list[str]) -> None:
    """A SET may be deployed after the rule naming it: written, but said."""
    if names:
        typer.echo(
            f"csf-registry: warning: no provider of {_printable(service)} announces SET "
            f"{', '.join(names)} yet: calls routed there find no provider until one does",
            err=True,
        )


def _set_table(view: dict[str, Any]) -> RenderableType:
    rule = view["rule"]
    key = rule.get("key") or "the stub's set_key or hash_key"
    verify = "true" if rule["verify"] else "false"
    header = (
        f"{view['service']} set rule, version {view['version']}: key {key}, "
        f"{rule['buckets']} buckets, on_empty {rule['on_empty']}, verify {verify}"
    )
    rows = [
        [r["from"], r["to"], r["buckets"], r["set"], f"{r['share']:g}", r["providers"]]
        for r in view["ranges"]
    ]
    columns = ["from", "to", "buckets", "SET", "share %", "providers"]
    return Group(_printable(header), _table("", columns, rows))


ServiceArgument = Annotated[
    str, typer.Argument(metavar="SERVICE", help="Microservice code, e.g. XIESR.")
]


@set_app.command("show")
def set_show(ctx: typer.Context, service: ServiceArgument, json_output: JsonFlag = False) -> None:
    """The set rule of SERVICE: its key, buckets, policies, and which SET owns each range
    of buckets, with its share and the providers announcing it."""

    def view_of(admin: RegistryAdmin) -> dict[str, Any]:
        return admin.set_view(service, *admin.set_rule_of(service))

    view = _run(ctx, view_of)
    _show(ctx, view, lambda: _set_table(view))


@set_app.command("which")
def set_which(
    ctx: typer.Context,
    service: ServiceArgument,
    key: Annotated[str, typer.Argument(help="A call's key, e.g. a user id.")],
    json_output: JsonFlag = False,
) -> None:
    """The bucket and SET a call with KEY goes to, and where it goes if that SET has no
    usable provider."""
    if not key:
        raise _fail("set which: an empty key is no key: the call goes to the caller's SET", REFUSED)
    rule, version = _run(ctx, lambda admin: admin.set_rule_of(service))
    bucket, owner = rule.which(key)
    fallback = rule.fallback(owner)
    found = {
        "service": service,
        "key": key,
        "bucket": bucket,
        "buckets": rule.buckets,
        "set": str(owner),
        "on_empty": rule.on_empty,
        "fallback": None if fallback is None else str(fallback),
        "version": version,
    }
    otherwise = "the call fails" if fallback is None else f"SET {fallback}"
    _show(
        ctx,
        found,
        lambda: _printable(
            f"{service} key {key}: bucket {bucket} of {rule.buckets}, SET {owner} "
            f"(with no usable provider there: {otherwise})"
        ),
    )


@set_app.command("move")
def set_move(
    ctx: typer.Context,
    service: ServiceArgument,
    first: Annotated[int, typer.Argument(metavar="FROM", help="The first bucket moved.")],
    last: Annotated[int, typer.Argument(metavar="TO", help="The last bucket moved.")],
    set_name: Annotated[str, typer.Argument(metavar="SET", help="The SET they move to.")],
    json_output: JsonFlag = False,
) -> None:
    """Give buckets FROM..TO (inclusive) to SET: one new version of the rule, validated
    as consumers will read it, written once, and only if nobody changed the rule since
    it was read. Mind the keys' data: freeze their writes, move, wait, unfreeze."""
    try:
        target = SetName.parse("set move: SET", set_name)
    except ConfigError as exc:
        raise _fail(str(exc), REFUSED) from None

    def move(admin: RegistryAdmin) -> dict[str, Any]:
        return admin.set_view(service, *admin.move_buckets(service, first, last, target))

    view = _run(ctx, move)
    view["moved"] = {"from": first, "to": last, "set": str(target)}
    _warn_unannounced(service, view["unannounced"])
    done = f"buckets {first}..{last} now belong to {target}: rule version {view['version']}"
    _show(ctx, view, lambda: Group(_set_table(view), done))


# -- views --------------------------------------------------------------------------------


@app.command()
def ls(
    ctx: typer.Context,
    path: Annotated[
        str | None, typer.Argument(help="A znode path, absolute or from the tenant's node.")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """The children of PATH (default: the tenant's node; nothing outside it)."""

    def children_of(admin: RegistryAdmin) -> tuple[str, list[str]]:
        where = admin.node(path)
        return where, admin.ls(where)

    where, children = _run(ctx, children_of)
    _show(ctx, children, lambda: _table(where, ["child"], [[c] for c in children]))


def _provider_rows(providers: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [p["cluster"], p["group"], p["address"], p["weight"], p["version"], f"{p['uptime_s']:.0f}s"]
        for p in providers
    ]


PROVIDER_COLUMNS = ["cluster", "group", "provider", "weight", "version", "uptime"]


@app.command()
def providers(ctx: typer.Context, service: str, json_output: JsonFlag = False) -> None:
    """The provider instances of SERVICE."""
    found = _run(ctx, lambda admin: admin.providers(admin.existing(service)))
    _show(
        ctx, found, lambda: _table(f"{service} providers", PROVIDER_COLUMNS, _provider_rows(found))
    )


@app.command()
def tree(ctx: typer.Context, service: str, json_output: JsonFlag = False) -> None:
    """SERVICE at a glance: providers, gRPC services with status, rules, subscribers."""
    view = _run(ctx, lambda admin: admin.tree(admin.existing(service)))

    def render() -> Table:
        table = _table(
            f"{ctx.obj.tenant}/{service}", PROVIDER_COLUMNS, _provider_rows(view["providers"])
        )
        for name, status in view["services"].items():
            table.add_row("service", _printable(name), _printable(str(status)), "", "", "")
        for kind, rule in view["rules"].items():
            table.add_row("rule", _printable(kind), json.dumps(rule), "", "", "")
        for subscriber in view["subscriptions"]:
            table.add_row("subscriber", _printable(subscriber), "", "", "", "")
        return table

    _show(ctx, view, render)


@app.command()
def audit(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """List every node under the tenant whose ACL is not exactly the tenant's own: open to
    anyone, ip: entries, other identities, and nodes the credentials may not read (exit 4
    if any). Give the tenant's credentials with --digest-file or CSF_ZK_DIGEST."""
    found = _run(ctx, lambda admin: admin.audit())
    unreadable = "(unreadable with these credentials: nothing under it audited)"
    rows = [
        [node["path"], " ".join([*node["acl"], *([unreadable] if node["unreadable"] else [])])]
        for node in found
    ]
    title = f"{ctx.obj.tenant}: {len(found)} nodes whose ACL is not the tenant's own"
    _show(ctx, found, lambda: _table(title, ["znode", "acl"], rows))
    if found:
        raise typer.Exit(FOUND_OPEN)


@app.command()
def watch(ctx: typer.Context, service: str, json_output: JsonFlag = False) -> None:
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
