"""Reading PET for the viewer (one-line errors), window presets and the label-names JSON path."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from seganypet_nnunet.errors import SeganypetError
from seganypet_nnunet.napari_plugin import pet_io


def test_read_file_and_errors(tmp_path):
    img = sitk.GetImageFromArray(np.arange(60, dtype=np.int16).reshape(3, 4, 5))
    img.SetSpacing((2.0, 3.0, 4.0))
    sitk.WriteImage(img, str(tmp_path / "pet.nrrd"))
    out, source = pet_io.read_pet(tmp_path / "pet.nrrd")
    assert out.GetPixelID() == sitk.sitkFloat32 and out.GetSpacing() == (2.0, 3.0, 4.0) and source == "pet.nrrd"
    with pytest.raises(SeganypetError, match="no such file"):
        pet_io.read_pet(tmp_path / "missing.nii.gz")
    (tmp_path / "broken.nii.gz").write_bytes(b"not an image")
    with pytest.raises(SeganypetError, match="cannot read"):
        pet_io.read_pet(tmp_path / "broken.nii.gz")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(SeganypetError, match="unsupported"):
        pet_io.read_pet(tmp_path / "notes.txt")
    (tmp_path / "dicom").mkdir()
    with pytest.raises(SeganypetError, match="DICOM"):
        pet_io.read_pet(tmp_path / "dicom")


def test_window_and_json_path(tmp_path):
    assert pet_io.window("SUV 0-5", np.zeros(3)) == (0.0, 5.0)
    assert pet_io.window("min-max", np.array([1.0, 7.0])) == (1.0, 7.0)
    with pytest.raises(SeganypetError):
        pet_io.window("lung", np.zeros(3))
    assert pet_io.label_json_path(tmp_path / "a.b.nii.gz") == tmp_path / "a.b.json"
    assert pet_io.label_json_path(tmp_path / "seg.mha") == tmp_path / "seg.json"
