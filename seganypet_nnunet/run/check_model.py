"""``seganypet_check_model FOLDER``: can stock nnU-Net tools load a downloaded model folder without running code?

Stock nnU-Net (``nnUNetv2_predict``, ``nnUNetPredictor.initialize_from_trained_model_folder``, its trainer's
``load_checkpoint``) reads checkpoints with ``torch.load(weights_only=False)``: the full unpickler, which runs any
code a pickle holds. This command reads every ``*.pth`` under FOLDER with our safe loader (``checkpoint_io``:
``weights_only`` with an allowlist of harmless globals; nothing in the file runs) and reports, per file, whether it
holds only tensors, plain types and those harmless globals (then stock tools load it without running foreign code) or
names the globals it would need. Exit status 1 when any file would need pickled code or cannot be read.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from seganypet_nnunet.checkpoint_io import CheckpointError, load_checkpoint, unsafe_globals
from seganypet_nnunet.errors import InputNotFoundError, SeganypetError, cli_entry


@dataclass(frozen=True)
class FileVerdict:
    """One checkpoint: ``status`` is ``"safe"``, ``"code"`` (needs pickled globals, named in ``detail``) or
    ``"unreadable"``."""

    path: Path
    status: str
    detail: str


def check_file(path: Path) -> FileVerdict:
    """The verdict for one checkpoint file (module docstring); nothing in the file runs."""
    names = unsafe_globals(path)
    if names:
        return FileVerdict(path, "code", f"pickled globals {', '.join(names)}")
    try:
        load_checkpoint(path)
    except CheckpointError as err:
        text = str(err).removeprefix(f"{path}: ")
        return FileVerdict(path, "code" if "refused to load" in text else "unreadable", text)
    return FileVerdict(path, "safe", "tensors, plain types and harmless globals only")


def check_model(folder: str | Path) -> list[FileVerdict]:
    """Verdicts for every ``*.pth`` under ``folder`` (sorted by path).

    Raises:
        InputNotFoundError: the folder does not exist.
        SeganypetError: ``folder`` is not a folder, or holds no ``*.pth`` file.
    """
    folder = Path(folder)
    if not folder.exists():
        raise InputNotFoundError(f"{folder}: model folder not found")
    if not folder.is_dir():
        raise SeganypetError(f"{folder}: not a folder (give the model folder that holds fold_*/checkpoint_*.pth)")
    files = sorted(p for p in folder.rglob("*.pth") if p.is_file())
    if not files:
        raise SeganypetError(f"{folder}: no checkpoint (*.pth) files in this folder")
    return [check_file(p) for p in files]


@cli_entry("seganypet_check_model")
def check_model_entry(argv: list[str] | None = None) -> None:
    """Console script ``seganypet_check_model``."""
    p = argparse.ArgumentParser(
        description="Check a downloaded model folder: can stock nnU-Net tools (whose loader runs pickles) load its "
        "checkpoints without running code? Nothing in the files runs here."
    )
    p.add_argument("folder", help="[REQUIRED] model folder (Trainer__Plans__configuration)")
    p.add_argument("--verbose", action="store_true", help="[OPTIONAL] tracebacks for errors")
    a = p.parse_args(argv)
    folder = Path(a.folder)
    verdicts = check_model(folder)
    for v in verdicts:
        tag = {"safe": "OK  ", "code": "CODE", "unreadable": "BAD "}[v.status]
        print(f"{tag} {v.path.relative_to(folder)}: {v.detail}")
    bad = [v for v in verdicts if v.status != "safe"]
    if bad:
        raise SeganypetError(
            f"{folder}: {len(bad)} of {len(verdicts)} checkpoint(s) would run pickled code or cannot be read; do not "
            "load this folder with stock nnU-Net tools (their loader uses weights_only=False)"
        )
    print(f"{folder}: all {len(verdicts)} checkpoint(s) load without running code (stock nnU-Net tools included)")


if __name__ == "__main__":
    check_model_entry()
