"""The layering rules of ``ecr_helper``, read from the source with ``ast``.

Every import counts, at module level or inside a function, except those under
``if TYPE_CHECKING:`` (annotations only, never executed). The rules: no import
cycle; ``config`` does not import the cache; no front door (the Docker verbs,
the kubelet mode, the CLI's commands, the daemon) imports another; no module
passes 400 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ecr_helper"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The ``ecr_helper`` modules ``path`` imports at run time."""
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                # `from pkg import mod` imports a module when mod is one.
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in known else node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {name for name in found if name in known}


def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    known = set(files)
    return {name: imports_of(path, known) - {name} for name, path in files.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the list of modules around it, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := walk(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := walk(node)):
            return cycle
    return None


def test_the_checker_sees_function_level_imports_and_cycles(tmp_path: Path) -> None:
    # A checker that cannot fail proves nothing: show it finding both.
    mod = tmp_path / "m.py"
    mod.write_text(
        "TYPE_CHECKING = False\nif TYPE_CHECKING:\n    import a.hidden\n"
        "def f():\n    from a import b\n"
    )
    assert imports_of(mod, {"a", "a.b", "a.hidden"}) == {"a.b"}
    assert find_cycle({"x": {"y"}, "y": {"z"}, "z": {"x"}}) == ["x", "y", "z", "x"]
    assert find_cycle({"x": {"y"}, "y": set()}) is None


def test_no_import_cycle() -> None:
    assert find_cycle(graph()) is None


def test_config_does_not_import_the_cache() -> None:
    reached = graph()["ecr_helper.config"]
    assert not {m for m in reached if m.startswith("ecr_helper.cache")}


FRONT_DOORS = (
    "ecr_helper.frontends.docker",
    "ecr_helper.frontends.kubelet",
    "ecr_helper.daemon.loop",
    "ecr_helper.cli.login_cmd",
)


@pytest.mark.parametrize("door", FRONT_DOORS)
def test_front_doors_do_not_import_each_other(door: str) -> None:
    edges = graph()
    others = set(FRONT_DOORS) - {door}
    assert not edges[door] & others
    assert "ecr_helper.service" in edges[door]


def test_no_module_passes_400_lines() -> None:
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert not long
