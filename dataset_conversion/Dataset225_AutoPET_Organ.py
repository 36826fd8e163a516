"""AutoPET-Organ labels (SegAnyPET release) joined to the autoPET FDG SUV images → nnU-Net raw.

Sources::

    LABEL_DIR/<PETCT_id>_<study folder>_.nii.gz        organ labels on the SUV grid (AutoPET-OrganlabelsTr.zip)
    AUTOPET_DIR/PETCT_<hex>/<study folder>/SUV.nii.gz  (and CTres.nii.gz with --ct)

Matching rule: strip ``.nii.gz`` and the trailing ``_``; ``^(PETCT_[0-9a-f]+)_(.+)$`` gives
the patient folder and the study folder; study names are compared with dots removed on both sides (two studies are
called "... nativ u. mit ..."). An unmatched label file is an error. Label ids (torch-em ``autopet_organ.py``):
1 liver, 2 kidney_left, 3 kidney_right, 4 heart, 5 spleen, 6 aorta, 7 lung_lower_lobe_left, 8 lung_lower_lobe_right,
9 lung_upper_lobe_left, 10 lung_upper_lobe_right, 11 lung_middle_lobe_right; **12 is an alias of 11** and is merged.
Label and SUV grids are compared in physical space; a mismatch is an error. Case ids as in Dataset221
(``<PETCT_id>_<sanitised study>``); splits grouped by PETCT_ patient.
"""

from __future__ import annotations

import re
from pathlib import Path

from tqdm import tqdm

from seganypet_nnunet.dataset_conversion.common import (
    CHANNEL_HELP,
    ConversionError,
    add_common_arguments,
    check_unique,
    pet_ct_channels,
    require_cases,
    run_cli,
    staged_dataset,
    write_dataset_json,
    write_splits,
)
from seganypet_nnunet.dataset_conversion.Dataset221_AutoPET_FDG import autopet_case_id, write_autopet_study
from seganypet_nnunet.errors import cli_entry

ORGAN_LABELS = {
    "background": 0, "liver": 1, "kidney_left": 2, "kidney_right": 3, "heart": 4, "spleen": 5, "aorta": 6,
    "lung_lower_lobe_left": 7, "lung_lower_lobe_right": 8, "lung_upper_lobe_left": 9, "lung_upper_lobe_right": 10,
    "lung_middle_lobe_right": 11,
}  # fmt: skip
ALIASES = {12: 11}
LABEL_NAME_RE = re.compile(r"^(PETCT_[0-9a-fA-F]+)_(.+)$")


def match_label_file(label_path: Path, autopet_dir: Path) -> tuple[str, Path]:
    """Return (patient id, study folder) for one AutoPET-Organ label file; raise ConversionError if it has no match."""
    name = label_path.name
    if not name.endswith(".nii.gz"):
        raise ConversionError(f"{label_path}: not a .nii.gz label file")
    match = LABEL_NAME_RE.match(name[: -len(".nii.gz")].rstrip("_"))
    if match is None:
        raise ConversionError(f"{label_path}: name does not follow <PETCT_id>_<study folder>_.nii.gz")
    patient, study = match.group(1), match.group(2).replace(".", "")
    patient_dir = Path(autopet_dir) / patient
    studies = [p for p in patient_dir.iterdir() if p.is_dir()] if patient_dir.is_dir() else []
    found = [p for p in studies if p.name.replace(".", "") == study]
    if len(found) != 1:
        raise ConversionError(f"{label_path}: no autoPET study folder {patient}/{match.group(2)} in {autopet_dir}")
    return patient, found[0]


def convert_autopet_organ(
    label_dir: Path,
    autopet_dir: Path,
    dataset_id: int = 225,
    output_root: Path | None = None,
    with_ct: bool = False,
    dataset_name: str = "AutoPET_Organ",
) -> Path:
    """Join AutoPET-Organ labels to autoPET SUV (and optionally CTres); return the raw dataset folder.

    Args:
        label_dir: folder of ``<PETCT_id>_<study>_.nii.gz`` label files (read only).
        autopet_dir: autoPET FDG NIfTI root with the ``PETCT_*`` folders (read only).
        dataset_id: nnU-Net dataset id.
        output_root: nnU-Net raw root; default ``$nnUNet_raw``.
        with_ct: add CTres as channel ``_0001`` ("CT").
        dataset_name: the ``Name`` part of ``DatasetXXX_Name``.
    """
    label_dir, autopet_dir = Path(label_dir), Path(autopet_dir)
    for folder_in in (label_dir, autopet_dir):
        if not folder_in.is_dir():
            raise ConversionError(f"{folder_in}: source folder not found")
    label_files = sorted(p for p in label_dir.iterdir() if p.is_file() and not p.name.startswith("."))
    matched = [(path, *match_label_file(path, autopet_dir)) for path in label_files]
    ids = [autopet_case_id(patient, study.name) for _, patient, study in matched]
    check_unique(ids, [m[0] for m in matched])
    cases = dict(zip(ids, matched, strict=True))
    require_cases(cases, label_dir, "AutoPET-Organ label files")
    with staged_dataset(dataset_id, dataset_name, output_root) as stage:
        folder, images, labels, _ = stage
        for case, (label_path, _, study) in tqdm(sorted(cases.items()), desc="AutoPET-Organ", unit="case"):
            suv_path, ct_path = study / "SUV.nii.gz", study / "CTres.nii.gz"
            if not suv_path.is_file() or (with_ct and not ct_path.is_file()):
                raise ConversionError(f"{study}: missing {'SUV.nii.gz' if not suv_path.is_file() else 'CTres.nii.gz'}")
            write_autopet_study(case, study, label_path, ORGAN_LABELS.values(), images, labels, with_ct, ALIASES)
        write_dataset_json(
            folder, pet_ct_channels(with_ct), ORGAN_LABELS, len(cases),
            name=dataset_name,
            reference="https://github.com/YichiZhang98/SegAnyPET (AutoPET-Organ labels) + autoPET FDG",
            description="AutoPET-Organ organ labels on autoPET SUV; label 12 merged into 11 (lung_middle_lobe_right)",
        )  # fmt: skip
        write_splits(folder, {case: patient for case, (_, patient, _) in cases.items()})
    return stage.final


@cli_entry("seganypet_convert_autopet_organ")
def convert_entry(argv: list[str] | None = None) -> None:
    """``seganypet_convert_autopet_organ LABEL_DIR AUTOPET_DIR [-d 225] [-o RAW_ROOT] [--ct]``."""
    import argparse

    parser = argparse.ArgumentParser(
        description="Join AutoPET-Organ labels (<PETCT_id>_<study>_.nii.gz) to autoPET FDG SUV images. " + CHANNEL_HELP
        + " (_0001 only with --ct.) Labels: " + ", ".join(f"{v} {k}" for k, v in ORGAN_LABELS.items() if v)
        + "; source id 12 is merged into 11."
    )  # fmt: skip
    parser.add_argument("label_dir", type=Path, help="[REQUIRED] folder of AutoPET-Organ label files")
    parser.add_argument("autopet_dir", type=Path, help="[REQUIRED] autoPET FDG NIfTI root (PETCT_* folders)")
    add_common_arguments(parser, 225)
    parser.add_argument("--ct", action="store_true", help="[OPTIONAL] add CTres as channel _0001 ('CT')")
    args = parser.parse_args(argv)
    run_cli(convert_autopet_organ, args.label_dir, args.autopet_dir, args.d, args.o, with_ct=args.ct)


if __name__ == "__main__":
    convert_entry()
