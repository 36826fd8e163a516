"""A plain folder of PET (+ optional CT) images with label maps → nnU-Net raw.

Matching rule: every image file (``.nii.gz``, ``.nii``, ``.nrrd``, ``.mha``, ``.mhd``) in SOURCE is named
``<case><suffix>.<ext>``; suffix ``_pet`` (required), ``_ct`` (optional, then for every case) or ``_seg`` (required).
Suffixes are configurable (``-pet_suffix`` etc.). An image file matching no suffix is an error (catches typos).
Label names come from a JSON in nnU-Net form ``{"background": 0, "lesion": 1, ...}`` (consecutive from 0); label
values not in the map are an error. PET/CT must be on the label grid (compared in physical space); with
``--resample`` they are resampled onto it instead (linear, world coordinates; PET 0 / CT -1024 outside).
An optional ``case_to_patient`` JSON groups the splits (default: each case its own patient).
"""

from __future__ import annotations

import json
from pathlib import Path

from tqdm import tqdm

from seganypet_nnunet.dataset_conversion.common import (
    CHANNEL_HELP,
    ConversionError,
    add_common_arguments,
    check_same_grid,
    geometry_difference,
    image_to_channel,
    label_image_checked,
    load_label_map,
    pet_ct_channels,
    put_image,
    read_image,
    require_cases,
    resample_to_reference,
    run_cli,
    staged_dataset,
    strip_image_suffix,
    write_dataset_json,
    write_splits,
)
from seganypet_nnunet.errors import cli_entry

DEFAULT_SUFFIXES = {"pet": "_pet", "ct": "_ct", "seg": "_seg"}


def find_generic_cases(
    source_dir: Path, suffixes: dict[str, str] = DEFAULT_SUFFIXES, allow_unlabelled: bool = False
) -> dict[str, dict[str, Path]]:
    """Map case id → {"pet": path[, "seg": path][, "ct": path]}; ConversionError on unmatched/duplicate/missing files.

    A case without a ``_seg`` file is an error unless ``allow_unlabelled`` (it then becomes a test case, imagesTs).
    """
    source_dir = Path(source_dir)
    if not source_dir.is_dir():
        raise ConversionError(f"{source_dir}: source folder not found")
    cases: dict[str, dict[str, Path]] = {}
    by_length = sorted(suffixes.items(), key=lambda kv: -len(kv[1]))  # longest suffix first ("_pet_ct" before "_ct")
    for path in sorted(source_dir.iterdir()):
        if path.name.startswith("."):
            continue
        stem = strip_image_suffix(path.name)
        if stem is not None and path.is_dir():
            raise ConversionError(f"{path}: is a folder named like an image")
        if stem is None:
            continue
        role = next((r for r, s in by_length if stem.endswith(s) and len(stem) > len(s)), None)
        if role is None:
            raise ConversionError(f"{path}: name matches none of the suffixes {sorted(suffixes.values())}")
        case = stem[: -len(suffixes[role])]
        if role in cases.setdefault(case, {}):
            raise ConversionError(f"duplicate case id {case!r}: {cases[case][role].name} and {path.name} ({role})")
        cases[case][role] = path
    require_cases(cases, source_dir, "<case>_pet/_seg image files")
    for case, files in cases.items():
        if "pet" not in files:
            raise ConversionError(f"{source_dir}: case {case} has no {suffixes['pet']} file")
        if "seg" not in files and not allow_unlabelled:
            raise ConversionError(
                f"{files['pet']}: case {case} has no {suffixes['seg']} file (--unlabelled_to_imagesTs makes such "
                "cases test cases)"
            )
    if not any("seg" in files for files in cases.values()):
        raise ConversionError(f"{source_dir}: no case has a {suffixes['seg']} label file (nothing to train on)")
    with_ct = {case: "ct" in files for case, files in cases.items()}
    if len(set(with_ct.values())) > 1:
        missing = sorted(c for c, has in with_ct.items() if not has)
        raise ConversionError(f"{source_dir}: CT present for some cases but missing for {missing[:5]}")
    return dict(sorted(cases.items()))


def _channel(path: Path, label, target: Path, resample: bool, outside: float) -> None:
    image = read_image(path)
    if geometry_difference(image, label) is None:
        image_to_channel(path, target)
    elif resample:
        put_image(resample_to_reference(image, label, linear=True, default_value=outside), target)
    else:
        check_same_grid(label, image, Path("label"), path)


def convert_generic_folder(
    source_dir: Path,
    label_map: Path,
    dataset_id: int,
    dataset_name: str,
    output_root: Path | None = None,
    suffixes: dict[str, str] = DEFAULT_SUFFIXES,
    resample: bool = False,
    case_to_patient: Path | None = None,
    unlabelled_to_images_ts: bool = False,
) -> Path:
    """Convert a generic PET(/CT) folder; return the raw dataset folder.

    Args:
        source_dir: folder of ``<case>_pet``/``_ct``/``_seg`` images (read only).
        label_map: JSON ``{"background": 0, name: value, ...}``.
        dataset_id: nnU-Net dataset id.
        dataset_name: the ``Name`` part of ``DatasetXXX_Name``.
        output_root: nnU-Net raw root; default ``$nnUNet_raw``.
        suffixes: role → file-name suffix for ``pet``, ``ct``, ``seg``.
        resample: resample images onto the label grid instead of failing on a grid mismatch.
        case_to_patient: optional JSON case id → patient id for grouped splits.
        unlabelled_to_images_ts: cases without a ``_seg`` file go to ``imagesTs`` (CT on the PET grid) instead of
            being an error.
    """
    labels_map = load_label_map(label_map)
    found = find_generic_cases(source_dir, suffixes, unlabelled_to_images_ts)
    cases = {case: files for case, files in found.items() if "seg" in files}
    tests = {case: files for case, files in found.items() if "seg" not in files}
    patients = {case: case for case in cases}
    if case_to_patient is not None:
        try:
            patients.update({k: str(v) for k, v in json.loads(Path(case_to_patient).read_text()).items() if k in cases})
        except (OSError, json.JSONDecodeError, AttributeError) as err:
            raise ConversionError(f"{case_to_patient}: unreadable case_to_patient JSON ({err})") from None
    with_ct = all("ct" in files for files in found.values())
    with staged_dataset(dataset_id, dataset_name, output_root) as stage:
        folder, images, labels, _ = stage
        for case, files in tqdm(cases.items(), desc="generic", unit="case"):
            label = label_image_checked(read_image(files["seg"]), labels_map.values(), files["seg"])
            _channel(files["pet"], label, images / f"{case}_0000.nii.gz", resample, 0.0)
            if with_ct:
                _channel(files["ct"], label, images / f"{case}_0001.nii.gz", resample, -1024.0)
            put_image(label, labels / f"{case}.nii.gz")
        for case, files in tqdm(tests.items(), desc="generic (imagesTs)", unit="case"):
            pet = read_image(files["pet"], require_signal=True)
            image_to_channel(files["pet"], folder / "imagesTs" / f"{case}_0000.nii.gz")
            if with_ct:
                _channel(files["ct"], pet, folder / "imagesTs" / f"{case}_0001.nii.gz", resample, -1024.0)
        write_dataset_json(
            folder, pet_ct_channels(with_ct), labels_map, len(cases),
            name=dataset_name, description=f"generic folder conversion of {Path(source_dir).name}",
        )  # fmt: skip
        write_splits(folder, patients)
    return stage.final


@cli_entry("seganypet_convert_generic")
def convert_entry(argv: list[str] | None = None) -> None:
    """``seganypet_convert_generic SOURCE -l LABELS.json -d ID -n NAME [-o RAW] [--resample] [-p C2P.json]``."""
    import argparse

    parser = argparse.ArgumentParser(
        description="Convert a folder of <case>_pet / <case>_ct (optional) / <case>_seg images (.nii.gz .nii .nrrd "
        ".mha .mhd) to nnU-Net raw. " + CHANNEL_HELP
    )  # fmt: skip
    parser.add_argument("source_dir", type=Path, help="[REQUIRED] folder with the image files")
    parser.add_argument("-l", type=Path, required=True, help='[REQUIRED] label map JSON {"background": 0, ...}')
    parser.add_argument("-n", type=str, required=True, help="[REQUIRED] dataset name (DatasetXXX_<name>)")
    add_common_arguments(parser, 500)
    for role, suffix in DEFAULT_SUFFIXES.items():
        parser.add_argument(f"-{role}_suffix", default=suffix, help=f"[OPTIONAL] file-name suffix of {role}. "
                            f"Default: {suffix}")  # fmt: skip
    parser.add_argument("-p", type=Path, default=None, help="[OPTIONAL] case_to_patient JSON for grouped splits")
    parser.add_argument("--resample", action="store_true", help="[OPTIONAL] resample PET/CT onto the label grid")
    parser.add_argument(
        "--unlabelled_to_imagesTs",
        action="store_true",
        help="[OPTIONAL] cases without a _seg file become test cases (imagesTs) instead of an error",
    )
    args = parser.parse_args(argv)
    suffixes = {"pet": args.pet_suffix, "ct": args.ct_suffix, "seg": args.seg_suffix}
    run_cli(
        convert_generic_folder, args.source_dir, args.l, args.d, args.n, args.o, suffixes, args.resample, args.p,
        args.unlabelled_to_imagesTs,
    )  # fmt: skip


if __name__ == "__main__":
    convert_entry()
