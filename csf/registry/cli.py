"""csf-registry: the operators' command line for CSF's ZooKeeper registry."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="csf-registry",
    help="Operate CSF's registry: service descriptors, lifecycle, subscriptions and rules.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def registry_options(
    zk: str = typer.Option(
        "zk://127.0.0.1:2181", envvar="CSF_ZK", help="ZooKeeper registry URL (zk://host:port,...)."
    ),
    tenant: str = typer.Option("TenantA", envvar="CSF_TENANT", help="Tenant to operate on."),
) -> None:
    """Options shared by every command."""


def main() -> None:
    app(prog_name="csf-registry")


if __name__ == "__main__":
    main()
