"""The one place where this package reads a PyTorch checkpoint file.

Every loader (model folders, ``-pretrained_weights``, ``--c``, imported foundation weights) goes through
``load_checkpoint``, which uses ``torch.load(..., weights_only=True)``: a file whose pickle would run code is refused
with one line naming the file, unless the caller opts in for a file it trusts (``trusted=True``, the CLIs'
``--trust_checkpoint``). Our own checkpoints hold only tensors and plain Python types, so they always load safely.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from seganypet_nnunet.errors import SeganypetError


class CheckpointError(SeganypetError):
    """A checkpoint file that cannot be used: missing, truncated, not a checkpoint, unsafe, or of the wrong layout."""


def load_checkpoint(path: str | Path, *, trusted: bool = False, map_location: str | torch.device = "cpu") -> Any:
    """Reads ``path`` with ``torch.load(weights_only=True)`` (or the full unpickler when ``trusted``).

    Raises:
        CheckpointError: one line naming the file: missing, empty, truncated/corrupt, or holding objects other than
            tensors and plain types (code could run on load) while ``trusted`` is False.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: checkpoint file is empty")
    try:
        return torch.load(path, map_location=map_location, weights_only=not trusted)
    except pickle.UnpicklingError as e:
        if trusted:
            raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({_first_line(e)})") from e
        raise CheckpointError(
            f"{path}: refused to load: the file holds objects other than tensors and plain types, so loading it "
            f"could run code ({_unsafe_global(e)}); load it only if you trust its source (--trust_checkpoint)"
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
