"""scripts/import_graph.py: no import circle and no arrow back up the pipeline; the checker finds both."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "import_graph.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("import_graph", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_package_has_no_import_circle_and_no_back_arrow() -> None:
    result = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no import circles, no back-arrows" in result.stdout


def test_checker_finds_circles_back_arrows_and_ignores_type_checking(tmp_path: Path) -> None:
    graph_tool = _load_script()
    _write(tmp_path, "seganypet_nnunet/__init__.py", "")
    _write(tmp_path, "seganypet_nnunet/a.py", "def f():\n    from seganypet_nnunet import b\n")  # function-level
    _write(tmp_path, "seganypet_nnunet/b.py", "from . import a\n")  # relative
    type_only = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import seganypet_nnunet.a\n"
    _write(tmp_path, "seganypet_nnunet/c.py", type_only)
    _write(tmp_path, "seganypet_nnunet/inference/__init__.py", "")
    _write(tmp_path, "seganypet_nnunet/inference/coordinates.py", "from seganypet_nnunet.planners import presets\n")
    _write(tmp_path, "planners/__init__.py", "")
    _write(tmp_path, "planners/presets.py", "X = 1\n")
    _write(tmp_path, "planners/planner.py", "from seganypet_nnunet.inference.coordinates import X\n")  # back-arrow
    for folder in ("dataset_conversion", "trainers"):
        _write(tmp_path, f"{folder}/__init__.py", "")

    graph = graph_tool.import_graph(graph_tool.source_modules(tmp_path))
    assert graph["seganypet_nnunet.c"] == set()  # TYPE_CHECKING imports do not count
    assert graph_tool.cycles(graph) == [["seganypet_nnunet.a", "seganypet_nnunet.b", "seganypet_nnunet.a"]]
    arrow = ("seganypet_nnunet.planners.planner", "seganypet_nnunet.inference.coordinates")
    assert graph_tool.back_arrows(graph) == [arrow]
    assert graph_tool.main(["--root", str(tmp_path)]) == 1
