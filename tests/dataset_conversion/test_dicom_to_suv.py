"""DICOM PET → SUV: one pydicom-written series per vendor branch, expected SUV computed by hand in the test.

The activity of every series is a slab of a synthetic generator PET (SUV around the liver) turned into Bq/mL with
``BQML_PER_SUV`` (the SUVbw factor of a scan 1 h after injection, inverted).
"""

from __future__ import annotations

import math
import subprocess

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from conversion_fixtures import AUTOPET_STUDIES, autopet_fdg_case
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from seganypet_nnunet.dataset_conversion.common import ConversionError
from seganypet_nnunet.dataset_conversion.dicom_to_suv import dicom_to_suv
from seganypet_nnunet.dataset_conversion.suv import PatientOverride
from seganypet_nnunet.synthetic import LABELS

SHAPE = (5, 10, 12)  # (slices, rows, columns)
ROW_COS, COL_COS = np.array([0.8, 0.6, 0.0]), np.array([-0.6, 0.8, 0.0])  # oblique in-plane orientation
PIXEL_SPACING = (2.5, 2.0)  # (between rows, between columns)
DZ, ORIGIN = 3.27, np.array([-100.0, 20.0, -400.0])
WEIGHT, HEIGHT, DOSE, HALF_LIFE = 72.0, 1.78, 350e6, 6586.2
F18_DECAY = lambda seconds: 2.0 ** (-seconds / HALF_LIFE)  # noqa: E731
BQML_PER_SUV = DOSE * F18_DECAY(3600.0) / (WEIGHT * 1000.0)


def _suv_slab(cases) -> np.ndarray:
    """A SHAPE (z, y, x) block of a generator PET (SUV) centred on the liver."""
    case = autopet_fdg_case(cases, next(iter(AUTOPET_STUDIES)), 0)
    centre = np.argwhere(case.label_array == LABELS["liver"]).mean(0).round().astype(int)
    lo = [int(np.clip(c - n // 2, 0, s - n)) for c, n, s in zip(centre, SHAPE, case.label_array.shape, strict=True)]
    slab = sitk.GetArrayFromImage(case.pet)[tuple(slice(a, a + n) for a, n in zip(lo, SHAPE, strict=True))]
    assert slab.shape == SHAPE and slab.min(axis=(1, 2)).max() > 0  # every slice carries uptake
    return slab.astype(np.float64)


@pytest.fixture
def activity(synthetic_cases) -> np.ndarray:
    """Bq/mL (or SUV for GML) activity, (z, y, x): the generator slab times ``BQML_PER_SUV``."""
    return _suv_slab(synthetic_cases) * BQML_PER_SUV


def write_series(folder, activity, *, units="BQML", decay="START", series_time="100000", acq_time="100000",
                 inj_time="090000", inj_datetime=None, series_date="20240102", acq_date=None, private=None,
                 drop=(), patch=None):  # fmt: skip
    """Write one PET series (shuffled file order, per-slice RescaleSlope) and return the rescaled values (z, y, x)."""
    folder.mkdir(parents=True)
    series_uid, normal = generate_uid(), np.cross(ROW_COS, COL_COS)
    stored_values = np.zeros_like(activity)
    for k in np.random.default_rng(1).permutation(SHAPE[0]):
        slope = float(activity[k].max()) / 30000.0 * (1.0 + 0.1 * k)  # differs per slice
        stored = np.round(activity[k] / slope).astype(np.int16)
        stored_values[k] = stored * slope
        ds = pydicom.Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.128"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
        ds.Modality, ds.SeriesInstanceUID, ds.InstanceNumber = "PT", series_uid, int(SHAPE[0] - k)
        ds.ImagePositionPatient = [float(v) for v in ORIGIN + k * DZ * normal]
        ds.ImageOrientationPatient = [float(v) for v in (*ROW_COS, *COL_COS)]
        ds.PixelSpacing, ds.SliceThickness = list(PIXEL_SPACING), DZ
        ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = SHAPE[1], SHAPE[2], 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelData = stored.tobytes()
        ds.RescaleSlope, ds.RescaleIntercept = f"{slope:.10g}", "0"
        stored_values[k] = stored * float(ds.RescaleSlope)
        ds.Units, ds.DecayCorrection, ds.CorrectedImage = units, decay, ["ATTN", "DECY", "SCAT"]
        ds.PatientWeight, ds.PatientSize, ds.PatientSex = WEIGHT, HEIGHT, "F"
        ds.SeriesDate, ds.SeriesTime = series_date, series_time
        ds.AcquisitionDate, ds.AcquisitionTime = acq_date or series_date, acq_time
        item = pydicom.Dataset()
        item.RadionuclideTotalDose, item.RadionuclideHalfLife = DOSE, HALF_LIFE
        item.RadiopharmaceuticalStartTime = inj_time
        if inj_datetime:
            item.RadiopharmaceuticalStartDateTime = inj_datetime
        ds.RadiopharmaceuticalInformationSequence = [item]
        for group, creator, element, vr, value in private or ():
            ds.private_block(group, creator, create=True).add_new(element, vr, value)
        for keyword in drop:
            for target in (ds, item):
                if keyword in target:
                    delattr(target, keyword)
        if patch:
            patch(ds, k)
        ds.save_as(folder / f"IM{k * 7919 % 1000:04d}.dcm", enforce_file_format=True)
    return stored_values


def _check(out, expected_suv):
    """Compare voxel values and geometry of the written SUV image with the hand-computed expectation."""
    img = sitk.ReadImage(str(out))
    assert img.GetSize() == (SHAPE[2], SHAPE[1], SHAPE[0])
    assert np.allclose(img.GetSpacing(), (PIXEL_SPACING[1], PIXEL_SPACING[0], DZ), atol=1e-4)
    assert np.allclose(img.GetOrigin(), ORIGIN, atol=1e-3)
    assert np.allclose(
        img.GetDirection(), np.stack([ROW_COS, COL_COS, np.cross(ROW_COS, COL_COS)], 1).ravel(), atol=1e-5
    )
    assert np.allclose(sitk.GetArrayFromImage(img), expected_suv, rtol=2e-6, atol=1e-6)
    # index (i, j, k) = (column, row, slice) lands at IPP + i*dx*row + j*dy*col + k*dz*n
    point = img.TransformIndexToPhysicalPoint((3, 2, 4))
    normal = np.cross(ROW_COS, COL_COS)
    assert np.allclose(point, ORIGIN + 3 * 2.0 * ROW_COS + 2 * 2.5 * COL_COS + 4 * DZ * normal, atol=1e-3)


BW_1H = WEIGHT * 1000.0 / (DOSE * F18_DECAY(3600.0))  # SUVbw factor when the scan is 1 h after injection
CASES = {
    "siemens_bqml_start": ({}, BW_1H),
    # GE post-processed series: SeriesTime after AcquisitionTime → private (0009,100D) scan datetime 10:00 is used
    "ge_bqml_private_time": ({"series_time": "113000", "acq_time": "100500",
                              "private": [(0x0009, "GEMS_PETD_01", 0x0D, "DT", "20240102100000")]}, BW_1H),
    # Siemens re-reconstruction without private tag: earliest AcquisitionTime (10:30) → 1.5 h
    "siemens_series_after_acq": ({"series_time": "120000", "acq_time": "103000"},
                                 WEIGHT * 1000.0 / (DOSE * F18_DECAY(5400.0))),
    "philips_cnts_suv_factor": ({"units": "CNTS", "private": [(0x7053, "Philips PET Private Group", 0x00, "DS",
                                                                "0.000728")]}, 0.000728),
    "philips_cnts_bqml_factor": ({"units": "CNTS", "private": [(0x7053, "Philips PET Private Group", 0x09, "DS",
                                                                 "2.5")]}, 2.5 * BW_1H),
    "gml_already_suv": ({"units": "GML"}, 1.0),
    "admin_decay_correction": ({"decay": "ADMIN"}, WEIGHT * 1000.0 / DOSE),
    "across_midnight": ({"series_date": "20240103", "series_time": "003000", "acq_time": "003000",
                         "inj_time": "233000"}, BW_1H),
    "start_datetime_preferred": ({"inj_datetime": "20240102083000", "inj_time": "000000"},
                                 WEIGHT * 1000.0 / (DOSE * F18_DECAY(5400.0))),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_suv_vendor_branches(tmp_path, name, activity):
    kwargs, factor = CASES[name]
    rescaled = write_series(tmp_path / "dcm", activity, **kwargs)
    info = dicom_to_suv(tmp_path / "dcm", tmp_path / "suv.nii.gz")
    assert info["factor"] == pytest.approx(factor, rel=1e-9)
    _check(tmp_path / "suv.nii.gz", rescaled * factor)


def test_suv_recovers_generator_slab(tmp_path, synthetic_cases, activity):
    """Round trip: generator SUV -> Bq/mL DICOM (int16 + per-slice slope) -> SUVbw equals the generator SUV."""
    write_series(tmp_path / "dcm", activity)
    dicom_to_suv(tmp_path / "dcm", tmp_path / "suv.nii.gz")
    slab = _suv_slab(synthetic_cases)
    out = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "suv.nii.gz")))
    assert np.allclose(out, slab, rtol=0, atol=1e-4 * slab.max())  # int16 quantisation only


def test_sul_janmahasatian_and_bsa_du_bois(tmp_path, activity):
    rescaled = write_series(tmp_path / "dcm", activity)
    bmi = WEIGHT / HEIGHT**2
    lbm_kg = 9270.0 * WEIGHT / (8780.0 + 244.0 * bmi)  # female
    info = dicom_to_suv(tmp_path / "dcm", tmp_path / "sul.nii.gz", mode="lbm")
    assert info["factor"] == pytest.approx(BW_1H * lbm_kg / WEIGHT, rel=1e-9)
    _check(tmp_path / "sul.nii.gz", rescaled * BW_1H * lbm_kg / WEIGHT)
    bsa_cm2 = 0.007184 * WEIGHT**0.425 * (HEIGHT * 100) ** 0.725 * 1e4
    info = dicom_to_suv(tmp_path / "dcm", tmp_path / "bsa.nii.gz", mode="bsa")
    assert info["factor"] == pytest.approx(bsa_cm2 / (DOSE * F18_DECAY(3600.0)), rel=1e-9)
    info = dicom_to_suv(tmp_path / "dcm", tmp_path / "w.nii.gz", override=PatientOverride(weight_kg=90.0))
    assert info["factor"] == pytest.approx(BW_1H * 90.0 / WEIGHT, rel=1e-9)


def _mixed_uid(ds, k):
    if k == 0:
        ds.SeriesInstanceUID = generate_uid()


def _unreadable(folder):
    (folder / "notes.txt").write_text("not dicom")


BAD = {
    "missing_weight": ({"drop": ("PatientWeight",)}, r"missing required DICOM tag PatientWeight \(0010,1030\)"),
    "missing_dose": ({"drop": ("RadionuclideTotalDose",)}, r"missing required DICOM tag RadionuclideTotalDose"),
    "missing_units": ({"drop": ("Units",)}, r"missing required DICOM tag Units \(0054,1001\)"),
    "missing_series_time": ({"drop": ("SeriesTime",)}, r"missing required DICOM tag SeriesTime"),
    "missing_half_life": ({"drop": ("RadionuclideHalfLife",)}, r"missing required DICOM tag RadionuclideHalfLife"),
    "unknown_units": ({"units": "PROPCNTS"}, r"Units \(0054,1001\) 'PROPCNTS' is not supported"),
    "cnts_without_private": ({"units": "CNTS"}, r"Units CNTS without Philips private tag"),
    "decay_none": ({"decay": "NONE"}, r"DecayCorrection \(0054,1102\) 'NONE' is not supported"),
    "scan_before_injection": ({"inj_datetime": "20240102110000"}, r"scan time is 3600 s before the injection"),
    "mixed_series": ({"patch": _mixed_uid}, r"2 series mixed \(SeriesInstanceUID"),
    "no_decy": ({"patch": lambda ds, k: setattr(ds, "CorrectedImage", ["ATTN"])}, r"lacks ATTN and/or DECY"),
    "zero_weight": ({"patch": lambda ds, k: setattr(ds, "PatientWeight", 0)}, r"PatientWeight \(0010,1030\) is 0"),
    "truncated_pixels": ({"patch": lambda ds, k: setattr(ds, "PixelData", ds.PixelData[:50])}, r"unreadable pixel"),
    "spacing_1000mm": ({"patch": lambda ds, k: setattr(ds, "PixelSpacing", [1000.0, 2.0])}, r"outside 0.1-20"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(BAD))
def test_bad_series_write_nothing(tmp_path, name, activity):
    kwargs, message = BAD[name]
    write_series(tmp_path / "dcm", activity, **kwargs)
    with pytest.raises(ConversionError, match=message) as err:
        dicom_to_suv(tmp_path / "dcm", tmp_path / "out" / "suv.nii.gz")
    text = str(err.value)
    assert "\n" not in text and ("IM" in text or "dcm" in text)  # names the file (or the series folder)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_unreadable_file_and_cli(tmp_path, activity):
    write_series(tmp_path / "dcm", activity)
    _unreadable(tmp_path / "dcm")
    proc = subprocess.run(["seganypet_dicom_to_suv", "-i", str(tmp_path / "dcm"), "-o", str(tmp_path / "x.nii.gz")],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 1 and "notes.txt: unreadable DICOM file" in proc.stderr
    assert not (tmp_path / "x.nii.gz").exists()
    (tmp_path / "dcm" / "notes.txt").unlink()
    proc = subprocess.run(["seganypet_dicom_to_suv", "-i", str(tmp_path / "dcm"), "-o", str(tmp_path / "x.nii.gz"),
                           "--mode", "lbm"], capture_output=True, text=True, check=True)  # fmt: skip
    assert "SUVlbm factor" in proc.stdout and (tmp_path / "x.nii.gz").is_file()
    assert math.isfinite(sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "x.nii.gz"))).sum())


@pytest.mark.parametrize("flag,value", [("--weight", "inf"), ("--weight", "-3"), ("--height", "nan")])
def test_override_flags_are_blamed_not_the_dicom_field(tmp_path, activity, flag, value):
    write_series(tmp_path / "dcm", activity)
    proc = subprocess.run(["seganypet_dicom_to_suv", "-i", str(tmp_path / "dcm"), "-o", str(tmp_path / "x.nii.gz"),
                           "--mode", "lbm", flag, value], capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"error: {flag} {float(value)}: must be a number" in proc.stderr and "(0010" not in proc.stderr
    assert not (tmp_path / "x.nii.gz").exists()


def test_full_disk_is_one_line_and_nothing_is_written(tmp_path, activity):
    from disk_full import MODE, left_in_full_folder, run_with_full_disk

    write_series(tmp_path / "dcm", activity)
    full = tmp_path / "full"
    done = run_with_full_disk(["seganypet_dicom_to_suv", "-i", tmp_path / "dcm", "-o", full / "suv.nii.gz"], full)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("seganypet_dicom_to_suv")]
    assert len(lines) == 1 and f"{full}: out of disk space (about" in lines[0] and "bytes needed" in lines[0], MODE
    assert left_in_full_folder(full) == [], MODE
