"""SegAnyPETSession (real nnU-Net preprocessing, real untrained tiny network) and follow.py on a synthetic tube."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from inference_data import shared_model
from scipy import ndimage

from seganypet_nnunet.inference import coordinates as C
from seganypet_nnunet.inference.follow import box_slices, centred_box, follow_object
from seganypet_nnunet.inference.revert import revert_full
from seganypet_nnunet.inference.session import SegAnyPETSession


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        raw, folder = shared_model(tmp_path_factory, mp)
        s = SegAnyPETSession.from_model_folder(folder, folds=(0,))
        s.set_image(str(raw / "imagesTs" / "test00_0000.nii.gz"))
        s.image_path = raw / "imagesTs" / "test00_0000.nii.gz"
        yield s


def test_follow_closes_tube_longer_than_patch():
    shape, patch = (24, 24, 150), (16, 16, 32)
    image = np.zeros(shape, np.float32)
    image[8:14, 9:15, 5:140] = 1.0  # tube 135 voxels long, > 4 patches
    image[2:5, 2:5, 60:70] = 1.0  # separate object: must stay out
    seed = (11, 12, 20)

    def segment_crop(box, prev):  # real thresholding; keeps components touching the seed or the previous mask
        crop = image[box_slices(box)] > 0.5
        lab, _ = ndimage.label(crop)
        keep = prev > 0
        local = tuple(s - a for s, (a, _) in zip(seed, box, strict=False))
        if all(0 <= v < n for v, n in zip(local, crop.shape, strict=False)):
            keep[local] = True
        ids = np.unique(lab[keep & crop])
        return np.where(np.isin(lab, ids[ids > 0]), 5.0, -5.0)

    logits = np.full(shape, -5.0, np.float32)
    visited = follow_object(segment_crop, logits, centred_box(seed, patch, shape), patch, max_crops=20)
    mask = logits > 0
    assert len(visited) > 4
    assert mask[8:14, 9:15, 5:140].all()
    assert mask.sum() == 6 * 6 * 135
    one = np.full(shape, -5.0, np.float32)  # a single crop cannot close it
    follow_object(segment_crop, one, centred_box(seed, patch, shape), patch, max_crops=1)
    assert (one > 0).sum() < mask.sum()


def test_click_undo_reset_and_cache(session):
    s = session
    s.new_target("a")
    m1 = s.add_point((12, 18, 20), space="voxel")
    assert m1.shape == sitk.GetArrayFromImage(sitk.ReadImage(str(s.image_path))).shape and m1.dtype == np.uint8
    n_cache = len(s._cache)
    m2 = s.add_point((13, 17, 21), positive=False, space="voxel")
    assert len(s._cache) == n_cache  # correction inside the crop reuses the cached embedding
    assert not np.array_equal(m1, m2)
    np.testing.assert_array_equal(s.undo(), m1)
    assert s.reset().sum() == 0 and s.mask().sum() == 0
    np.testing.assert_array_equal(s.add_point((12, 18, 20), space="voxel"), m1)  # deterministic after reset


def test_world_click_equals_voxel_click_and_mask_matches_nnunet_export(session):
    s = session
    s.new_target("w")
    s.reset()
    mv = s.add_point((12, 18, 20), space="voxel")
    s.reset()
    world = C.voxel_to_world([12, 18, 20], s.reference)
    mw = s.add_point(tuple(world), space="world")
    np.testing.assert_array_equal(mv, mw)
    t = s._targets["w"]
    full = revert_full(t.logits, s.geometry, s.model.configuration_manager, s.properties) > 0
    np.testing.assert_array_equal(mw, full.astype(np.uint8))  # region export == nnU-Net's whole-image export
    img = s.mask_image()
    ref = sitk.ReadImage(str(s.image_path))
    assert img.GetDirection() == pytest.approx(ref.GetDirection())
    assert img.GetSpacing() == pytest.approx(ref.GetSpacing())


def test_targets_are_separate_and_label_map(session):
    s = session
    s.new_target("t1")
    s.reset()
    m1 = s.add_point((6, 10, 10), space="voxel")
    s.new_target("t2")
    s.reset()
    s.add_point((16, 25, 30), space="voxel")
    np.testing.assert_array_equal(s.mask("t1"), m1)  # t2's prompts did not touch t1
    s.new_target("t1")
    assert s.current_target == "t1"
    labels, names = s.label_map()
    assert list(names.values())[-2:] == ["t1", "t2"]
    ids = {v: k for k, v in names.items()}
    assert ((labels == ids["t2"]) == (s.mask("t2") > 0)).all()


def test_mask_scribble_box_and_errors(session):
    s = session
    s.new_target("m")
    s.reset()
    want = np.zeros(s.array_shape, np.uint8)
    want[10:30, 12:28, 6:18] = 1
    got = s.add_mask(want)
    dice = 2 * (got & want).sum() / (got.sum() + want.sum())
    assert dice > 0.9
    s.add_scribble([[10, 15, 18], [12, 16, 19]], positive=False, space="voxel")
    s.add_box([5, 8, 10], [15, 20, 25], space="voxel")
    assert len(s._targets["m"].history) == 3
    with pytest.raises(ValueError, match="outside"):
        s.add_point((100, 0, 0), space="voxel")
    with pytest.raises(ValueError, match="3 finite"):
        s.add_point((1, 2), space="voxel")
    with pytest.raises(ValueError, match="space"):
        s.add_point((1, 2, 3), space="pixels")
    with pytest.raises(ValueError, match="mask shape"):
        s.add_mask(np.zeros((3, 3, 3)))
