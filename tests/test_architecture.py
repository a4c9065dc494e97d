"""The layers of docs/architecture.md, checked on the source.

Every import statement under ``portal/`` (function-level ones included) is read
with :mod:`ast`, so a late import inside a function cannot slip past.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PORTAL = ROOT / "portal"
BLUEPRINTS = ("portal.admin", "portal.contact", "portal.exports")
#: The application factory is the one place that registers the blueprints.
FACTORY = "portal"
PURE_CORE = "portal.core"
FRAMEWORKS = ("flask", "flask_", "sqlalchemy", "werkzeug", "jinja2", "alembic")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """The absolute names of every module ``path`` imports."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        found.update(imported_names(node, package))
    return found


def imported_names(node: ast.AST, package: str) -> set[str]:
    """The absolute names an import statement in ``package`` names (none otherwise)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    if not isinstance(node, ast.ImportFrom):
        return set()
    if node.level:
        base = package.split(".")
        base = base[: len(base) - (node.level - 1)]
        module = ".".join(base + ([node.module] if node.module else []))
    else:
        module = node.module or ""
    return {module} | {f"{module}.{alias.name}" for alias in node.names}


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


MODULES = {module_name(p): imports_of(p) for p in sorted(PORTAL.rglob("*.py"))}


def test_the_walk_sees_the_whole_package() -> None:
    assert len(MODULES) > 40
    assert "portal.core.money" in MODULES
    assert "portal.admin.review" in MODULES


@pytest.mark.parametrize(
    "module",
    [m for m in MODULES if m != FACTORY and not any(within(m, b) for b in BLUEPRINTS)],
)
def test_nothing_below_a_blueprint_imports_one(module: str) -> None:
    bad = sorted(
        name for name in MODULES[module] if any(within(name, b) for b in BLUEPRINTS)
    )
    assert not bad, f"{module} imports a blueprint: {bad}"


@pytest.mark.parametrize("module", [m for m in MODULES if within(m, PURE_CORE)])
def test_the_core_is_pure(module: str) -> None:
    bad = sorted(
        name
        for name in MODULES[module]
        if name.split(".")[0].startswith(FRAMEWORKS)
        or (within(name, "portal") and not within(name, PURE_CORE))
    )
    assert not bad, f"{module} imports outside the pure core: {bad}"


@pytest.mark.parametrize("blueprint", BLUEPRINTS)
def test_blueprints_do_not_import_each_other(blueprint: str) -> None:
    others = [b for b in BLUEPRINTS if b != blueprint]
    bad = sorted(
        f"{module} -> {name}"
        for module, names in MODULES.items()
        if within(module, blueprint)
        for name in names
        if any(within(name, o) for o in others)
    )
    assert not bad, bad


def top_level_imports_of(path: Path) -> set[str]:
    """The portal modules ``path`` imports when it is loaded (module level only).

    Imports inside functions and under ``if TYPE_CHECKING:`` run later or never,
    so they cannot take part in an import cycle. Importing ``a.b.c`` loads
    ``a`` and ``a.b`` first, so those count too.
    """
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If):
                test = ast.unparse(node.test)
                if "TYPE_CHECKING" not in test:
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)
            else:
                found.update(imported_names(node, package))

    visit(ast.parse(path.read_text(), str(path)).body)
    loaded: set[str] = set()
    for target in found:
        parts = target.split(".")
        loaded.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return {m for m in loaded if m in MODULES and m != name}


GRAPH = {module_name(p): top_level_imports_of(p) for p in sorted(PORTAL.rglob("*.py"))}


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                out.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(graph) == [{"a", "b", "c"}]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []


CHECK_EACH_FIRST = """
import importlib, sys
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "portal" or m.startswith("portal.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed.append(f"{name}: {type(exc).__name__}: {exc}")
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_every_module_imports_first() -> None:
    """An import cycle shows up when its module is the first one imported.

    Only a module on a cycle of module-level imports can fail that way, so
    those (found statically) are imported first, each in a clean
    ``sys.modules``, in one interpreter (the third-party libraries load once).
    A package and the modules it re-exports form such cycles by design; the
    check proves that they load in either order.
    """
    suspects = sorted(set().union(*strongly_connected(GRAPH)))
    if not suspects:
        return
    result = subprocess.run(
        [sys.executable, "-c", CHECK_EACH_FIRST, *suspects],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
