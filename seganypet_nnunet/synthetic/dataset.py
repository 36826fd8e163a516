"""Write a synthetic dataset in nnU-Net raw layout (imagesTr/labelsTr/imagesTs/labelsTs + our extras)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from tqdm import tqdm

from seganypet_nnunet.errors import SeganypetError
from seganypet_nnunet.io_utils import atomic_folder, write_image, write_json
from seganypet_nnunet.label_quality import LOW_QUALITY_FILE
from seganypet_nnunet.paths import dataset_folder_name, nnunet_folder
from seganypet_nnunet.synthetic.case import make_case
from seganypet_nnunet.synthetic.config import LABELS, SyntheticConfig
from seganypet_nnunet.synthetic.corruption import CORRUPTION_RECORD_FILE, LabelCorruption, corrupt_label_map

FILE_ENDING = ".nii.gz"
PATIENT_STRIDE = 100_000  # patient seed = seed * PATIENT_STRIDE + patient index


def plan_studies(num_cases: int, followup_fraction: float, first_patient: int = 0) -> list[tuple[int, int]]:
    """(patient index, study index) per case: the first patients get a follow-up study (study 1).

    ``num_cases`` cases come from ceil(num_cases / (1 + followup_fraction)) patients, e.g. 6 cases -> 4 patients.
    """
    if num_cases <= 0:
        return []
    patients = max(1, math.ceil(num_cases / (1.0 + followup_fraction)))
    doubles = num_cases - patients
    plan = []
    for p in range(patients):
        plan.append((first_patient + p, 0))
        if p < doubles:
            plan.append((first_patient + p, 1))
    return plan


def case_identifier(patient_index: int, study: int) -> str:
    """nnU-Net case identifier, e.g. ``SYN003_BL`` (baseline) or ``SYN003_FU1`` (first follow-up)."""
    return f"SYN{patient_index:03d}_{'BL' if study == 0 else f'FU{study}'}"


def dataset_json(config: SyntheticConfig, num_training: int, name: str) -> dict:
    """nnU-Net v2 ``dataset.json`` of a synthetic dataset (channel 0 PET in SUV, optional channel 1 CT)."""
    channels = {"0": "PET", "1": "CT"} if config.with_ct else {"0": "PET"}
    return {
        "channel_names": channels,
        "labels": dict(LABELS),
        "numTraining": num_training,
        "file_ending": FILE_ENDING,
        "name": name,
        "description": f"seganypet_nnunet synthetic whole-body {config.tracer.upper()} PET ({config.size})",
        "tracer": config.tracer,
    }


def _corrupted(labels: sitk.Image, rng: np.random.Generator, corruption: LabelCorruption) -> tuple[sitk.Image, dict]:
    """A low-quality copy of a label image (same geometry) and the record of what was done to it."""
    array = sitk.GetArrayFromImage(labels)  # (z, y, x)
    spacing_zyx = tuple(reversed(labels.GetSpacing()))
    out, record = corrupt_label_map(array, spacing=spacing_zyx, rng=rng, kinds=corruption.kinds)
    image = sitk.GetImageFromArray(out)
    image.CopyInformation(labels)
    return image, record


def _write_case(
    folder: Path,
    split: str,
    case_id: str,
    seed: int,
    patient_seed: int,
    config: SyntheticConfig,
    corrupt_rng: np.random.Generator | None = None,
    corruption: LabelCorruption | None = None,
) -> tuple[str, dict | None]:
    """Writes one case; with ``corrupt_rng`` its labelsTr file is a low-quality copy (instances and truth stay clean).
    Returns (patient id, corruption record or None)."""
    case = make_case(seed, config, patient_seed=patient_seed)
    write_image(case.pet, folder / f"images{split}" / f"{case_id}_0000{FILE_ENDING}")
    if case.ct is not None:
        write_image(case.ct, folder / f"images{split}" / f"{case_id}_0001{FILE_ENDING}")
    labels, record = case.labels, None
    if corrupt_rng is not None:
        labels, record = _corrupted(labels, corrupt_rng, corruption)
    write_image(labels, folder / f"labels{split}" / f"{case_id}{FILE_ENDING}")
    write_image(case.instances, folder / f"instances{split}" / f"{case_id}{FILE_ENDING}")
    write_json(case.truth, folder / "truth" / f"{case_id}.json")
    return case.patient_id, record


def make_dataset(
    dataset_id: int,
    name: str = "SyntheticPET",
    num_train: int = 6,
    num_test: int = 2,
    config: SyntheticConfig | None = None,
    seed: int = 0,
    raw_root: str | Path | None = None,
    *,
    corruption: LabelCorruption | None = None,
) -> Path:
    """Generate ``DatasetXXX_Name`` in nnU-Net raw layout and return its folder.

    Writes imagesTr/labelsTr (+ imagesTs/labelsTs), ``_0000`` = PET (SUV), ``_0001`` = CT if ``with_ct``,
    instancesTr/instancesTs (lesion instance ids), truth/CASE.json, dataset.json and case_to_patient.json.
    Some patients have a follow-up study (``config.followup_fraction``); test patients never appear in training.
    An existing folder is replaced atomically (idempotent).

    With ``corruption``, that fraction of the training cases gets a low-quality labelsTr file (``corruption.py``);
    their identifiers go to ``low_quality_cases.json`` (``label_quality.py``) and what was done to each to
    ``label_corruption.json``. Test labels, instances and truth files stay clean.

    Args:
        dataset_id: nnU-Net dataset id (1..999).
        raw_root: folder to write into instead of ``$nnUNet_raw``.
        corruption: label corruption of training cases, or None (all labels clean).
    """
    config = config or SyntheticConfig()
    if num_train < 1 or num_test < 0:
        raise SeganypetError(f"make_dataset needs num_train >= 1 and num_test >= 0, got {num_train} and {num_test}")
    root = Path(raw_root) if raw_root is not None else nnunet_folder("nnUNet_raw")
    target = root / dataset_folder_name(dataset_id, name)
    others = sorted(p.name for p in root.glob(f"Dataset{int(dataset_id):03d}_*") if p.name != target.name)
    if others:
        raise SeganypetError(f"{root / others[0]}: dataset id {int(dataset_id)} is already used by another dataset")
    train = plan_studies(num_train, config.followup_fraction)
    test = plan_studies(num_test, 0.0, first_patient=train[-1][0] + 1)
    jobs = [("Tr", p, s) for p, s in train] + [("Ts", p, s) for p, s in test]
    low = corruption.select([case_identifier(p, s) for p, s in train]) if corruption is not None else []
    case_to_patient, records = {}, {}
    with atomic_folder(target) as tmp:
        for split, patient, study in tqdm(jobs, desc=f"writing {target.name}", unit="case"):
            patient_seed = seed * PATIENT_STRIDE + patient
            case_id = case_identifier(patient, study)
            corrupt_rng = None
            if split == "Tr" and case_id in low:
                corrupt_rng = np.random.default_rng([corruption.seed, patient_seed, study])
            case_to_patient[case_id], record = _write_case(
                tmp, split, case_id, patient_seed * 10 + study, patient_seed, config, corrupt_rng, corruption
            )
            if record is not None:
                records[case_id] = record
        write_json(dataset_json(config, len(train), name), tmp / "dataset.json")
        write_json(case_to_patient, tmp / "case_to_patient.json")
        if corruption is not None:
            write_json(low, tmp / LOW_QUALITY_FILE)
            write_json(records, tmp / CORRUPTION_RECORD_FILE)
    return target
