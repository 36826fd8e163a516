"""``seganypet_dicom_to_suv``: a PET DICOM series → one SUV NIfTI (float32) with the series' geometry.

Reading: ``dicom_series.py`` (pydicom, slices sorted along the normal, per-slice rescale). SUV factor: ``suv.py``
(QIBA vendor-neutral + Philips/GE/Siemens branches; SUVbw default, SUL by Janmahasatian, SUVbsa by Du Bois). Everything
is validated before anything is written; the output is written atomically, so a bad series leaves no file behind.
The output image is in ITK index order (x = column, y = row, z = along the slice normal) with LPS world geometry.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from seganypet_nnunet.dataset_conversion.common import ConversionError
from seganypet_nnunet.dataset_conversion.dicom_series import read_headers, read_series_volume
from seganypet_nnunet.dataset_conversion.suv import SUV_MODES, PatientOverride, suv_factor
from seganypet_nnunet.errors import cli_entry, reraise_as
from seganypet_nnunet.io_utils import write_image
from seganypet_nnunet.validation import check_spacing

#: Plausible patient values for ``--weight`` (kg) and ``--height`` (m).
WEIGHT_RANGE_KG = (0.5, 500.0)
HEIGHT_RANGE_M = (0.2, 2.8)


def check_patient_override(override: PatientOverride) -> None:
    """``--weight`` / ``--height`` finite and plausible (one line naming the flag, not a DICOM field)."""
    for flag, value, (low, high), unit in (
        ("--weight", override.weight_kg, WEIGHT_RANGE_KG, "kg"),
        ("--height", override.height_m, HEIGHT_RANGE_M, "m"),
    ):
        if value is not None and not (np.isfinite(value) and low <= value <= high):
            raise ConversionError(f"{flag} {value}: must be a number of {unit} between {low:g} and {high:g}")


def load_suv_series(
    dicom_dir: Path, mode: str = "bw", override: PatientOverride | None = None
) -> tuple[sitk.Image, dict]:
    """Read a PET DICOM series and return (SUV image float32, info dict with ``factor``, ``units``, ``delta_t_s``)."""
    override = override or PatientOverride()
    headers = read_headers(dicom_dir)
    modality = str(headers[0][1].get("Modality", "PT"))
    if modality != "PT":
        raise ConversionError(f"{headers[0][0]}: Modality is {modality!r}, expected PT")
    info = suv_factor(headers, mode, override)
    volume, _ = read_series_volume(headers)
    with reraise_as(ConversionError):
        check_spacing(volume.GetSpacing(), dicom_dir, "PET series")
    suv = sitk.Cast(volume * info["factor"], sitk.sitkFloat32)
    if not np.all(np.isfinite(sitk.GetArrayViewFromImage(suv))):
        raise ConversionError(f"{dicom_dir}: SUV volume holds non-finite values")
    return suv, info


def dicom_to_suv(dicom_dir: Path, out_path: Path, mode: str = "bw", override: PatientOverride | None = None) -> dict:
    """Convert ``dicom_dir`` (one series) to an SUV image at ``out_path`` (any SimpleITK format); return the info.

    Raises:
        ConversionError: a bad series or override (one line naming the file or flag).
        OutOfSpaceError: the output did not fit (one line naming the folder; nothing written).
    """
    if override is not None:
        check_patient_override(override)
    suv, info = load_suv_series(dicom_dir, mode, override)
    write_image(suv, out_path)
    return info


def check_output_file(out_path: Path, dicom_dir: Path) -> None:
    """``-o`` is not a folder and not inside the DICOM folder (it would join the series on the next run)."""
    out_path = Path(out_path)
    if out_path.is_dir():
        raise ConversionError(f"{out_path}: -o is a folder, expected an output image file such as SUV.nii.gz")
    if Path(dicom_dir).is_dir() and out_path.resolve().parent == Path(dicom_dir).resolve():
        raise ConversionError(f"{out_path}: -o must not be inside the DICOM folder -i")


@cli_entry("seganypet_dicom_to_suv")
def dicom_to_suv_entry(argv: list[str] | None = None) -> None:
    """``seganypet_dicom_to_suv -i DICOM_DIR -o OUT.nii.gz [--mode bw|lbm|bsa] [--weight KG] [--height M] [--sex]``."""
    import argparse

    parser = argparse.ArgumentParser(
        description="Convert one PET DICOM series to an SUV NIfTI (QIBA vendor-neutral algorithm; Units BQML, Philips "
        "CNTS, GML; DecayCorrection START/ADMIN; GE/Siemens post-processed series times). Use the output as channel "
        "_0000 named 'PET' (our planner: NoNormalization + in-network log1p; stock nnU-Net: per-case z-score)."
    )
    parser.add_argument("-i", type=Path, required=True, help="[REQUIRED] folder holding exactly one PET DICOM series")
    parser.add_argument("-o", type=Path, required=True, help="[REQUIRED] output image, e.g. SUV.nii.gz")
    parser.add_argument(
        "--mode",
        choices=SUV_MODES,
        default="bw",
        help="[OPTIONAL] bw = SUVbw (default), lbm = SUL (Janmahasatian LBM), bsa = SUVbsa (Du Bois)",
    )
    parser.add_argument("--weight", type=float, default=None, help="[OPTIONAL] patient weight in kg (overrides header)")
    parser.add_argument("--height", type=float, default=None, help="[OPTIONAL] patient height in m (lbm/bsa)")
    parser.add_argument("--sex", choices=("M", "F"), default=None, help="[OPTIONAL] patient sex (lbm)")
    args = parser.parse_args(argv)
    override = PatientOverride(args.weight, args.height, args.sex)
    check_patient_override(override)
    check_output_file(args.o, args.i)
    info = dicom_to_suv(args.i, args.o, args.mode, override)
    print(f"{args.o}: SUV{args.mode} factor {info['factor']:.6g} (Units {info['units']}, dt {info['delta_t_s']} s)")


if __name__ == "__main__":
    dicom_to_suv_entry()
