"""autoPET III/IV FDG+PSMA release (already nnU-Net raw, CT first) → our raw dataset (PET first) + prompts.json.

Source layout (fdat doi:10.57754/FDAT.6gjsg-zcg93)::

    SOURCE/imagesTr/{fdg|psma}_<patient-hash>_<YYYY-MM-DD>_0000.nii.gz    CT resampled to PET
    SOURCE/imagesTr/{fdg|psma}_<patient-hash>_<YYYY-MM-DD>_0001.nii.gz    PET in SUV
    SOURCE/labelsTr/{fdg|psma}_<patient-hash>_<YYYY-MM-DD>.nii.gz         0 background / 1 lesion

Decision: channels are **reordered** to our contract (DESIGN.md: PET first): source ``_0001`` (SUV) → ``_0000`` "PET",
source ``_0000`` (CT) → ``_0001`` "CT" (dropped with ``--no_ct``). Images are byte copies; all three files of a case
must share one grid (checked in physical space, mismatch = error). Case ids are kept. The tracer of each case
(``fdg``/``psma``) goes to ``case_to_tracer.json`` and dataset.json ``"tracer_per_case"``; splits are grouped by
patient hash.

Clicks (``-c CLICK_DIR``, optional): ``<case>.json`` or ``<case>_clicks.json`` in either autoPET IV form; written to
``prompts.json`` in the dataset folder (schema ``seganypet-prompts/1``, points in original voxel (i, j, k) of the PET).
"""

from __future__ import annotations

import re
from pathlib import Path

from tqdm import tqdm

from seganypet_nnunet.dataset_conversion.autopet_clicks import parse_autopet_clicks
from seganypet_nnunet.dataset_conversion.common import (
    CHANNEL_HELP,
    ConversionError,
    add_common_arguments,
    check_same_grid,
    image_to_channel,
    label_image_checked,
    pet_ct_channels,
    put_image,
    put_json,
    read_image,
    read_image_info,
    require_cases,
    run_cli,
    staged_dataset,
    write_dataset_json,
    write_splits,
)
from seganypet_nnunet.errors import cli_entry
from seganypet_nnunet.prompts.prompt_file import SCHEMA

CASE_RE = re.compile(r"^(?P<tracer>fdg|psma)_(?P<patient>[^_]+)_(?P<date>\d{4}-\d{2}-\d{2})$")
FILE_RE = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})\.nii\.gz$")
LABELS = {"background": 0, "lesion": 1}


def prompts_document(cases: dict[str, dict]) -> dict:
    """Wrap per-case entries (``parse_autopet_clicks``) into the top-level prompt document (``prompt_file.SCHEMA``)."""
    return {"schema": SCHEMA, "cases": dict(sorted(cases.items()))}


def find_autopet_iv_cases(source_dir: Path) -> dict[str, re.Match]:
    """Map case id → its parsed name (tracer, patient, date) from ``imagesTr``; checks both channels exist per case."""
    images = Path(source_dir) / "imagesTr"
    if not images.is_dir():
        raise ConversionError(f"{source_dir}: no imagesTr folder (expected the autoPET III/IV nnU-Net layout)")
    channels: dict[str, set[str]] = {}
    for path in sorted(images.iterdir()):
        if path.name.startswith("."):
            continue
        match = FILE_RE.match(path.name)
        if match is None or CASE_RE.match(match["case"]) is None:
            raise ConversionError(f"{path}: file name is not {{fdg|psma}}_<patient>_<YYYY-MM-DD>_<XXXX>.nii.gz")
        channels.setdefault(match["case"], set()).add(match["channel"])
    for case, found in channels.items():
        if found != {"0000", "0001"}:
            raise ConversionError(f"{images}: case {case} has channels {sorted(found)}, expected 0000 (CT), 0001 (PET)")
    require_cases(channels, images, "{fdg|psma}_*_0000/_0001.nii.gz cases")
    return {case: CASE_RE.match(case) for case in sorted(channels)}


def _click_file(click_dir: Path | None, case: str) -> Path | None:
    if click_dir is None:
        return None
    for name in (f"{case}.json", f"{case}_clicks.json"):
        if (Path(click_dir) / name).is_file():
            return Path(click_dir) / name
    return None


def _convert_case(source: Path, case: str, images: Path, labels: Path, with_ct: bool):
    """Copy one case with channels reordered; return the PET header (for click bound checks)."""
    ct_path = source / "imagesTr" / f"{case}_0000.nii.gz"
    pet_path = source / "imagesTr" / f"{case}_0001.nii.gz"
    label_path = source / "labelsTr" / f"{case}.nii.gz"
    if not label_path.is_file():
        raise ConversionError(f"{label_path}: missing label file for case {case}")
    pet_info = read_image_info(pet_path)
    label = read_image(label_path)
    check_same_grid(pet_info, label, pet_path, label_path)
    check_same_grid(pet_info, read_image_info(ct_path), pet_path, ct_path)
    label = label_image_checked(label, LABELS.values(), label_path)
    image_to_channel(pet_path, images / f"{case}_0000.nii.gz")
    if with_ct:
        image_to_channel(ct_path, images / f"{case}_0001.nii.gz")
    put_image(label, labels / f"{case}.nii.gz")
    return pet_info


def convert_autopet_iv(
    source_dir: Path,
    dataset_id: int = 224,
    output_root: Path | None = None,
    click_dir: Path | None = None,
    with_ct: bool = True,
    dataset_name: str = "AutoPET_IV",
) -> Path:
    """Convert the autoPET III/IV release (and optional click JSONs); return the raw dataset folder.

    Args:
        source_dir: release folder with ``imagesTr``/``labelsTr`` (read only).
        dataset_id: nnU-Net dataset id.
        output_root: nnU-Net raw root; default ``$nnUNet_raw``.
        click_dir: folder of per-case click JSONs; cases without a file get no prompts.
        with_ct: keep CT as channel ``_0001``.
        dataset_name: the ``Name`` part of ``DatasetXXX_Name``.
    """
    source_dir = Path(source_dir)
    if click_dir is not None and not Path(click_dir).is_dir():
        raise ConversionError(f"{click_dir}: click folder not found")
    cases = find_autopet_iv_cases(source_dir)
    with staged_dataset(dataset_id, dataset_name, output_root) as stage:
        folder, images, labels, _ = stage
        prompts = {}
        for case in tqdm(cases, desc="autoPET IV", unit="case"):
            pet_info = _convert_case(source_dir, case, images, labels, with_ct)
            click_path = _click_file(click_dir, case)
            if click_path is not None:
                prompts[case] = parse_autopet_clicks(click_path, pet_info)
        tracers = {case: m["tracer"] for case, m in cases.items()}
        put_json(tracers, folder / "case_to_tracer.json")
        if click_dir is not None:
            put_json(prompts_document(prompts), folder / "prompts.json")
        write_dataset_json(
            folder, pet_ct_channels(with_ct), LABELS, len(cases),
            name=dataset_name, reference="https://autopet-iv.grand-challenge.org/ (FDG+PSMA release)",
            description="autoPET III/IV; channels reordered: _0000 = PET SUV (source _0001), _0001 = CT (source _0000)",
            tracer_per_case=tracers,
        )  # fmt: skip
        write_splits(folder, {case: m["patient"] for case, m in cases.items()})
    return stage.final


@cli_entry("seganypet_convert_autopet_iv")
def convert_entry(argv: list[str] | None = None) -> None:
    """``seganypet_convert_autopet_iv SOURCE [-d 224] [-o RAW_ROOT] [-c CLICK_DIR] [--no_ct]``."""
    import argparse

    parser = argparse.ArgumentParser(
        description="Convert the autoPET III/IV FDG+PSMA release (nnU-Net layout, CT=_0000, PET=_0001) to our order. "
        + CHANNEL_HELP + " Source _0001 (SUV) becomes _0000, source _0000 (CT) becomes _0001. Labels: 0 background, "
        "1 lesion. Tracer per case in case_to_tracer.json; splits grouped by patient hash."
    )  # fmt: skip
    parser.add_argument("source_dir", type=Path, help="[REQUIRED] release folder containing imagesTr/ and labelsTr/")
    add_common_arguments(parser, 224)
    parser.add_argument(
        "-c", type=Path, default=None,
        help="[OPTIONAL] folder of autoPET IV click JSONs (<case>.json or <case>_clicks.json, repository or "
        "grand-challenge form) → prompts.json (voxel i,j,k)",
    )  # fmt: skip
    parser.add_argument("--no_ct", action="store_true", help="[OPTIONAL] PET-only dataset (no _0001 CT channel)")
    args = parser.parse_args(argv)
    run_cli(convert_autopet_iv, args.source_dir, args.d, args.o, click_dir=args.c, with_ct=not args.no_ct)


if __name__ == "__main__":
    convert_entry()
