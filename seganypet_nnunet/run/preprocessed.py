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

import contextlib
import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from seganypet_nnunet import io_utils
from seganypet_nnunet.errors import SeganypetError

#: In a hidden sub-folder: nnU-Net infers the dataset format from the endings of the folder's files (a ``.json``
#: beside the ``.b2nd`` files would break training) and its preprocessing removes the whole folder when it starts.
MARKER = ".seganypet/preprocessing_complete.json"
_RERUN = "run seganypet_plan_and_preprocess again"
SHARES_DATA = {"3d_cascade_fullres": "3d_fullres"}  # configurations that reuse another's preprocessed data


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


def preprocess_configurations(
    dataset_id: int,
    plans_ids: Sequence[str],
    configurations: Sequence[str],
    num_processes: Sequence[int],
    verbose: bool,
    case_ids: Sequence[str] = (),
) -> None:
    """nnU-Net's ``preprocess_dataset`` for every plans identifier (configurations sharing data are skipped); each
    configuration folder is verified and marked complete (``preprocessed.mark_complete``) once nnU-Net is done.

    Raises:
        OutOfSpaceError: the disk filled up (the half-written configuration folder is removed).
    """
    import shutil

    from nnunetv2.experiment_planning.plan_and_preprocess_api import preprocess_dataset
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    from seganypet_nnunet.paths import find_raw_dataset, nnunet_folder

    if len(num_processes) not in (1, len(configurations)):
        raise SeganypetError(
            f"-np: give one number or one per configuration ({len(configurations)}), got {len(num_processes)}"
        )
    repeated = list(num_processes) * (len(configurations) // len(num_processes))
    per_config = dict(zip(configurations, repeated, strict=True))
    configs = [c for c in configurations if c not in SHARES_DATA]
    preprocessed = nnunet_folder("nnUNet_preprocessed") / find_raw_dataset(dataset_id).name
    for plans_id in plans_ids:
        if not configs:
            continue
        import json

        plans = PlansManager(json.loads((preprocessed / f"{plans_id}.json").read_text()))
        folders = [preprocessed / plans.get_configuration(c).data_identifier for c in configs]
        try:
            preprocess_dataset(
                dataset_id,
                plans_id,
                configs,
                [per_config[c] for c in configs],
                verbose=verbose,
                show_progress_bar=verbose,
            )
            for folder in folders:
                mark_complete(folder, case_ids)
        except (OSError, RuntimeError, SeganypetError) as err:
            free = io_utils.free_bytes(preprocessed)
            short = io_utils.is_space_error(err) or "NDArray" in str(err) or "incomplete" in str(err)
            if short and free is not None and free < _PREPROCESSING_SLACK:
                for folder in folders:
                    shutil.rmtree(folder, ignore_errors=True)
                raise io_utils.out_of_space(preprocessed, _raw_bytes(dataset_id)) from None
            raise


#: Free bytes below which a failed preprocessing write is taken for a full disk.
_PREPROCESSING_SLACK = 64 << 20


def _raw_bytes(dataset_id: int) -> int:
    """Bytes preprocessing may need: the raw training images' uncompressed size (float32 voxels, every channel)."""
    import SimpleITK as sitk

    from seganypet_nnunet.paths import find_raw_dataset

    total = 0
    for image in sorted((find_raw_dataset(dataset_id) / "imagesTr").iterdir()):
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(image))
        try:
            reader.ReadImageInformation()
        except RuntimeError:
            continue
        n = 1
        for d in reader.GetSize():
            n *= d
        total += 5 * n  # float32 data + uint8 segmentation
    return total


@contextlib.contextmanager
def removed_if_out_of_space() -> Iterator[None]:
    """On a full disk, remove the dataset folders this run created under ``nnUNet_preprocessed`` (nothing half-made
    stays behind); folders that existed before are left as they were."""
    import shutil

    from seganypet_nnunet.paths import nnunet_folder

    root = nnunet_folder("nnUNet_preprocessed")
    before = {p.name for p in root.iterdir()} if root.is_dir() else set()
    try:
        yield
    except io_utils.OutOfSpaceError:
        for p in root.iterdir() if root.is_dir() else ():
            if p.name not in before and p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
        raise
