"""Import graph of seganypet_nnunet: prints import circles and arrows that run back up the pipeline; exits 1 if any.

    python scripts/import_graph.py            # circles and back-arrows; exit 0 when there are none
    python scripts/import_graph.py --edges    # also every edge, "importer -> imported"
    python scripts/import_graph.py --root ../other_checkout

Reads the source with ``ast`` (nothing is imported): seganypet_nnunet/ plus the stage folders dataset_conversion/,
planners/ and trainers/, which install as seganypet_nnunet.dataset_conversion / .planners / .trainers. Every import
counts, also those inside functions (they run when the function does); imports under ``if TYPE_CHECKING:`` do not.
``from package import name`` is an arrow to the module ``package.name`` when there is one, else to the package.

Back-arrows: the pipeline stages run dataset_conversion -> planners -> trainers -> inference -> evaluation; a stage
may use the ones before it and the shared modules, never one after it. Circles and back-arrows make the exit status 1.
Shared modules (errors, io_utils, paths, model/, prompts/, synthetic/ ...) should import no stage and no command layer
(run/, demo, napari_plugin/); such arrows are listed as notes (exit status unchanged).
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "seganypet_nnunet"
STAGE_FOLDERS = ("dataset_conversion", "planners", "trainers")
PIPELINE = ("dataset_conversion", "planners", "trainers", "inference", "evaluation")
COMMAND_LAYER = ("run", "demo", "napari_plugin", "server")


def source_modules(root: Path = ROOT) -> dict[str, Path]:
    """``{module name: file}`` for the package and the stage folders, under their installed names."""
    modules = {}
    folders = [(root / PACKAGE, PACKAGE)] + [(root / f, f"{PACKAGE}.{f}") for f in STAGE_FOLDERS]
    for folder, prefix in folders:
        for file in sorted(folder.rglob("*.py")):
            parts = list(file.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([prefix, *parts])] = file
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement in the tree (functions included), skipping ``if TYPE_CHECKING:`` bodies."""
    found, stack = [], [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        children = list(ast.iter_child_nodes(node))
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            children = list(node.orelse)
        stack.extend(children)
    return found


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """``{importer: {imported, ...}}`` restricted to our own modules."""
    graph: dict[str, set[str]] = {name: set() for name in modules}

    def ours(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    for name, file in modules.items():
        tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
        for node in _imports(tree):
            if isinstance(node, ast.Import):
                targets = [ours(alias.name) for alias in node.names]
            else:
                base = _resolve(node, name, file.name == "__init__.py")
                targets = [ours(f"{base}.{alias.name}") if f"{base}.{alias.name}" in modules else ours(base)
                           for alias in node.names]  # fmt: skip
            graph[name].update(t for t in targets if t and t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Import circles: the shortest one through each module of each strongly connected group (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    circles: list[list[str]] = []
    for group in groups:
        seen: set[frozenset[tuple[str, str]]] = set()
        for member in group:  # the shortest circle through each member; the same circle is listed once
            circle = _shortest_circle(graph, set(group), member)
            edges = frozenset(zip(circle, circle[1:], strict=False))
            if edges not in seen:
                seen.add(edges)
                circles.append(circle)
    return sorted(circles)


def _shortest_circle(graph: dict[str, set[str]], group: set[str], start: str) -> list[str]:
    """The shortest circle from ``start`` back to itself inside its strongly connected group (breadth-first)."""
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & group):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start] if node != start else [start, start]
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    return [start]


def _stage(module: str) -> int | None:
    parts = module.split(".")
    return PIPELINE.index(parts[1]) if len(parts) > 1 and parts[1] in PIPELINE else None


def back_arrows(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Imports from a pipeline stage into a later one (e.g. planners -> inference)."""
    arrows = []
    for importer, imported in sorted(graph.items()):
        for target in sorted(imported):
            a, b = _stage(importer), _stage(target)
            if a is not None and b is not None and b > a:
                arrows.append((importer, target))
    return arrows


def shared_upward(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Imports from a shared module (neither a stage nor the command layer) into a stage or the command layer."""

    def part(module: str) -> str | None:
        parts = module.split(".")
        return parts[1] if len(parts) > 1 else None

    upper = set(PIPELINE) | set(COMMAND_LAYER)
    return [
        (importer, target)
        for importer, imported in sorted(graph.items())
        if part(importer) is not None and part(importer) not in upper
        for target in sorted(imported)
        if part(target) in upper
    ]


def _short(module: str) -> str:
    return module.removeprefix(f"{PACKAGE}.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edges", action="store_true", help="also print every edge")
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout to read. Default: this script's checkout")
    args = parser.parse_args(argv)
    graph = import_graph(source_modules(args.root))
    if args.edges:
        for importer, imported in sorted(graph.items()):
            for target in sorted(imported):
                print(f"{_short(importer)} -> {_short(target)}")
    found = cycles(graph)
    arrows = back_arrows(graph)
    edges = sum(len(v) for v in graph.values())
    print(f"{len(graph)} modules, {edges} import arrows (function-level imports included)")
    for circle in found:
        print("circle: " + " -> ".join(_short(m) for m in circle))
    for importer, target in arrows:
        print(f"back-arrow: {_short(importer)} -> {_short(target)} (pipeline order: {' -> '.join(PIPELINE)})")
    for importer, target in shared_upward(graph):
        print(f"note: shared module {_short(importer)} imports {_short(target)}")
    if not found and not arrows:
        print("no import circles, no back-arrows")
    return 1 if found or arrows else 0


if __name__ == "__main__":
    sys.exit(main())
