"""The consumer core's layering, read from the source: one contract module that imports
no filter, and no import cycle anywhere in csf/ (imports under TYPE_CHECKING count too)."""

import ast
from pathlib import Path

import csf

PACKAGE = Path(csf.__file__).parent
CONTRACT = "csf._invocation"
# What the contract module must never import: the filters, the chain table, the parts
# that implement its protocols.
ABOVE_THE_CONTRACT = (
    "csf._chain",
    "csf.channel",
    "csf.consumer",
    "csf.directory",
    "csf.router",
    "csf.rule_set",
    "csf.lb",
    "csf.resilience.circuit",
    "csf.resilience.concurrency",
    "csf.resilience.fallback",
    "csf.resilience.ratelimit",
    "csf.resilience.retry",
    "csf.observability.metrics",
    "csf.observability.tracing",
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Every csf module and the csf modules it imports, anywhere in its source."""
    paths = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([node.module] if node.module else [])])
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    imported.add(full if full in paths else base)
        graph[name] = {module for module in imported if module in paths and module != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = [stack.pop()]
            while group[-1] != node:
                group.append(stack.pop())
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_of_csf_is_part_of_an_import_cycle() -> None:
    assert cycles(import_graph()) == []


def test_the_contract_module_imports_no_filter_and_nothing_built_on_it() -> None:
    imported = import_graph()[CONTRACT]
    above = sorted(m for m in imported if m.startswith(ABOVE_THE_CONTRACT))
    assert above == [], f"{CONTRACT} must not import {above}"


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


WEB_LIBRARIES = ("starlette", "uvicorn", "httpx", "jinja2", "google.api")
ON_TOP = ("csf.gateway", "csf.console")


def _third_party_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module)
    return found


def test_the_rpc_library_imports_neither_the_gateway_nor_web_libraries() -> None:
    """`pip install csf` stays a small RPC library: only csf/gateway (and csf/console)
    use the web stack, and nothing else in csf/ imports them."""
    graph = import_graph()
    below = {name for name in graph if not name.startswith(ON_TOP)}
    assert sorted(n for n in below if any(m.startswith(ON_TOP) for m in graph[n])) == []
    for path in PACKAGE.rglob("*.py"):
        if _module_name(path).startswith(ON_TOP):
            continue
        web = sorted(m for m in _third_party_imports(path) if m.startswith(WEB_LIBRARIES))
        assert web == [], f"{path} imports {web}"
