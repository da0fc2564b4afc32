"""The package's structure, as docs/ARCHITECTURE.md draws it: imports run one way, from the CLI
down to the leaves, with no cycle, counting imports inside functions; and every import left
inside a function says why, in a comment. The layers are read from the document's table, so
the document and the code cannot drift apart."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from .conftest import PROJECT

SRC = PROJECT / "src"


def modules() -> dict[str, Path]:
    found = {}
    for path in (SRC / "retrainlab").rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> list[tuple[str, ast.stmt, bool]]:
    """(module imported, the statement, whether it is inside a function) for each import of a
    retrainlab module; `from package import module` counts as importing the module."""
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    for node in tree.body:  # `if TYPE_CHECKING:` blocks are for type hints: never run
        if isinstance(node, ast.If):
            top |= {id(inner) for inner in ast.walk(node)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        for target in targets:
            if target in known and target != name:
                found.append((target, node, id(node) not in top))
    return found


def layers() -> dict[str, int]:
    """docs/ARCHITECTURE.md's table of layers: package (or module) -> its layer."""
    text = (PROJECT / "docs" / "ARCHITECTURE.md").read_text()
    table = {}
    for layer, names in re.findall(r"^\| (\d+) \| ([^|]+) \|", text, re.M):
        for name in re.findall(r"`([\w.]+)`", names):
            table[name] = int(layer)
    return table


def layer_of(module: str, table: dict[str, int]) -> int:
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in table:
            return table[".".join(parts[:end])]
    raise AssertionError(f"{module}: no layer in docs/ARCHITECTURE.md")


def test_no_module_imports_one_that_imports_it_back():
    known = modules()
    graph = {name: {target for target, _, _ in imports(name, path, known)} for name, path in known.items()}
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert cycles == []


def test_imports_run_down_the_layers_of_docs_architecture():
    known, table = modules(), layers()
    assert {"retrainlab.base", "retrainlab.cli"} <= set(table)
    upward = []
    for name, path in known.items():
        for target, node, _ in imports(name, path, known):
            if layer_of(target, table) > layer_of(name, table):
                upward.append(f"{path.relative_to(PROJECT)}:{node.lineno}: {name} imports {target}")
    assert upward == []


def test_every_import_inside_a_function_says_why():
    known = modules()
    silent = []
    for name, path in known.items():
        tree = ast.parse(path.read_text())
        lines = path.read_text().splitlines()
        top = {id(node) for node in tree.body}
        for node in tree.body:
            if isinstance(node, ast.If):
                top |= {id(inner) for inner in ast.walk(node)}
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)) or id(node) in top:
                continue
            if "#" in lines[node.lineno - 1]:
                continue
            above = node.lineno - 2
            while above >= 0 and (not lines[above].strip() or lines[above].strip().startswith(("import ", "from "))):
                above -= 1
            if above < 0 or not lines[above].strip().startswith("#"):
                silent.append(f"{path.relative_to(PROJECT)}:{node.lineno}")
    assert silent == []
