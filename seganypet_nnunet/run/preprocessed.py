"""A preprocessed configuration folder records that it is complete; training refuses one that is not.

nnU-Net's preprocessing (``DefaultPreprocessor.run``) empties ``nnUNet_preprocessed/DatasetXXX/<data_identifier>``
and then writes ``CASE.b2nd``, ``CASE_seg.b2nd`` and ``CASE.pkl`` per training case from worker processes. A killed
or out-of-space run leaves some cases missing or truncated, and nnU-Net's training would crash on them mid-epoch.
``seganypet_plan_and_preprocess`` therefore verifies every case's files after nnU-Net is done and writes the marker
``MARKER`` LAST (listing the cases); ``seganypet_train`` checks the marker before building anything. A folder without
a marker (preprocessed by stock ``nnUNetv2_preprocess``) is verified file by file instead: every case of the
dataset's ``numTraining`` / splits present, every array readable to its last chunk.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from seganypet_nnunet import io_utils
from seganypet_nnunet.errors import SeganypetError

MARKER = ".seganypet_preprocessing_complete.json"
_RERUN = "run seganypet_plan_and_preprocess again"


class IncompletePreprocessingError(SeganypetError):
    """A preprocessed folder a killed or failed preprocessing run left half-written."""


def case_files(folder: str | Path, case: str) -> list[Path]:
    """nnU-Net's (blosc2) files of one preprocessed case: data, segmentation, properties."""
    folder = Path(folder)
    return [folder / f"{case}.b2nd", folder / f"{case}_seg.b2nd", folder / f"{case}.pkl"]


def preprocessed_cases(folder: str | Path) -> list[str]:
    """Case identifiers present in a preprocessed folder (by their ``.pkl`` properties files)."""
    return sorted(p.name[: -len(".pkl")] for p in Path(folder).glob("*.pkl") if not p.name.startswith("."))


def verify_cases(folder: str | Path, cases: Iterable[str]) -> None:
    """Every case's three files exist and read back complete (``io_utils.verify_written``).

    Raises:
        IncompletePreprocessingError: one line naming the first missing or incomplete file.
    """
    for case in cases:
        for f in case_files(folder, case):
            if not f.is_file():
                raise IncompletePreprocessingError(f"{f}: missing: preprocessing did not finish; {_RERUN}")
            try:
                io_utils.verify_written(f)
            except io_utils.IncompleteWriteError:
                raise IncompletePreprocessingError(
                    f"{f}: incomplete (preprocessing killed or disk full?); {_RERUN}"
                ) from None


def mark_complete(folder: str | Path, cases: Iterable[str]) -> Path:
    """Verify every case, then write the marker (last, atomically). Returns the marker path."""
    cases = sorted(cases)
    verify_cases(folder, cases)
    return io_utils.write_json({"cases": cases}, Path(folder) / MARKER)


def check_complete(folder: str | Path, expected_cases: Iterable[str] | None = None) -> list[str]:
    """The cases of a complete preprocessed folder; one line if it is missing or half-written.

    Args:
        folder: ``nnUNet_preprocessed/DatasetXXX/<data_identifier>``.
        expected_cases: the training cases the folder must hold (splits / dataset.json); None = what it holds.

    Raises:
        InputNotFoundError: the folder does not exist. IncompletePreprocessingError: no marker and a case missing or
            incomplete, or a marker whose cases' files are gone.
    """
    from seganypet_nnunet.errors import InputNotFoundError

    folder = Path(folder)
    if not folder.is_dir():
        raise InputNotFoundError(f"{folder}: preprocessed data not found: {_RERUN}")
    marker = folder / MARKER
    if marker.is_file():
        try:
            cases = list(json.loads(marker.read_text())["cases"])
        except (OSError, ValueError, KeyError, TypeError):
            raise IncompletePreprocessingError(f"{marker}: unreadable completion marker; {_RERUN}") from None
        missing = [f for c in cases for f in case_files(folder, c) if not f.is_file()]
        if missing:
            raise IncompletePreprocessingError(f"{missing[0]}: missing although preprocessing finished; {_RERUN}")
    else:
        cases = preprocessed_cases(folder)
        verify_cases(folder, cases)
    absent = sorted(set(expected_cases or ()) - set(cases))
    if absent:
        raise IncompletePreprocessingError(
            f"{folder}: holds {len(cases)} case(s), {len(absent)} training case(s) missing (e.g. {absent[0]}); {_RERUN}"
        )
    if not cases:
        raise IncompletePreprocessingError(f"{folder}: no preprocessed cases; {_RERUN}")
    return cases
