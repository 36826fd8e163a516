"""autoPET FDG-PET-CT-Lesions NIfTI release → nnU-Net raw (PET first).

Source layout (TCIA/fdat NIfTI, ``lab-midas/autoPET:data_conversion/tcia2nifti.py``)::

    SOURCE/PETCT_<hex>/<study folder>/{SUV,CTres,SEG}.nii.gz      (CT.nii.gz, PET.nii.gz are ignored)

``SUV``, ``CTres`` and ``SEG`` share the PET grid; this is verified in physical space (origin/spacing/direction) and any
mismatch is an error (no resampling: the release promises one grid). Output::

    DatasetXXX_AutoPET_FDG/imagesTr/<case>_0000.nii.gz   SUV  (byte copy), channel "PET"
    DatasetXXX_AutoPET_FDG/imagesTr/<case>_0001.nii.gz   CTres (byte copy), channel "CT"   (unless --no_ct)
    DatasetXXX_AutoPET_FDG/labelsTr/<case>.nii.gz        SEG as uint8 {0 background, 1 lesion}
    dataset.json, case_to_patient.json, splits_final.json (5 folds grouped by PETCT_ patient)

Case id = ``<PETCT_id>_<study folder sanitised>`` (dots removed, other characters outside [A-Za-z0-9-] → ``_``).
The SUV is the release's (AcquisitionTime-based); it is not re-derived.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from tqdm import tqdm

from seganypet_nnunet.dataset_conversion.common import (
    CHANNEL_HELP,
    ConversionError,
    add_common_arguments,
    check_same_grid,
    check_unique,
    image_to_channel,
    label_image_checked,
    pet_ct_channels,
    put_image,
    read_image,
    read_image_info,
    require_cases,
    run_cli,
    sanitize_case_part,
    staged_dataset,
    write_dataset_json,
    write_splits,
)
from seganypet_nnunet.errors import cli_entry

LESION_LABELS = {"background": 0, "lesion": 1}


def autopet_case_id(patient: str, study: str) -> str:
    """nnU-Net case id of one autoPET study folder: ``<PETCT_id>_<sanitised study folder>``."""
    return f"{patient}_{sanitize_case_part(study)}"


def find_autopet_studies(source_dir: Path) -> dict[str, tuple[str, Path]]:
    """Map case id → (patient id, study folder) for every ``PETCT_*/<study>/`` folder holding a ``SUV.nii.gz``.

    Raises ConversionError for a missing source folder, no studies, a study folder without SUV, or duplicate case ids.
    """
    source_dir = Path(source_dir)
    if not source_dir.is_dir():
        raise ConversionError(f"{source_dir}: source folder not found")
    studies: list[tuple[str, str, Path]] = []
    for patient_dir in sorted(p for p in source_dir.glob("PETCT_*") if p.is_dir()):
        for study_dir in sorted(p for p in patient_dir.iterdir() if p.is_dir()):
            if not (study_dir / "SUV.nii.gz").is_file():
                raise ConversionError(f"{study_dir}: missing SUV.nii.gz")
            studies.append((autopet_case_id(patient_dir.name, study_dir.name), patient_dir.name, study_dir))
    check_unique([s[0] for s in studies], [s[2] for s in studies])
    cases = {case: (patient, folder) for case, patient, folder in studies}
    require_cases(cases, source_dir, "PETCT_*/<study>/SUV.nii.gz studies")
    return cases


def _convert_study(case: str, study: Path, images: Path, labels: Path, with_ct: bool) -> None:
    seg_path, ct_path = study / "SEG.nii.gz", study / "CTres.nii.gz"
    if not seg_path.is_file():
        raise ConversionError(f"{study}: missing SEG.nii.gz")
    if with_ct and not ct_path.is_file():
        raise ConversionError(f"{study}: missing CTres.nii.gz (pass --no_ct for a PET-only dataset)")
    write_autopet_study(case, study, seg_path, LESION_LABELS.values(), images, labels, with_ct)


def write_autopet_study(
    case: str,
    study: Path,
    label_path: Path,
    allowed: Iterable[int],
    images: Path,
    labels: Path,
    with_ct: bool,
    remap: Mapping[int, int] | None = None,
) -> None:
    """One autoPET study (``SUV.nii.gz``, ``CTres.nii.gz``) + a label file → ``case``'s channels and label, after
    checking the grids and the label values (``allowed`` after ``remap``); the caller checked the files exist."""
    suv_path, ct_path = study / "SUV.nii.gz", study / "CTres.nii.gz"
    suv_info = read_image_info(suv_path)
    label = read_image(label_path)
    check_same_grid(suv_info, label, suv_path, label_path)
    if with_ct:
        check_same_grid(suv_info, read_image_info(ct_path), suv_path, ct_path)
    label = label_image_checked(label, allowed, label_path, remap=remap)
    image_to_channel(suv_path, images / f"{case}_0000.nii.gz")
    if with_ct:
        image_to_channel(ct_path, images / f"{case}_0001.nii.gz")
    put_image(label, labels / f"{case}.nii.gz")


def convert_autopet_fdg(
    source_dir: Path,
    dataset_id: int = 221,
    output_root: Path | None = None,
    with_ct: bool = True,
    dataset_name: str = "AutoPET_FDG",
) -> Path:
    """Convert the autoPET FDG NIfTI release; return the raw dataset folder.

    Args:
        source_dir: folder holding the ``PETCT_*`` patient folders (read only).
        dataset_id: nnU-Net dataset id.
        output_root: nnU-Net raw root; default ``$nnUNet_raw``.
        with_ct: add CTres as channel ``_0001`` ("CT").
        dataset_name: the ``Name`` part of ``DatasetXXX_Name``.
    """
    cases = find_autopet_studies(source_dir)
    with staged_dataset(dataset_id, dataset_name, output_root) as stage:
        folder, images, labels, _ = stage
        for case, (_, study) in tqdm(sorted(cases.items()), desc="autoPET FDG", unit="case"):
            _convert_study(case, study, images, labels, with_ct)
        channels = pet_ct_channels(with_ct)
        write_dataset_json(
            folder, channels, LESION_LABELS, len(cases),
            name=dataset_name, reference="https://autopet.grand-challenge.org/ (FDG-PET-CT-Lesions NIfTI release)",
            description="autoPET FDG; _0000 = SUV (release SUV.nii.gz, AcquisitionTime-based), "
            "_0001 = CTres (PET grid)",
        )  # fmt: skip
        write_splits(folder, {case: patient for case, (patient, _) in cases.items()})
    return stage.final


@cli_entry("seganypet_convert_autopet_fdg")
def convert_entry(argv: list[str] | None = None) -> None:
    """``seganypet_convert_autopet_fdg SOURCE [-d 221] [-o RAW_ROOT] [--no_ct]``."""
    import argparse

    parser = argparse.ArgumentParser(
        description="Convert the autoPET FDG NIfTI release (PETCT_*/<study>/{SUV,CTres,SEG}.nii.gz) to nnU-Net raw. "
        + CHANNEL_HELP + " Labels: 0 background, 1 lesion. Writes splits_final.json grouped by patient (PETCT_ id) "
        "into the raw folder and, if set, $nnUNet_preprocessed/DatasetXXX_Name/."
    )  # fmt: skip
    parser.add_argument("source_dir", type=Path, help="[REQUIRED] folder containing the PETCT_* patient folders")
    add_common_arguments(parser, 221)
    parser.add_argument("--no_ct", action="store_true", help="[OPTIONAL] PET-only dataset (no _0001 CT channel)")
    args = parser.parse_args(argv)
    run_cli(convert_autopet_fdg, args.source_dir, args.d, args.o, with_ct=not args.no_ct)


if __name__ == "__main__":
    convert_entry()
