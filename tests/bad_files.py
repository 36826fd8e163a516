"""Makers of bad input files (real files on disk, no mocks), shared by the bad-input tests and bench/bad_inputs.py.

Every maker writes ``dst`` (a path ending in ``.nii.gz`` unless said otherwise) from a good image ``src``.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch


def _write(array: np.ndarray, like: sitk.Image, dst: Path) -> Path:
    img = sitk.GetImageFromArray(array)
    img.CopyInformation(like)
    sitk.WriteImage(img, str(dst))
    return dst


def truncated(src: Path, dst: Path) -> Path:
    """The first half of the bytes of ``src`` (SimpleITK reads a truncated .nii.gz zero-filled)."""
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: len(data) // 2])
    return dst


def zero_bytes(dst: Path) -> Path:
    Path(dst).write_bytes(b"")
    return dst


def garbage(dst: Path) -> Path:
    Path(dst).write_bytes(b"this is not an image\n" * 10)
    return dst


def with_nan(src: Path, dst: Path) -> Path:
    img = sitk.ReadImage(str(src))
    arr = sitk.GetArrayFromImage(img).astype(np.float32)
    arr[arr.shape[0] // 2, arr.shape[1] // 2, arr.shape[2] // 2] = np.nan
    arr[0, 0, 0] = np.inf
    return _write(arr, img, dst)


def all_zero(src: Path, dst: Path) -> Path:
    img = sitk.ReadImage(str(src))
    return _write(np.zeros_like(sitk.GetArrayFromImage(img), dtype=np.float32), img, dst)


def image_2d(dst: Path) -> Path:
    sitk.WriteImage(sitk.GetImageFromArray(np.ones((16, 16), np.float32)), str(dst))
    return dst


def image_4d(src: Path, dst: Path) -> Path:
    img = sitk.Cast(sitk.ReadImage(str(src)), sitk.sitkFloat32)
    sitk.WriteImage(sitk.JoinSeries([img, img]), str(dst))
    return dst


def label_with_value(src: Path, dst: Path, value: float) -> Path:
    """A label map holding ``value`` in a few voxels (42: not in dataset.json; 0.5: not an integer)."""
    img = sitk.ReadImage(str(src))
    arr = sitk.GetArrayFromImage(img).astype(np.float32 if value != int(value) else np.int16)
    arr[1:3, 1:3, 1:3] = value
    return _write(arr, img, dst)


def shifted(src: Path, dst: Path, mm: float = 7.0) -> Path:
    """Same voxels and shape, origin moved by ``mm`` (another grid in physical space)."""
    img = sitk.ReadImage(str(src))
    img.SetOrigin(tuple(o + mm for o in img.GetOrigin()))
    sitk.WriteImage(img, str(dst))
    return dst


class _RunsCode:
    """Pickles to 'open(marker, "w")': loading the checkpoint with the full unpickler creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def malicious_checkpoint(dst: Path, marker: Path, like: Path | None = None) -> Path:
    """A checkpoint whose pickle runs code (creates ``marker``); with ``like`` it otherwise holds that checkpoint."""
    checkpoint = {"network_weights": {}, "init_args": {"configuration": "3d_fullres"}}
    if like is not None:
        from seganypet_nnunet.checkpoint_io import load_checkpoint

        checkpoint = load_checkpoint(like)  # our own, safe file
    checkpoint["payload"] = _RunsCode(marker)
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, dst)
    return dst


def malicious_plain_pickle(dst: Path, marker: Path) -> Path:
    """A bare pickle (not torch's zip format) that runs code when unpickled."""
    with open(dst, "wb") as f:
        pickle.dump({"network_weights": _RunsCode(marker)}, f)
    return dst


def snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    """{path: (size, mtime_ns)} of every file and folder under ``roots`` (hidden ones included)."""
    out = {}
    for root in roots:
        root = Path(root)
        if not root.exists():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                p = Path(dirpath) / name
                st = p.lstat()
                out[str(p)] = (st.st_size if p.is_file() else -1, st.st_mtime_ns if p.is_file() else 0)
        out[str(root)] = (-1, 0)
    return out


def run_entry(entry, argv: list[str], capsys) -> tuple[int, str]:
    """Run a console entry in-process with ``argv``; return (exit status, stderr). It must exit (SystemExit)."""
    import pytest

    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        entry([str(a) for a in argv])
    return exit_info.value.code, capsys.readouterr().err


def assert_one_line_error(code: int, err: str, command: str, expect: str) -> str:
    """Exit status 1, no traceback, last stderr line ``<command>: error: ...`` containing ``expect``; returns it."""
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert "Traceback" not in err, err[-3000:]
    assert code == 1, (code, err[-2000:])
    assert lines and lines[-1].startswith(f"{command}: error: "), err[-2000:]
    assert expect in lines[-1], (expect, lines[-1])
    return lines[-1]
