"""Prediction at scale: which cases one ``seganypet_predict`` process handles.

``-num_parts N -part_id K`` has nnU-Net's semantics: the cases, in nnU-Net's order (sorted case ids), are dealt
round-robin, ``cases[K::N]``, so the N parts are disjoint and together cover every case exactly once; with
``--prompts`` the cases are those of the prompt file, sorted the same way. ``--continue_prediction`` skips a case when
every output file it would write exists and can be read (an image whose header SimpleITK reads, JSON that parses, an
``.npz`` that numpy opens), so a crashed or killed run can be restarted with the same command. Parts may run at the
same time on different GPUs / nodes into one output folder: each writes only its own cases' files.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Mapping, Sequence, TypeVar

from seganypet_nnunet.errors import SeganypetError

V = TypeVar("V")


def select_part(cases: Mapping[str, V], num_parts: int = 1, part_id: int = 0) -> dict[str, V]:
    """nnU-Net's ``-num_parts/-part_id``: ``sorted(cases)[part_id::num_parts]``, with each case's value.

    Raises:
        SeganypetError: ``num_parts < 1`` or ``part_id`` outside ``0..num_parts-1`` (one line naming the flag).
    """
    if num_parts < 1:
        raise SeganypetError(f"-num_parts: must be >= 1, got {num_parts}")
    if not 0 <= part_id < num_parts:
        raise SeganypetError(f"-part_id: must be in 0..{num_parts - 1} for -num_parts {num_parts}, got {part_id}")
    return {case: cases[case] for case in sorted(cases)[part_id::num_parts]}


def output_is_valid(path: Path) -> bool:
    """True when ``path`` exists and reads back: image header (SimpleITK), JSON, ``.npz``; other files: non-empty."""
    if not path.is_file() or path.stat().st_size == 0:
        return False
    name = path.name
    try:
        if name.endswith(".json"):
            json.loads(path.read_text())
        elif name.endswith(".npz"):
            with zipfile.ZipFile(path) as z:
                return z.testzip() is None
        elif name.endswith(".pkl"):
            return True
        else:
            import SimpleITK as sitk

            reader = sitk.ImageFileReader()
            reader.SetFileName(str(path))
            reader.ReadImageInformation()
    except Exception:  # any read failure means "predict again"
        return False
    return True


def automatic_outputs(case: str, file_ending: str, save_probabilities: bool) -> list[str]:
    """File names automatic prediction writes for ``case`` (nnU-Net's: CASE<ending>, + CASE.npz/.pkl)."""
    return [case + file_ending] + ([f"{case}.npz", f"{case}.pkl"] if save_probabilities else [])


def prompted_outputs(case: str, file_ending: str, target_names: Sequence[str], per_target_files: bool) -> list[str]:
    """File names prompted prediction writes for ``case``: CASE<ending> + CASE.json, or CASE__<target><ending>."""
    if per_target_files:
        return [f"{case}__{name}{file_ending}" for name in target_names]
    return [case + file_ending, f"{case}.json"]


def pending(cases: Mapping[str, V], output_folder: str | Path, outputs: Mapping[str, Sequence[str]]) -> dict[str, V]:
    """``--continue_prediction``: the cases of which some file of ``outputs[case]`` is missing or unreadable."""
    folder = Path(output_folder)
    return {c: v for c, v in cases.items() if not all(output_is_valid(folder / f) for f in outputs[c])}


def check_prev_stage(folder: str | Path | None, cases: Sequence[str], file_ending: str, cascade: bool) -> None:
    """``-prev_stage_predictions``: given exactly for cascade stages, and holding ``CASE<ending>`` for every case.

    Raises:
        SeganypetError / FileNotFoundError: one line naming the configuration, folder or missing file.
    """
    if folder is None:
        if cascade:
            raise SeganypetError("this configuration is a cascade stage: pass -prev_stage_predictions FOLDER")
        return
    if not cascade:
        raise SeganypetError(f"-prev_stage_predictions {folder}: the configuration is not a cascade stage")
    missing = [c + file_ending for c in cases if not (Path(folder) / (c + file_ending)).is_file()]
    if missing:
        raise FileNotFoundError(f"-prev_stage_predictions {folder}: missing {missing[0]} ({len(missing)} case(s))")
