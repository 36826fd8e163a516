"""SUV scale factors from PET DICOM headers (QIBA vendor-neutral pseudocode + vendor branches; pydicom only).

``SUV = (stored * RescaleSlope + RescaleIntercept)[slice] * factor`` with, for Units BQML (Bq/mL),
``factor = normaliser / (RadionuclideTotalDose * 2**(-Δt / RadionuclideHalfLife))`` (QIBA SUV pseudocode):

- normaliser: ``bw`` body weight [g] (default); ``lbm`` = SUL, lean body mass [g] by **Janmahasatian** (2005):
  male 9270·W/(6680+216·BMI), female 9270·W/(8780+244·BMI), W in kg, BMI = W/H² (H in m); ``bsa`` body surface area
  [cm²] by Du Bois: 0.007184·W^0.425·H_cm^0.725 m².
- Δt: DecayCorrection ADMIN → 0. START → scan time − injection time, where scan time is SeriesDate/Time if it is not
  after the earliest AcquisitionDate/Time, else (post-processed series) the GE private (0009,100D) "GEMS_PETD_01"
  datetime, else the Siemens private (0071,1022) "SIEMENS MI" datetime, else the earliest AcquisitionDate/Time.
  Injection time: RadiopharmaceuticalStartDateTime, else SeriesDate + RadiopharmaceuticalStartTime moved back one day
  if it falls after the scan (injection before midnight, scan after). A negative Δt is an error; NONE is refused.
- Units CNTS (Philips): the private SUV scale factor (7053,1000) gives SUVbw directly; without it, (7053,1009) converts
  to Bq/mL and the BQML path follows. Units GML: the data already is SUVbw (factor 1). For lbm/bsa on SUVbw data the
  factor is scaled by normaliser / weight[g]. Any other Units is refused. CorrectedImage must contain ATTN and DECY.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pydicom

from seganypet_nnunet.dataset_conversion.common import ConversionError
from seganypet_nnunet.dataset_conversion.dicom_series import required

SUV_MODES = ("bw", "lbm", "bsa")


@dataclass(frozen=True)
class PatientOverride:
    """Values that replace (or fill in) header fields; None = read from the header."""

    weight_kg: float | None = None
    height_m: float | None = None
    sex: str | None = None


def _private(ds: pydicom.Dataset, group: int, creator: str, element: int):
    """Value of a private element ``(group, xx<element>)`` reserved by ``creator``, or None."""
    try:
        return ds.get_private_item(group, element, creator).value
    except KeyError:
        return None


def parse_dt(date: str | None, time: str | None, path: Path, what: str) -> datetime:
    """DICOM DA + TM (or a DT in ``date`` with ``time=None``) → datetime; the UTC offset of a DT is ignored."""
    text = (str(date or "") + str(time or "")).strip().split("+")[0].split("-")[0]
    stem, _, fraction = text.partition(".")
    if len(stem) < 12 or not stem.isdigit():
        raise ConversionError(f"{path}: cannot read {what} date/time {text!r}")
    stem = stem.ljust(14, "0")
    value = datetime.strptime(stem[:14], "%Y%m%d%H%M%S")
    return value + timedelta(microseconds=int((fraction + "000000")[:6])) if fraction.isdigit() else value


def scan_datetime(headers: list[tuple[Path, pydicom.Dataset]]) -> datetime:
    """Scan reference time of a series (QIBA + GE/Siemens post-processing rules, see module docstring)."""
    path, first = headers[0]
    series = parse_dt(required(first, "SeriesDate", path), required(first, "SeriesTime", path), path, "Series")
    acquisition = min(
        parse_dt(required(ds, "AcquisitionDate", p), required(ds, "AcquisitionTime", p), p, "Acquisition")
        for p, ds in headers
    )
    if series <= acquisition:
        return series
    for group, creator, element in ((0x0009, "GEMS_PETD_01", 0x0D), (0x0071, "SIEMENS MI", 0x22)):
        value = _private(first, group, creator, element)
        if value:
            return parse_dt(str(value), None, path, f"private ({group:04X},10{element:02X})")
    return acquisition


def injection_datetime(ds: pydicom.Dataset, scan: datetime, path: Path) -> datetime:
    """Injection time from the first RadiopharmaceuticalInformationSequence item (midnight crossing handled)."""
    item = required(ds, "RadiopharmaceuticalInformationSequence", path)[0]
    if item.get("RadiopharmaceuticalStartDateTime"):
        return parse_dt(str(item.RadiopharmaceuticalStartDateTime), None, path, "RadiopharmaceuticalStartDateTime")
    injection = parse_dt(required(ds, "SeriesDate", path), required(item, "RadiopharmaceuticalStartTime", path), path,
                         "RadiopharmaceuticalStart")  # fmt: skip
    return injection - timedelta(days=1) if injection > scan else injection


def normaliser(ds: pydicom.Dataset, mode: str, override: PatientOverride, path: Path) -> tuple[float, float]:
    """(normaliser, weight in g): body weight [g], LBM [g] (Janmahasatian) or BSA [cm²] (Du Bois)."""
    if mode not in SUV_MODES:
        raise ConversionError(f"unknown SUV mode {mode!r}; valid: {', '.join(SUV_MODES)}")
    weight = override.weight_kg if override.weight_kg is not None else float(required(ds, "PatientWeight", path))
    if not weight > 0:
        raise ConversionError(f"{path}: PatientWeight (0010,1030) is {weight}; pass --weight KG")
    if mode == "bw":
        return weight * 1000.0, weight * 1000.0
    height = override.height_m if override.height_m is not None else float(required(ds, "PatientSize", path))
    if not 0.5 < height < 2.8:
        raise ConversionError(f"{path}: PatientSize (0010,1020) {height} m is implausible; pass --height M")
    if mode == "bsa":
        return 0.007184 * weight**0.425 * (height * 100.0) ** 0.725 * 1e4, weight * 1000.0
    sex = (override.sex or str(required(ds, "PatientSex", path))).upper()[:1]
    if sex not in ("M", "F"):
        raise ConversionError(f"{path}: PatientSex (0010,0040) {sex!r} is not M or F; pass --sex M|F")
    bmi = weight / height**2
    lbm = 9270.0 * weight / ((6680.0 + 216.0 * bmi) if sex == "M" else (8780.0 + 244.0 * bmi))
    return lbm * 1000.0, weight * 1000.0


def _decayed_dose(headers: list[tuple[Path, pydicom.Dataset]]) -> tuple[float, float]:
    """(dose decayed to the scan reference time [Bq], Δt [s])."""
    path, ds = headers[0]
    item = required(ds, "RadiopharmaceuticalInformationSequence", path)[0]
    dose = float(required(item, "RadionuclideTotalDose", path))
    half_life = float(required(item, "RadionuclideHalfLife", path))
    if not (dose > 0 and half_life > 0):
        raise ConversionError(f"{path}: RadionuclideTotalDose {dose} / RadionuclideHalfLife {half_life} must be > 0")
    correction = str(required(ds, "DecayCorrection", path)).upper()
    if correction == "ADMIN":
        return dose, 0.0
    if correction != "START":
        raise ConversionError(f"{path}: DecayCorrection (0054,1102) {correction!r} is not supported (START or ADMIN)")
    scan = scan_datetime(headers)
    delta = (scan - injection_datetime(ds, scan, path)).total_seconds()
    if delta < 0:
        raise ConversionError(f"{path}: scan time is {-delta:.0f} s before the injection time")
    return dose * math.pow(2.0, -delta / half_life), delta


def suv_factor(
    headers: list[tuple[Path, pydicom.Dataset]], mode: str = "bw", override: PatientOverride | None = None
) -> dict:
    """Factor turning rescaled pixel values into SUV; returns ``{"factor", "units", "delta_t_s", "method"}``.

    Raises ConversionError (naming the tag and the file) for missing/invalid tags, unsupported Units/DecayCorrection.
    """
    path, ds = headers[0]
    override = override or PatientOverride()
    for p, other in headers[1:]:
        for keyword in ("Units", "DecayCorrection", "PatientWeight"):
            if other.get(keyword) != ds.get(keyword):
                raise ConversionError(f"{p}: {keyword} differs from {path.name} within one series")
    units = str(required(ds, "Units", path)).upper()
    corrected = [str(v).upper() for v in required(ds, "CorrectedImage", path)]
    if "ATTN" not in corrected or "DECY" not in corrected:
        raise ConversionError(f"{path}: CorrectedImage (0028,0051) {corrected} lacks ATTN and/or DECY")
    norm, weight_g = normaliser(ds, mode, override, path)
    info = {"units": units, "mode": mode, "delta_t_s": None, "method": "QIBA vendor-neutral + vendor branches"}
    if units == "GML":
        return {**info, "factor": norm / weight_g}
    if units == "CNTS":
        suv_scale = _private(ds, 0x7053, "Philips PET Private Group", 0x00)
        if suv_scale is not None:
            return {**info, "factor": float(suv_scale) * norm / weight_g}
        bqml_scale = _private(ds, 0x7053, "Philips PET Private Group", 0x09)
        if bqml_scale is None:
            raise ConversionError(f"{path}: Units CNTS without Philips private tag (7053,1000) or (7053,1009)")
        dose, delta = _decayed_dose(headers)
        return {**info, "factor": float(bqml_scale) * norm / dose, "delta_t_s": delta}
    if units != "BQML":
        raise ConversionError(f"{path}: Units (0054,1001) {units!r} is not supported (BQML, CNTS, GML)")
    dose, delta = _decayed_dose(headers)
    return {**info, "factor": norm / dose, "delta_t_s": delta}
