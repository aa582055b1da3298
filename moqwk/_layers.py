"""The layer table: every module of moqwk in one layer, and imports only point down.

``docs/explanation/architecture.md`` ("The layers") explains the table; ``tests/test_layers.py``
enforces it over every module, function-local and ``TYPE_CHECKING`` imports included; and
``scripts/import_graph.py`` prints the package-level graph, its layers and any arrow running back
up or any circle. A module may import one in its own layer or in a layer below; a new module or
package must be placed here (the test fails for a module the table does not name).

Standard library only (``ast``, ``pathlib``): the script reads it without importing moqwk's
dependencies, and nothing in moqwk imports it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

#: The layers, bottom first. A module may import modules of its own layer and the layers below.
LAYERS: tuple[str, ...] = (
    "core", "edges", "features", "study", "config", "data", "engine", "run", "stages", "output",
    "api", "cli",
)

#: Module or package (its submodules included) -> layer. The longest matching prefix wins.
TABLE: Mapping[str, str] = {
    "moqwk.core": "core",
    "moqwk._version": "edges",
    "moqwk._layers": "edges",
    "moqwk.errors": "edges",
    "moqwk.base": "edges",  # atomic writes, artifacts, progress events, config-field declarations
    "moqwk.features": "features",
    "moqwk.study": "study",
    "moqwk.config": "config",
    "moqwk.data": "data",
    "moqwk.engine": "engine",
    "moqwk.run": "run",
    "moqwk.stages": "stages",
    "moqwk.model": "stages",
    "moqwk.reports": "output",
    "moqwk.console": "output",
    "moqwk": "api",  # the package itself: the public face (``moqwk.cv`` ... ``moqwk.predict``)
    "moqwk._api": "api",
    "moqwk.cli": "cli",
    "moqwk.__main__": "cli",
}

#: Layers that must not read some layer below them. The output renders what the stages made and
#: is handed it by its caller (``moqwk/_api/``, ``moqwk/cli/``): "views render; they do not run".
NOT_READ: Mapping[str, tuple[str, ...]] = {"output": ("stages",)}

#: The only modules at the top of the package; everything else sits in the package of its layer.
TOP_LEVEL: tuple[str, ...] = ("moqwk.errors", "moqwk._version", "moqwk._layers", "moqwk.__main__")

PACKAGE_ROOT = Path(__file__).resolve().parent


def layer_of(module: str) -> str | None:
    """The layer of ``module`` (``moqwk.x.y``) by the longest prefix in :data:`TABLE`; None when
    the table does not place it."""
    if module == "moqwk":  # the package itself; not a prefix, so a new module must be placed
        return TABLE["moqwk"]
    parts = module.split(".")
    for n in range(len(parts), 1, -1):
        layer = TABLE.get(".".join(parts[:n]))
        if layer is not None:
            return layer
    return None


def rank(layer: str) -> int:
    return LAYERS.index(layer)


def module_files(root: Path = PACKAGE_ROOT) -> dict[str, Path]:
    """Every module of the package under ``root``: dotted name -> file."""
    out: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = ("moqwk", *path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


@dataclass(frozen=True)
class Import:
    """One import of a moqwk module by another, with where it sits."""

    importer: str
    imported: str
    line: int
    local: bool  # inside a function
    type_only: bool  # under ``if TYPE_CHECKING:``


def _type_checking_test(node: ast.expr) -> bool:
    return (isinstance(node, ast.Name) and node.id in ("TYPE_CHECKING", "_TYPE_CHECKING")) or \
        (isinstance(node, ast.Attribute) and node.attr == "TYPE_CHECKING")


def imports_of(module: str, source: str, known: Iterable[str], *,
               is_package: bool = False) -> list[Import]:
    """The moqwk modules ``module`` imports, at any depth: module level, inside functions and
    under ``TYPE_CHECKING``. ``from pkg import name`` is an import of ``pkg.name`` when that is a
    module (one of ``known``), else of ``pkg``; relative imports are made absolute
    (``is_package``: ``module`` is a package's ``__init__``)."""
    known = set(known)
    package = module if is_package else module.rpartition(".")[0]
    found: list[Import] = []

    def add(name: str, node: ast.stmt, local: bool, type_only: bool) -> None:
        if name == "moqwk" or name.startswith("moqwk."):
            found.append(Import(module, name, node.lineno, local, type_only))

    def visit(node: ast.AST, local: bool, type_only: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node, local, type_only)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                add(sub if sub in known else target, node, local, type_only)
        for child in ast.iter_child_nodes(node):
            child_local = local or isinstance(
                node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            child_type = type_only or (isinstance(node, ast.If) and _type_checking_test(node.test)
                                       and child in node.body)
            visit(child, child_local, child_type)

    visit(ast.parse(source), False, False)
    return found


def all_imports(root: Path = PACKAGE_ROOT) -> list[Import]:
    """Every import of a moqwk module by a moqwk module (one per importer, imported and line)."""
    files = module_files(root)
    found = [imp for name, path in files.items()
             for imp in imports_of(name, path.read_text(encoding="utf-8"), files,
                                   is_package=path.name == "__init__.py")]
    return list({(i.importer, i.imported, i.line): i for i in found}.values())


def unplaced(modules: Iterable[str]) -> list[str]:
    """Modules :data:`TABLE` does not place."""
    return sorted(m for m in modules if layer_of(m) is None)


def upward(edges: Iterable[Import]) -> list[Import]:
    """Imports of a module in a higher layer than the importer's."""
    out = []
    for imp in edges:
        a, b = layer_of(imp.importer), layer_of(imp.imported)
        if a is not None and b is not None and rank(b) > rank(a):
            out.append(imp)
    return out


def not_read(edges: Iterable[Import]) -> list[Import]:
    """Imports :data:`NOT_READ` forbids although they point down."""
    return [imp for imp in edges
            if layer_of(imp.imported) in NOT_READ.get(layer_of(imp.importer) or "", ())]


def cycles(edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """The import circles: strongly connected components of more than one node (or a node
    importing itself), each sorted, in sorted order (Tarjan's algorithm, iterative)."""
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        component.append(top)
                        if top == node:
                            break
                    if len(component) > 1 or node in graph[node]:
                        out.append(sorted(component))
    return sorted(out)


def package_of(module: str) -> str:
    """The node of the package-level picture: a subpackage of moqwk (``moqwk.features``) or a
    loose top-level module (``moqwk.errors``)."""
    parts = module.split(".")
    return ".".join(parts[:2])
