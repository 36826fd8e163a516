"""The session API refuses what the command line refuses (issue 24 item 7): positive='no', NaN mask prompts, an
all-zero image, out-of-range spacing, unsafe target names, zero-volume world boxes."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from inference_data import new_session, shared_model

from seganypet_nnunet.errors import SeganypetError
from seganypet_nnunet.inference.session_checks import check_box_corners, check_mask_values, check_points, check_positive
from seganypet_nnunet.inference.target import Target
from seganypet_nnunet.inference.undo import UndoHistory


@pytest.mark.parametrize("value", [True, False, np.bool_(True), 0, 1])
def test_positive_accepts_bools(value):
    check_positive(value, "add_point")


@pytest.mark.parametrize("value", ["no", "yes", 2, -1, None, 0.5])
def test_positive_refuses_anything_else(value):
    with pytest.raises(SeganypetError, match="add_point: positive must be True or False"):
        check_positive(value, "add_point")


def test_mask_values():
    check_mask_values(np.zeros((2, 2, 2), bool), "add_mask")
    with pytest.raises(SeganypetError, match="add_mask: mask holds 8 NaN/Inf"):
        check_mask_values(np.full((2, 2, 2), np.nan, np.float32), "add_mask")
    with pytest.raises(SeganypetError, match="numeric"):
        check_mask_values(np.array([["a"]]), "add_mask")


def test_points_need_a_positive_prompt_first_and_fit_the_model():
    target = Target("lesion", UndoHistory(4, 2**20))
    with pytest.raises(ValueError, match="add_point: target 'lesion' has no positive prompt yet"):
        check_points(target, [0], 2, "add_point")
    check_points(target, [1, 0], 2, "add_scribble")
    target.points += [(np.zeros(3), 1), (np.ones(3), 0)]
    check_points(target, [0], 3, "add_point")  # a positive click is there now
    with pytest.raises(ValueError, match="would have 3 points; the model accepts at most 2"):
        check_points(target, [1], 2, "add_point")


def test_box_corners():
    lo, hi = check_box_corners((1, 2, 3), [4, 5, 6], "voxel", "add_box")
    assert lo.dtype == hi.dtype == float and list(lo) == [1, 2, 3] and list(hi) == [4, 5, 6]
    check_box_corners((1, 2, 3), (1, 5, 6), "voxel", "add_box")  # one voxel thick: a voxel box may be flat
    with pytest.raises(ValueError, match="3 finite numbers"):
        check_box_corners((1, 2), (4, 5, 6), "world", "add_box")
    with pytest.raises(ValueError, match=r"exceeds max .* on axis 1 \(world\)"):
        check_box_corners((1, 9, 3), (4, 5, 6), "world", "add_box")
    with pytest.raises(ValueError, match="zero-volume box, min equals max on axis 0"):
        check_box_corners((4, 2, 3), (4, 5, 6), "world", "add_box")


def test_session_refuses_what_the_command_line_refuses(model, tmp_path, monkeypatch):
    shared_model(None, monkeypatch)
    raw, folder = model
    image = sorted((raw / "imagesTs").glob("*_0000.nii.gz"))[0]
    s = new_session(folder, image)
    s.new_target("lesion")
    with pytest.raises(ValueError, match="positive must be True or False, got 'no'"):
        s.add_point([12, 18, 20], positive="no", space="voxel")
    with pytest.raises(ValueError, match="mask holds .* NaN"):
        s.add_mask(np.full(s.array_shape, np.nan, np.float32))
    with pytest.raises(ValueError, match="zero-volume box"):
        s.add_box([0.0, 0.0, 0.0], [0.0, 30.0, 30.0], space="world")
    with pytest.raises(ValueError, match="target name '../x'"):
        s.new_target("../x")
    assert s.targets == ["lesion"]

    img = sitk.ReadImage(str(image))
    zero = sitk.Image(img.GetSize(), img.GetPixelID())
    zero.CopyInformation(img)
    sitk.WriteImage(zero, str(tmp_path / "zero_0000.nii.gz"))
    with pytest.raises(ValueError, match="all zero"):
        s.set_image(str(tmp_path / "zero_0000.nii.gz"))
    img.SetSpacing((1000.0, *img.GetSpacing()[1:]))
    sitk.WriteImage(img, str(tmp_path / "far_0000.nii.gz"))
    with pytest.raises(ValueError, match="spacing .* outside 0.1-20 mm"):
        s.set_image(str(tmp_path / "far_0000.nii.gz"))
