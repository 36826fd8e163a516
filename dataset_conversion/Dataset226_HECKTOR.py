"""HECKTOR (2022 flat or 2025/2026 per-patient layout) → nnU-Net raw on the label (= CT) grid.

Sources::

    2022:  SOURCE/imagesTr/<CENTER>-<NNN>__CT.nii.gz, __PT.nii.gz;  SOURCE/labelsTr/<CENTER>_<NNN>.nii.gz (or -<NNN>)
    2025:  SOURCE/<CENTER>-<NNN>/<CENTER>-<NNN>__CT.nii.gz, __PT.nii.gz, <CENTER>-<NNN>.nii.gz

Labels 0 background, 1 GTVp, 2 GTVn live on the CT grid. PET (already SUV) has its own grid and field of view, so it is
**resampled onto the label grid by physical coordinates** (SimpleITK, identity transform in world mm, linear, 0 outside
the PET field of view). CT is byte-copied when its grid equals the label grid (checked in physical space) and resampled
linearly (-1024 HU outside) otherwise. Case id = ``<CENTER>-<NNN>``; each case is its own patient for the splits.
"""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from seganypet_nnunet.dataset_conversion.common import (
    CHANNEL_HELP,
    ConversionError,
    add_common_arguments,
    check_unique,
    geometry_difference,
    image_to_channel,
    label_image_checked,
    put_image,
    read_image,
    require_cases,
    resample_to_reference,
    run_cli,
    staged_dataset,
    write_dataset_json,
    write_splits,
)
from seganypet_nnunet.errors import cli_entry

LABELS = {"background": 0, "GTVp": 1, "GTVn": 2}


def _label_path(pt_path: Path, case: str) -> Path:
    """Per-patient layout: next to the PT file; flat layout: ``../labelsTr``, ``_`` or ``-`` between centre and id."""
    candidates = [pt_path.parent / f"{case}.nii.gz"]
    labels_tr = pt_path.parent.parent / "labelsTr"
    candidates += [labels_tr / f"{case.replace('-', '_', 1)}.nii.gz", labels_tr / f"{case}.nii.gz"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ConversionError(f"{pt_path}: no label file for case {case} (looked for {candidates[0].name} next to it "
                          f"and {candidates[1].name} in labelsTr)")  # fmt: skip


def find_hecktor_cases(source_dir: Path) -> dict[str, tuple[Path, Path, Path]]:
    """Map case id → (PT, CT, label) paths for every ``*__PT.nii.gz`` one or two folders deep."""
    source_dir = Path(source_dir)
    if not source_dir.is_dir():
        raise ConversionError(f"{source_dir}: source folder not found")
    pt_files = sorted(source_dir.glob("*/*__PT.nii.gz"))
    found = []
    for pt_path in pt_files:
        case = pt_path.name[: -len("__PT.nii.gz")]
        ct_path = pt_path.with_name(f"{case}__CT.nii.gz")
        if not ct_path.is_file():
            raise ConversionError(f"{pt_path}: missing CT file {ct_path.name}")
        found.append((case, (pt_path, ct_path, _label_path(pt_path, case))))
    check_unique([c for c, _ in found], [p[0] for _, p in found])
    cases = dict(found)
    require_cases(cases, source_dir, "<CENTER>-<ID>__PT.nii.gz cases")
    return cases


def _convert_case(case: str, paths: tuple[Path, Path, Path], images: Path, labels: Path) -> None:
    pt_path, ct_path, label_path = paths
    label = read_image(label_path)
    label = label_image_checked(label, LABELS.values(), label_path)
    pet = read_image(pt_path)
    if geometry_difference(pet, label) is None:
        image_to_channel(pt_path, images / f"{case}_0000.nii.gz")
    else:
        put_image(resample_to_reference(pet, label, linear=True, default_value=0.0), images / f"{case}_0000.nii.gz")
    ct = read_image(ct_path)
    if geometry_difference(ct, label) is None:
        image_to_channel(ct_path, images / f"{case}_0001.nii.gz")
    else:
        put_image(resample_to_reference(ct, label, linear=True, default_value=-1024.0), images / f"{case}_0001.nii.gz")
    put_image(label, labels / f"{case}.nii.gz")


def convert_hecktor(
    source_dir: Path, dataset_id: int = 226, output_root: Path | None = None, dataset_name: str = "HECKTOR"
) -> Path:
    """Convert a HECKTOR training folder (either layout); return the raw dataset folder.

    Args:
        source_dir: HECKTOR folder (read only).
        dataset_id: nnU-Net dataset id.
        output_root: nnU-Net raw root; default ``$nnUNet_raw``.
        dataset_name: the ``Name`` part of ``DatasetXXX_Name``.
    """
    cases = find_hecktor_cases(source_dir)
    with staged_dataset(dataset_id, dataset_name, output_root) as stage:
        folder, images, labels, _ = stage
        for case, paths in tqdm(sorted(cases.items()), desc="HECKTOR", unit="case"):
            _convert_case(case, paths, images, labels)
        write_dataset_json(
            folder, {0: "PET", 1: "CT"}, LABELS, len(cases),
            name=dataset_name, reference="https://hecktor25.grand-challenge.org/",
            description="HECKTOR; PT (SUV) resampled linearly onto the label/CT grid by physical coordinates",
        )  # fmt: skip
        write_splits(folder, {case: case for case in cases})
    return stage.final


@cli_entry("seganypet_convert_hecktor")
def convert_entry(argv: list[str] | None = None) -> None:
    """``seganypet_convert_hecktor SOURCE [-d 226] [-o RAW_ROOT]``."""
    import argparse

    parser = argparse.ArgumentParser(
        description="Convert HECKTOR (<CENTER>-<ID>__CT/__PT.nii.gz, labels on the CT grid) to nnU-Net raw; PET is "
        "resampled onto the label grid (linear, physical coordinates). " + CHANNEL_HELP
        + " Labels: 0 background, 1 GTVp, 2 GTVn."
    )  # fmt: skip
    parser.add_argument("source_dir", type=Path, help="[REQUIRED] HECKTOR folder (imagesTr/+labelsTr/ or per-patient)")
    add_common_arguments(parser, 226)
    args = parser.parse_args(argv)
    run_cli(convert_hecktor, args.source_dir, args.d, args.o)


if __name__ == "__main__":
    convert_entry()
