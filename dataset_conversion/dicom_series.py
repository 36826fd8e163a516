"""Read one DICOM image series with pydicom into a float volume with its geometry (no SUV logic here).

Slices are ordered by the projection of ImagePositionPatient on the slice normal (row × column cosine of
ImageOrientationPatient), never by file name or InstanceNumber. RescaleSlope/RescaleIntercept are applied **per slice**.
The returned SimpleITK image has ITK index order (x = column, y = row, z = slice along the normal), spacing
(PixelSpacing[1], PixelSpacing[0], slice distance) in mm, origin = IPP of the first slice and direction columns
(row cosine, column cosine, normal), all in DICOM patient (LPS) world coordinates.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.errors import InvalidDicomError

from seganypet_nnunet.dataset_conversion.common import ConversionError
from seganypet_nnunet.errors import one_line

TAG_NUMBERS = {
    "SeriesInstanceUID": "(0020,000E)", "ImagePositionPatient": "(0020,0032)", "ImageOrientationPatient": "(0020,0037)",
    "PixelSpacing": "(0028,0030)", "RescaleSlope": "(0028,1053)", "Units": "(0054,1001)",
    "DecayCorrection": "(0054,1102)", "CorrectedImage": "(0028,0051)", "PatientWeight": "(0010,1030)",
    "PatientSize": "(0010,1020)", "PatientSex": "(0010,0040)", "SeriesDate": "(0008,0021)", "SeriesTime": "(0008,0031)",
    "AcquisitionDate": "(0008,0022)", "AcquisitionTime": "(0008,0032)",
    "RadiopharmaceuticalInformationSequence": "(0054,0016)", "RadionuclideTotalDose": "(0018,1074)",
    "RadionuclideHalfLife": "(0018,1075)", "RadiopharmaceuticalStartTime": "(0018,1072)", "PixelData": "(7FE0,0010)",
}  # fmt: skip


def required(ds: pydicom.Dataset, keyword: str, path: Path | str):
    """``ds.<keyword>``; raise ConversionError naming the tag and the file if it is absent or empty."""
    value = ds.get(keyword, None)
    if value is None or (isinstance(value, (str, bytes, list, pydicom.sequence.Sequence)) and len(value) == 0):
        raise ConversionError(f"{path}: missing required DICOM tag {keyword} {TAG_NUMBERS.get(keyword, '')}".rstrip())
    return value


def read_headers(dicom_dir: Path) -> list[tuple[Path, pydicom.Dataset]]:
    """Read every DICOM file under ``dicom_dir`` (recursive, hidden files and DICOMDIR skipped), one series only."""
    dicom_dir = Path(dicom_dir)
    if not dicom_dir.is_dir():
        raise ConversionError(f"{dicom_dir}: DICOM folder not found")
    files = sorted(
        p for p in dicom_dir.rglob("*") if p.is_file() and not p.name.startswith(".") and p.name != "DICOMDIR"
    )
    if not files:
        raise ConversionError(f"{dicom_dir}: no files found")
    headers = []
    for path in files:
        try:
            headers.append((path, pydicom.dcmread(path)))
        except (InvalidDicomError, OSError, EOFError, ValueError) as err:
            raise ConversionError(f"{path}: unreadable DICOM file ({type(err).__name__})") from None
    uids = {}
    for path, ds in headers:
        uids.setdefault(str(required(ds, "SeriesInstanceUID", path)), path)
    if len(uids) > 1:
        first, second = list(uids.values())[:2]
        raise ConversionError(
            f"{dicom_dir}: {len(uids)} series mixed (SeriesInstanceUID of {first.name} != {second.name})"
        )
    return headers


def _orientation(headers: list[tuple[Path, pydicom.Dataset]]) -> np.ndarray:
    """3×3 matrix with columns (row cosine, column cosine, normal); the same for every slice."""
    first_path, first = headers[0]
    iop = np.array(required(first, "ImageOrientationPatient", first_path), dtype=float)
    for path, ds in headers[1:]:
        if not np.allclose(np.array(required(ds, "ImageOrientationPatient", path), dtype=float), iop, atol=1e-4):
            raise ConversionError(f"{path}: ImageOrientationPatient differs from {first_path.name}")
    row, col = iop[:3], iop[3:]
    return np.stack([row, col, np.cross(row, col)], axis=1)


def read_series_volume(headers: list[tuple[Path, pydicom.Dataset]]) -> tuple[sitk.Image, list]:
    """Stack the slices (per-slice rescale applied) into a float64 image; return it and the headers in slice order.

    Returns:
        image: values ``stored * RescaleSlope + RescaleIntercept`` per slice, geometry as in the module docstring.
        ordered: ``(path, dataset)`` pairs sorted along the slice normal (array index z).
    """
    direction = _orientation(headers)
    positions = [np.array(required(ds, "ImagePositionPatient", p), dtype=float) for p, ds in headers]
    along = np.array([pos @ direction[:, 2] for pos in positions])
    order = np.argsort(along, kind="stable")
    gaps = np.diff(along[order])
    if len(gaps) and np.min(gaps) < 1e-3:
        raise ConversionError(f"{headers[order[int(np.argmin(gaps))]][0]}: two slices share one position")
    if len(gaps) and not np.allclose(gaps, gaps.mean(), rtol=1e-2, atol=1e-2):
        raise ConversionError(
            f"{headers[0][0].parent}: slice spacing not uniform ({gaps.min():.3f}-{gaps.max():.3f} mm)"
        )
    ordered = [headers[i] for i in order]
    slices = []
    for path, ds in ordered:
        required(ds, "PixelData", path)
        slope = float(required(ds, "RescaleSlope", path))
        try:
            pixels = ds.pixel_array
        except (ValueError, AttributeError, RuntimeError, NotImplementedError) as err:  # short PixelData, codecs
            raise ConversionError(f"{path}: unreadable pixel data ({one_line(err)})") from None
        slices.append(pixels.astype(np.float64) * slope + float(ds.get("RescaleIntercept", 0.0)))
    if len({s.shape for s in slices}) > 1:
        raise ConversionError(f"{ordered[0][0].parent}: slices have different Rows/Columns")
    first_path, first = ordered[0]
    row_spacing, col_spacing = (float(v) for v in required(first, "PixelSpacing", first_path))
    image = sitk.GetImageFromArray(np.stack(slices))
    image.SetSpacing((col_spacing, row_spacing, float(gaps.mean()) if len(gaps) else 1.0))
    image.SetOrigin(tuple(positions[order[0]]))
    image.SetDirection(tuple(direction.flatten()))
    return image, ordered
