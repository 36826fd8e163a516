"""nnU-Net folders and our own environment variables, read at call time (never at import time)."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

from seganypet_nnunet.errors import InputNotFoundError, SeganypetError

NNUNET_ENV_VARS = ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")


class EnvironmentSettingError(SeganypetError, RuntimeError):
    """An nnU-Net folder variable is missing."""


def nnunet_folder(name: str) -> Path:
    """Return the folder named by one of nnU-Net's environment variables.

    Raises:
        EnvironmentSettingError: (a RuntimeError) the variable is not set; the message says how to set it.
    """
    if name not in NNUNET_ENV_VARS:
        raise KeyError(f"{name!r} is not an nnU-Net folder variable; valid: {', '.join(NNUNET_ENV_VARS)}")
    value = os.environ.get(name)
    if not value:
        raise EnvironmentSettingError(
            f"environment variable {name} is not set: export {name}=/path/to/folder (see nnU-Net docs)"
        )
    return Path(value)


#: A dataset name: letters, digits, '_' and '-', starting with a letter or digit (no '/', '..', spaces).
DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")


def check_dataset_name(name: str, flag: str = "-n") -> str:
    """Raise SeganypetError unless ``name`` is a plain dataset name (it becomes a folder name under the raw root)."""
    from seganypet_nnunet.validation import check_path_name

    check_path_name(name, field=flag)
    if not isinstance(name, str) or not DATASET_NAME.match(name):
        raise SeganypetError(
            f"{flag} {name!r}: dataset name must be letters, digits, '_' or '-' (no '/', '..', spaces), "
            "starting with a letter or digit"
        )
    return name


def dataset_folder_name(dataset_id: int, name: str) -> str:
    """nnU-Net's ``DatasetXXX_Name`` folder name; SeganypetError for ids outside 1..999 or unsafe names."""
    if not 1 <= int(dataset_id) <= 999:
        raise SeganypetError(f"-d {dataset_id}: dataset id must be in 1..999")
    return f"Dataset{int(dataset_id):03d}_{check_dataset_name(name)}"


def trainer_ext_folder() -> Path:
    """The folder to put in ``nnUNet_extTrainer`` so stock nnU-Net 2.8+ finds our trainers by name.

    Located, not imported: ``paths`` sits below every stage, so it does not import the trainers.
    """
    spec = importlib.util.find_spec("seganypet_nnunet.trainers")
    return Path(spec.submodule_search_locations[0]) / "nnunet_ext"


def find_raw_dataset(dataset_id: int) -> Path:
    """``$nnUNet_raw/DatasetXXX_*`` for an id; FileNotFoundError (one line) if absent or ambiguous."""
    raw = nnunet_folder("nnUNet_raw")
    matches = sorted(p for p in raw.glob(f"Dataset{int(dataset_id):03d}_*") if p.is_dir()) if raw.is_dir() else []
    if len(matches) != 1:
        problem = "not found" if not matches else f"ambiguous ({', '.join(m.name for m in matches)})"
        raise InputNotFoundError(f"{raw}: dataset id {dataset_id} {problem} in nnUNet_raw")
    return matches[0]
