"""Atomic file writing: every output is written under a temporary name, then renamed onto its final name.

A crash or a bad input therefore never leaves a half-written NIfTI or JSON behind. Temporary files live in a hidden
sub-folder ``.seganypet_tmp`` of the target's folder (nnU-Net lists files, not sub-folders, so a file left there by
``kill -9`` is never counted as a case), carry the writer's process id, and are removed by the next writer once that
process is gone. Temporary folders (``atomic_folder``, staging) are hidden siblings named ``.<name>.seganypet-<pid>.*``
and are cleaned the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

TMP_DIR = ".seganypet_tmp"
_PID_TAG = "seganypet-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner_pid(name: str) -> int | None:
    """The process id in a name made by ``temp_prefix`` (``...seganypet-<pid>.<random>...``), or None."""
    _, tag, rest = name.partition(_PID_TAG)
    digits = rest.split(".", 1)[0]
    return int(digits) if tag and digits.isdigit() else None


def temp_prefix(name: str) -> str:
    """Prefix of a hidden temporary entry for ``name`` owned by this process: ``.<name>.seganypet-<pid>.``."""
    return f".{name}.{_PID_TAG}{os.getpid()}."


def remove_stale(folder: str | os.PathLike, temp_dir_only: bool = False) -> list[Path]:
    """Delete hidden temporary entries in ``folder`` (and its ``.seganypet_tmp``) whose writer process is gone.

    ``temp_dir_only`` scans only ``.seganypet_tmp`` (cheap: every atomic write does it, however large ``folder`` is).
    """
    removed = []
    folder = Path(folder)
    for parent in (folder / TMP_DIR,) if temp_dir_only else (folder, folder / TMP_DIR):
        if not parent.is_dir():
            continue
        for entry in parent.iterdir():
            pid = _owner_pid(entry.name) if entry.name.startswith(".") else None
            if pid is None or pid == os.getpid() or _pid_alive(pid):
                continue
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path for ``target`` (in ``.seganypet_tmp`` beside it); rename it onto ``target`` on success.

    The temporary name keeps the full suffix (``.nii.gz``), so writers choose the right format.
    """
    target = Path(target)
    tmp_dir = target.parent / TMP_DIR
    tmp_dir.mkdir(parents=True, exist_ok=True)
    remove_stale(target.parent, temp_dir_only=True)
    suffix = "".join(target.suffixes) or ".tmp"
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(target.name.split(".")[0]), suffix=suffix, dir=tmp_dir)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
        with contextlib.suppress(OSError):
            tmp_dir.rmdir()  # only when empty (another writer may still use it)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_image(image: sitk.Image, target: str | os.PathLike, compress: bool = True) -> Path:
    """Write a SimpleITK image atomically (geometry included) and return the final path."""
    with atomic_path(target) as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=compress)
    return Path(target)


def plain(value: Any) -> Any:
    """``value`` with numpy scalars/arrays turned into Python numbers/lists, recursively (tensors and plain types kept),
    so a checkpoint holding it loads with ``torch.load(weights_only=True)`` and JSON can encode it."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def write_json(obj, target: str | os.PathLike, indent: int = 2) -> Path:
    """Write JSON atomically and return the final path."""
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(obj, indent=indent, sort_keys=False) + "\n")
    return Path(target)


def read_json_object(path: str | os.PathLike) -> dict:
    """A JSON file holding an object (a model folder's plans.json / dataset.json); one line naming it otherwise.

    Raises:
        InputNotFoundError: the file is missing.
        SeganypetError: unreadable JSON, or not a JSON object.
    """
    from seganypet_nnunet.errors import InputNotFoundError, SeganypetError

    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"{path}: missing (not an nnU-Net model folder?)")
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SeganypetError(f"{path}: unreadable JSON ({err})") from None
    if not isinstance(doc, dict):
        raise SeganypetError(f"{path}: must hold a JSON object")
    return doc


def copy_file(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Copy a file atomically (the source is never modified) and return the final path."""
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)
    return Path(target)


@contextlib.contextmanager
def atomic_folder(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder next to ``target``; it replaces ``target`` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(target.parent)
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(target.name), dir=target.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp creates 0700
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
