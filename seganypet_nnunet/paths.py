"""nnU-Net folders and our own environment variables, read at call time (never at import time)."""

from __future__ import annotations

import os
from pathlib import Path

NNUNET_ENV_VARS = ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")


def nnunet_folder(name: str) -> Path:
    """Return the folder named by one of nnU-Net's environment variables.

    Raises:
        RuntimeError: the variable is not set; the message says which one and how to set it.
    """
    if name not in NNUNET_ENV_VARS:
        raise KeyError(f"{name!r} is not an nnU-Net folder variable; valid: {', '.join(NNUNET_ENV_VARS)}")
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"environment variable {name} is not set: export {name}=/path/to/folder (see nnU-Net docs)")
    return Path(value)


def dataset_folder_name(dataset_id: int, name: str) -> str:
    """nnU-Net's ``DatasetXXX_Name`` folder name; raises ValueError for ids outside 1..999."""
    if not 1 <= int(dataset_id) <= 999:
        raise ValueError(f"dataset id must be in 1..999, got {dataset_id}")
    return f"Dataset{int(dataset_id):03d}_{name}"


def trainer_ext_folder() -> Path:
    """The folder to put in ``nnUNet_extTrainer`` so stock nnU-Net 2.8+ finds our trainers by name."""
    from seganypet_nnunet.trainers import nnunet_ext

    return Path(nnunet_ext.__file__).parent
