"""validation.py: names that become paths, spacing range and stored NIfTI pixdim (issue 24 items 2 and 3)."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import SimpleITK as sitk

from seganypet_nnunet.errors import SeganypetError
from seganypet_nnunet.validation import check_output_folder, check_path_name, check_spacing, read_header


@pytest.mark.parametrize("name", ["Lesion", "case_001", "a.b-c+d", "liver 2", "x" * 200])
def test_plain_names_pass_unchanged(name):
    assert check_path_name(name, field="--name") == name


@pytest.mark.parametrize(
    "name,problem",
    [
        ("../../../../escaped", "may not start with '.'"),
        ("a/../../b", "path separator"),
        ("/abs/path", "path separator"),
        ("a\\b", "path separator"),
        ("", "is empty"),
        ("   ", "is empty"),
        (".", "may not start with '.'"),
        ("..", "may not start with '.'"),
        (".hidden", "may not start with '.'"),
        ("tab\there", "control characters"),
        ("nul\x00", "control characters"),
        ("-rf", "may not start with '-'"),
        ("x" * 201, "at most 200"),
    ],
)
def test_names_that_would_escape_or_hide_are_one_line(name, problem):
    with pytest.raises(SeganypetError, match="^--name") as err:
        check_path_name(name, field="--name")
    assert problem in str(err.value) and "\n" not in str(err.value)


def test_a_non_string_name_is_refused():
    with pytest.raises(SeganypetError, match="expected a name"):
        check_path_name(3, field="case id")


@pytest.mark.parametrize("spacing", [(0.0, 1.0, 1.0), (1000.0, 2.0, 2.0), (np.nan, 1, 1), (np.inf, 1, 1), (0.05, 1, 1)])
def test_spacing_outside_the_pet_range_names_file_and_spacing(spacing):
    with pytest.raises(SeganypetError, match=r"^pet.nii.gz: image spacing \(.*\) mm is outside 0.1-20 mm"):
        check_spacing(spacing, "pet.nii.gz")


def _write(tmp_path, spacing=(2.0, 2.0, 3.0), name="img.nii.gz"):
    img = sitk.GetImageFromArray(np.ones((4, 5, 6), np.float32))
    img.SetSpacing(spacing)
    path = tmp_path / name
    sitk.WriteImage(img, str(path))
    return path


def test_read_header_refuses_1000_mm_and_a_stored_pixdim_of_0(tmp_path):
    assert read_header(_write(tmp_path)).GetSpacing() == (2.0, 2.0, 3.0)
    with pytest.raises(SeganypetError, match=r"img.nii.gz: image spacing \(1000, 2, 3\) mm"):
        read_header(_write(tmp_path, (1000.0, 2.0, 3.0)))
    path = _write(tmp_path)
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:80] + struct.pack("<f", 0.0) + raw[84:]))
    assert sitk.ReadImage(str(path)).GetSpacing()[0] == 1.0  # what SimpleITK would silently use
    with pytest.raises(SeganypetError, match=r"img.nii.gz: image header pixdim spacing \(0, 2, 3\) mm"):
        read_header(path)


def test_output_folder_on_a_read_only_file_system_is_one_line(tmp_path):
    import subprocess
    import sys

    from disk_full import CAN_MOUNT

    if not CAN_MOUNT:
        pytest.skip("cannot mount here (unshare -m)")
    ro = tmp_path / "ro"
    ro.mkdir()
    code = (
        "import sys; from seganypet_nnunet.validation import check_output_folder as c\n"
        "try:\n    c(sys.argv[1], {})\nexcept Exception as e:\n    print(type(e).__name__, e); sys.exit(1)"
    )
    script = f"mount -t tmpfs -o ro tmpfs '{ro}' && '{sys.executable}' -c '{code}' '{ro}/out'"
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True)
    assert done.returncode == 1 and f"SeganypetError {ro}: -o is not writable" in done.stdout, done
    assert check_output_folder(tmp_path / "fine", {}) == tmp_path / "fine"
