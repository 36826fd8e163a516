"""The one place where this package reads a PyTorch checkpoint file.

Every loader (model folders, ``-pretrained_weights``, ``--c``, imported foundation weights) goes through
``load_checkpoint``, which uses torch's ``weights_only`` unpickler: tensors, plain Python types and the short list of
harmless globals a SAM-Med3D / SegAnyPET training checkpoint holds (``SAFE_GLOBAL_NAMES``: ``argparse.Namespace`` for
``args``, numpy scalars and dtypes for the logged losses under numpy 1.x and 2.x module paths). Any other global is
refused with one line naming every such global in the file, unless the caller opts in for a file it trusts
(``trusted=True``, the CLIs' ``--trust_checkpoint``). The allowlist is scoped to each call
(``torch.serialization.safe_globals``); nothing is added to torch's process-wide list.

numpy's scalar and dtype constructors are allowed through wrappers that refuse object dtypes (a numpy object scalar
rebuilt from raw bytes would be a pointer, not a number).
"""

from __future__ import annotations

import argparse
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seganypet_nnunet.errors import SeganypetError


class CheckpointError(SeganypetError):
    """A checkpoint file that cannot be used: missing, truncated, not a checkpoint, unsafe, or of the wrong layout."""


def _numpy_scalar_function():
    core = getattr(np, "_core", None) or np.core  # numpy 2.x / 1.x
    return core.multiarray.scalar


def _safe_scalar(dtype, data=None):
    """numpy's scalar reconstruction (``np.float64(0.5)`` in a pickle), refusing object dtypes."""
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise pickle.UnpicklingError(f"numpy scalar of object dtype {dtype!r} (would rebuild a pointer)")
    scalar = _numpy_scalar_function()
    return scalar(dtype) if data is None else scalar(dtype, data)


def _safe_dtype(obj, align=False, copy=False):
    """numpy's dtype reconstruction, refusing object and structured-with-object dtypes."""
    dtype = np.dtype(obj, align, copy)
    if dtype.hasobject:
        raise pickle.UnpicklingError(f"numpy object dtype {obj!r}")
    return dtype


def _dtype_classes() -> list[type]:
    """``numpy.dtypes.Float64DType`` and friends (the types BUILD sets state on; numpy >= 1.25)."""
    module = getattr(np, "dtypes", None)
    return [getattr(module, n) for n in dir(module) if n.endswith("DType") and n != "ObjectDType"] if module else []


def safe_globals_list() -> list:
    """The allowlist handed to ``torch.serialization.safe_globals`` (see module docstring)."""
    return [
        argparse.Namespace,
        (_safe_scalar, "numpy._core.multiarray.scalar"),
        (_safe_scalar, "numpy.core.multiarray.scalar"),
        (_safe_dtype, "numpy.dtype"),
        *_dtype_classes(),
    ]


#: Globals (beyond torch's own defaults: tensors, OrderedDict, Counter, ...) a checkpoint may hold and still load.
SAFE_GLOBAL_NAMES = frozenset(
    ["argparse.Namespace", "numpy._core.multiarray.scalar", "numpy.core.multiarray.scalar", "numpy.dtype"]
    + [f"numpy.dtypes.{c.__name__}" for c in _dtype_classes()]
)


def unsafe_globals(path: str | Path) -> list[str] | None:
    """Globals in ``path``'s pickle that neither torch's defaults nor ``SAFE_GLOBAL_NAMES`` allow (nothing runs).

    Returns None when the file cannot be scanned (not torch's zip format).
    """
    try:
        with torch.serialization.safe_globals(safe_globals_list()):
            found = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except Exception:  # legacy (non-zip) format, truncated file: the caller's load says which
        return None
    return sorted(g for g in found if g not in SAFE_GLOBAL_NAMES)


def load_checkpoint(path: str | Path, *, trusted: bool = False, map_location: str | torch.device = "cpu") -> Any:
    """Reads ``path`` with the ``weights_only`` unpickler and the allowlist (or the full unpickler when ``trusted``).

    Raises:
        CheckpointError: one line naming the file: missing, a directory, empty, truncated/corrupt, or holding
            globals outside the allowlist (code could run on load; they are named) while ``trusted`` is False.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, not a checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: checkpoint file is empty")
    try:
        if trusted:
            return torch.load(path, map_location=map_location, weights_only=False)
        with torch.serialization.safe_globals(safe_globals_list()):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if trusted:
            raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({_first_line(e)})") from e
        names = unsafe_globals(path)
        what = f"globals {', '.join(names)}" if names else _unsafe_global(e)
        raise CheckpointError(
            f"{path}: refused to load: the file holds objects other than tensors and plain types, so loading it "
            f"could run code ({what}); load it only if you trust its source (--trust_checkpoint)"
        ) from e
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, IndexError, KeyError) as e:
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint (truncated or corrupt: {_first_line(e)})"
        ) from e


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__


def _unsafe_global(error: pickle.UnpicklingError) -> str:
    """The 'Unsupported global: GLOBAL x.y' part of torch's weights_only message, if present."""
    for line in str(error).splitlines():
        line = line.strip()
        if "GLOBAL" in line or "Unsupported" in line:
            return line[:200]
    return _first_line(error)
