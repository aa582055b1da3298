#!/usr/bin/env python3
"""Print moqwk's package-level import graph, its layers, and any arrow running back up or circle.

    scripts/import_graph.py            the layers, the edges between packages, then the problems
    scripts/import_graph.py --mermaid  the layers as a mermaid flowchart: a box per layer, an
                                       arrow where a layer imports another

A node is a subpackage of moqwk (``moqwk.features``) or a loose top-level module (``moqwk.errors``).
Every import counts: module level, inside functions and under ``TYPE_CHECKING``. The layer
table is ``moqwk/_layers.py``; ``tests/test_layers.py`` fails on what this prints as a problem.
The summary line counts the upward module imports, the upward package edges, the imports the
table forbids although they point down (the output reading a stage), and the circles among
packages and among modules. Exit status 1 when there is an upward edge or a circle.

Standard library only: it reads ``moqwk/_layers.py`` by path and imports nothing of moqwk's.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_layers():
    spec = importlib.util.spec_from_file_location("_moqwk_layers", ROOT / "moqwk" / "_layers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses looks the module up while building the class
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mermaid", action="store_true", help="print a mermaid flowchart")
    args = parser.parse_args(argv)
    L = load_layers()
    files = L.module_files(ROOT / "moqwk")
    imports = L.all_imports(ROOT / "moqwk")
    pkg_edges: dict[tuple[str, str], int] = defaultdict(int)
    for imp in imports:
        a, b = L.package_of(imp.importer), L.package_of(imp.imported)
        if a != b:
            pkg_edges[(a, b)] += 1
    nodes = sorted({L.package_of(m) for m in files})
    up = L.upward(imports)
    skip = L.not_read(imports)
    up_pkg = sorted({(L.package_of(i.importer), L.package_of(i.imported)) for i in up})
    pkg_cycles = L.cycles(pkg_edges)
    mod_cycles = L.cycles((i.importer, i.imported) for i in imports if i.importer != i.imported)
    missing = L.unplaced(files)

    def short(name: str) -> str:
        return name.removeprefix("moqwk.") if name != "moqwk" else "moqwk (package)"

    def layer(name: str) -> str:
        return L.layer_of(name) or "?"

    if args.mermaid:  # one box per layer (its packages), one arrow per pair of layers
        print("flowchart BT")
        layer_edges = sorted({(layer(a), layer(b)) for a, b in pkg_edges if layer(a) != layer(b)},
                             key=lambda e: (L.rank(e[0]), L.rank(e[1])))
        for lay in L.LAYERS:
            members = ", ".join(short(n) for n in nodes if L.layer_of(n) == lay)
            print(f'  {lay}["{L.rank(lay)} {lay}: {members}"]')
        for a, b in layer_edges:
            arrow = "-. UP .->" if L.rank(b) > L.rank(a) else "-->"
            print(f"  {a} {arrow} {b}")
    else:
        print("layers, bottom first:")
        for lay in L.LAYERS:
            members = [short(n) for n in nodes if L.layer_of(n) == lay]
            print(f"  {L.rank(lay):2d} {lay:9s} {', '.join(members)}")
        print("\npackage edges (importer [layer] -> imported [layer], module imports):")
        for (a, b), n in sorted(pkg_edges.items()):
            mark = "  UP" if (a, b) in up_pkg else ""
            print(f"  {short(a)} [{layer(a)}] -> {short(b)} [{layer(b)}]  {n}{mark}")
    out = sys.stdout if not args.mermaid else sys.stderr
    for imp in up:
        kind = "type-only " if imp.type_only else "function-local " if imp.local else ""
        print(f"UP: {imp.importer} [{layer(imp.importer)}] imports {imp.imported} "
              f"[{layer(imp.imported)}] ({kind}line {imp.line})", file=out)
    for imp in skip:
        print(f"NOT READ: {imp.importer} [{layer(imp.importer)}] imports {imp.imported} "
              f"[{layer(imp.imported)}] (line {imp.line}): the output renders, it runs no stage",
              file=out)
    for c in pkg_cycles:
        print("PACKAGE CIRCLE: " + " <-> ".join(short(n) for n in c), file=out)
    for c in mod_cycles:
        print("MODULE CIRCLE: " + " <-> ".join(short(n) for n in c), file=out)
    for m in missing:
        print(f"NOT IN THE LAYER TABLE: {m}", file=out)
    print(f"\nsummary: {len(up)} upward module imports, {len(up_pkg)} upward package edges, "
          f"{len(skip)} output imports of a stage, {len(pkg_cycles)} package circles, "
          f"{len(mod_cycles)} module circles, {len(missing)} unplaced modules", file=out)
    return 1 if up or skip or pkg_cycles or mod_cycles or missing else 0


if __name__ == "__main__":
    sys.exit(main())
