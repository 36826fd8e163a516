"""The bench's workspace (tiny synthetic dataset, untrained model folders, malicious checkpoints) and its ``Case``."""

# ruff: noqa: E501  (the case tables read best one input per line)
from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
import bad_files as bf  # noqa: E402


def _console_scripts() -> dict[str, str]:
    """``{script: "module:function"}`` of setup.py's CONSOLE_SCRIPTS (every command the package installs)."""
    import ast

    tree = ast.parse((Path(__file__).resolve().parents[2] / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "CONSOLE_SCRIPTS" for t in node.targets):
            return dict(tuple(x.strip() for x in e.split("=", 1)) for e in ast.literal_eval(node.value))
    raise RuntimeError("setup.py has no CONSOLE_SCRIPTS")


SCRIPTS = _console_scripts()
SESSION = "session_api"  # the SegAnyPETSession API (cases with ``code``)
DS, NAME, PLANS = 901, "Syn", "SegAnyPETPlansTiny"


@dataclass
class Case:
    command: str
    name: str
    args: Callable[[Path], list[str]]
    expect: str  # substring the error line must contain (file or field)
    setup: Callable[[Path], None] | None = None
    env: dict = field(default_factory=dict)  # values may use {case}
    own_env: bool = False  # nnUNet_raw/preprocessed under the case folder (plan, converters)
    mount: tuple[str, str] | None = None  # ("full" | "ro", folder under the case): a tmpfs in the child's namespace
    code: str | None = None  # session API: python code run in a fresh process instead of a console script


class WS:
    root: Path
    raw: Path
    model: Path
    evil: Path
    marker: Path


ws = WS()


def _ds() -> Path:
    return ws.raw / f"Dataset{DS:03d}_{NAME}"


def _test_images() -> list[Path]:
    return sorted((_ds() / "imagesTs").glob("*_0000.nii.gz"))


def _inputs(c: Path, bad: Callable[[Path], None] | None = None) -> None:
    (c / "in").mkdir(parents=True, exist_ok=True)
    for f in _test_images():
        shutil.copy(f, c / "in" / f.name)
    if bad is not None:
        bad(c / "in")


def build_workspace(root: Path) -> dict:
    from seganypet_nnunet.inference.model_folder import plan_and_write_untrained
    from seganypet_nnunet.planners import SegAnyPETPlannerTiny
    from seganypet_nnunet.synthetic import SyntheticConfig, make_dataset

    ws.root, ws.raw = root, root / "raw"
    env = {"nnUNet_raw": str(root / "raw"), "nnUNet_preprocessed": str(root / "pre"),
           "nnUNet_results": str(root / "res"), "nnUNet_def_n_proc": "1", "nnUNet_n_proc_DA": "1"}  # fmt: skip
    os.environ.update(env)
    for k in ("raw", "pre", "res"):
        (root / k).mkdir(parents=True, exist_ok=True)
    make_dataset(DS, NAME, 4, 2, SyntheticConfig(size="small", max_lesions=2), seed=0, raw_root=ws.raw)
    results = root / "res" / _ds().name
    ws.model = plan_and_write_untrained(
        DS, SegAnyPETPlannerTiny, "3d_fullres", results / f"SegAnyPETTrainer__{PLANS}__3d_fullres"
    )
    ws.evil = results / f"Evil__{PLANS}__3d_fullres"
    shutil.copytree(ws.model, ws.evil)
    ws.marker = root / "CODE_RAN"
    bf.malicious_checkpoint(
        ws.evil / "fold_0" / "checkpoint_final.pth", ws.marker, like=ws.model / "fold_0" / "checkpoint_final.pth"
    )
    bf.malicious_checkpoint(
        results / f"nnUNetTrainer__{PLANS}__3d_fullres" / "fold_0" / "checkpoint_latest.pth", ws.marker
    )
    return env
