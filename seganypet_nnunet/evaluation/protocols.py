"""Shared plumbing of the challenge protocols (autoPET IV clicks, autoPET V scribbles): the model adapter, the lesion
label and the automatic step 0. ``autopet_iv.py`` and ``autopet_v.py`` build on it; ``protocol_cli.py`` wires both
into ``seganypet_evaluate --protocol autopet_iv|autopet_v``.

Step 0 of both protocols is the model's AUTOMATIC prediction (nnU-Net sliding window, no prompt) of the lesion label:
from ``-auto_pred`` label maps when given, else predicted into ``OUT/automatic``. The interactive steps then start from
it: the session's lesion target is initialised with that mask (``add_mask``, a dense prompt) before the first prompt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Protocol, Sequence

import numpy as np

from seganypet_nnunet.evaluation.summary import read_label_array
from seganypet_nnunet.io_utils import read_json_object

LESION_NAMES = ("lesion", "lesions", "tumor", "tumour")
TARGET = "lesion"


class Prompter(Protocol):
    """What the protocols drive: one image, one lesion target started from a mask, then prompts."""

    def start(self, initial: np.ndarray) -> None:
        """Start the lesion target from ``initial``, a (z, y, x) bool mask in the original geometry."""

    def click(self, coord_ijk: Sequence[float], positive: bool) -> np.ndarray:
        """Click at original voxel (i, j, k); returns the (z, y, x) mask."""

    def scribble(self, mask_zyx: np.ndarray, positive: bool) -> np.ndarray:
        """Scribble given as a (z, y, x) bool mask; returns the (z, y, x) mask."""


class SessionPrompter:
    """A ``SegAnyPETSession`` (image already set) as a ``Prompter`` (public session API only)."""

    def __init__(self, session) -> None:
        self.session = session

    def start(self, initial: np.ndarray) -> None:
        self.session.new_target(TARGET)
        self.session.reset()
        self.session.add_mask(np.asarray(initial, np.uint8))

    def click(self, coord_ijk: Sequence[float], positive: bool) -> np.ndarray:
        return np.asarray(self.session.add_point(coord_ijk, positive=positive, space="voxel")) > 0

    def scribble(self, mask_zyx: np.ndarray, positive: bool) -> np.ndarray:
        return np.asarray(self.session.add_scribble(np.asarray(mask_zyx, np.uint8), positive=positive)) > 0


def lesion_label(labels: Mapping[str, int]) -> int:
    """The lesion value of a dataset.json ``labels`` dict: a name in ``LESION_NAMES`` or the only foreground label.

    Raises:
        ValueError: no such label (the message lists the labels).
    """
    for name, value in labels.items():
        if name.lower() in LESION_NAMES and isinstance(value, int):
            return value
    fg = {n: v for n, v in labels.items() if n not in ("background", "ignore")}
    if len(fg) == 1 and isinstance(next(iter(fg.values())), int):
        return next(iter(fg.values()))
    raise ValueError(f"dataset.json labels {sorted(labels)}: no lesion label (expected one of {list(LESION_NAMES)})")


def model_dataset_json(model_folder: str | Path) -> dict:
    """dataset.json of an nnU-Net model folder (``io_utils.read_json_object``: InputNotFoundError when missing)."""
    return read_json_object(Path(model_folder) / "dataset.json")


def automatic_folder(
    model_folder: Path, images_dir: Path, output_folder: Path, auto_pred: Path | None, folds, checkpoint, device
) -> Path:
    """``auto_pred`` if given, else nnU-Net automatic prediction of ``images_dir`` into ``output_folder/automatic``."""
    if auto_pred is not None:
        if not Path(auto_pred).is_dir():
            raise FileNotFoundError(f"automatic prediction folder {auto_pred} does not exist")
        return Path(auto_pred)
    from seganypet_nnunet.inference.predict import predict_automatic

    target = Path(output_folder) / "automatic"
    predict_automatic(model_folder, images_dir, target, folds=folds, checkpoint=checkpoint, device=device, npp=0, nps=0)
    return target


def automatic_mask(folder: Path, case_id: str, ending: str, lesion_value: int, shape: tuple) -> np.ndarray:
    """(z, y, x) bool lesion mask of ``folder/CASE<ending>``; ValueError when its shape is not ``shape``."""
    arr, _ = read_label_array(Path(folder) / f"{case_id}{ending}", f"case {case_id} automatic prediction")
    if arr.shape != tuple(shape):
        raise ValueError(f"case {case_id}: automatic prediction in {folder} has shape {arr.shape}, image {shape}")
    return arr == lesion_value
