"""Cross-validation splits grouped by patient (``case_to_patient.json`` -> nnU-Net's ``splits_final.json``).

nnU-Net's own splits are per case; several studies of one patient would then leak between train and validation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from seganypet_nnunet.io_utils import write_json

CASE_TO_PATIENT = "case_to_patient.json"
SPLITS_FILE = "splits_final.json"


def patient_grouped_splits(
    case_ids: list[str], case_to_patient: dict[str, str], n_splits: int = 5, seed: int = 12345
) -> list[dict[str, list[str]]]:
    """nnU-Net's ``generate_crossval_split`` applied to patients, expanded back to cases.

    Uses ``min(n_splits, number of patients)`` folds so every fold has >= 1 validation case.

    Args:
        case_ids: training case identifiers (nnU-Net keys, no channel suffix).
        case_to_patient: case id -> patient id; must cover every case in ``case_ids``.

    Raises:
        ValueError: a case has no patient, or there are fewer than 2 patients.
    """
    from nnunetv2.utilities.crossval_split import generate_crossval_split

    missing = sorted(set(case_ids) - set(case_to_patient))
    if missing:
        raise ValueError(f"{CASE_TO_PATIENT}: no patient for training case(s) {missing[:5]}")
    patients = sorted({str(case_to_patient[c]) for c in case_ids})
    if len(patients) < 2:
        raise ValueError(f"{CASE_TO_PATIENT}: need >= 2 patients for a cross-validation split, got {len(patients)}")
    folds = generate_crossval_split(patients, seed=seed, n_splits=min(n_splits, len(patients)))
    by_patient: dict[str, list[str]] = {}
    for case in sorted(case_ids):
        by_patient.setdefault(str(case_to_patient[case]), []).append(case)
    return [{part: [c for p in fold[part] for c in by_patient[str(p)]] for part in ("train", "val")} for fold in folds]


def write_patient_splits(
    case_to_patient: Mapping[str, str],
    case_ids: Sequence[str],
    targets: Sequence[Path],
    *,
    keep_existing: bool = False,
    n_splits: int = 5,
) -> list[Path]:
    """The one writer of patient-grouped ``splits_final.json`` files (converters and planning).

    Args:
        case_to_patient: case id -> patient id.
        case_ids: training case identifiers.
        targets: files to write (e.g. the raw dataset folder's copy and ``$nnUNet_preprocessed/DatasetXXX/``'s).
        keep_existing: leave a target that exists untouched (planning keeps a user's or converter's splits).
        n_splits: folds (fewer when there are fewer patients).
    Returns:
        The targets that now hold these splits (a target already holding identical content is not rewritten);
        empty when there are fewer than 2 patients (nnU-Net then makes its own splits).
    """
    if len({case_to_patient.get(c, c) for c in case_ids}) < 2:
        return []
    splits = patient_grouped_splits(list(case_ids), dict(case_to_patient), n_splits)
    out = []
    for target in map(Path, targets):
        if target.exists() and keep_existing:
            continue
        if not (target.is_file() and _holds(target, splits)):
            write_json(splits, target)
        out.append(target)
    return out


def _holds(path: Path, content) -> bool:
    try:
        return json.loads(path.read_text()) == json.loads(json.dumps(content))
    except (OSError, json.JSONDecodeError):
        return False


def maybe_write_patient_splits(raw_folder: Path, preprocessed_folder: Path, case_ids: list[str]) -> Path | None:
    """Writes ``splits_final.json`` grouped by patient unless one exists, there is no mapping or < 2 patients.

    Args:
        raw_folder: ``$nnUNet_raw/DatasetXXX_Name`` (may contain ``case_to_patient.json``).
        preprocessed_folder: ``$nnUNet_preprocessed/DatasetXXX_Name``.
        case_ids: training case identifiers.

    Returns:
        The path written, or None when nothing was written.
    """
    mapping_file, target = Path(raw_folder) / CASE_TO_PATIENT, Path(preprocessed_folder) / SPLITS_FILE
    if target.exists() or not mapping_file.exists():
        return None
    written = write_patient_splits(json.loads(mapping_file.read_text()), case_ids, [target], keep_existing=True)
    if not written:
        print(f"INFO: {mapping_file} lists fewer than 2 training patients; no patient-grouped splits written")
    return written[0] if written else None


#: nnU-Net's number of folds when it makes its own splits (no splits_final.json yet).
NNUNET_DEFAULT_FOLDS = 5


def check_fold(preprocessed_folder: Path, fold: int | str) -> int | str:
    """``fold`` is ``all`` or a fold of ``splits_final.json`` (0..4 when nnU-Net will make its own 5 folds).

    nnU-Net trains a fold beyond its splits on a random 80:20 split without saying so; this refuses it instead.

    Raises:
        SeganypetError: not an integer / ``all``, or not a fold of the splits (the message names the splits file).
    """
    from seganypet_nnunet.errors import SeganypetError

    if fold == "all":
        return fold
    try:
        fold = int(fold)
    except (TypeError, ValueError):
        raise SeganypetError(f"fold {fold!r}: must be an integer (0..4) or 'all'") from None
    splits_file = Path(preprocessed_folder) / SPLITS_FILE
    if splits_file.is_file():
        try:
            n = len(json.loads(splits_file.read_text()))
        except (OSError, ValueError, TypeError):
            raise SeganypetError(f"{splits_file}: unreadable splits file") from None
        if not 0 <= fold < n:
            raise SeganypetError(f"{splits_file}: fold {fold} is not in the splits (folds 0..{n - 1}, or 'all')")
    elif not 0 <= fold < NNUNET_DEFAULT_FOLDS:
        raise SeganypetError(
            f"fold {fold}: nnU-Net makes {NNUNET_DEFAULT_FOLDS} folds (0..{NNUNET_DEFAULT_FOLDS - 1}) when "
            f"{splits_file} does not exist; use one of them or 'all'"
        )
    return fold
