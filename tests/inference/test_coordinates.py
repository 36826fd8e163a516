"""World <-> original voxel <-> preprocessed voxel through real nnU-Net preprocessing (rotated, anisotropic images)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from inference_data import DIRECTION, make_image, shared_model

from seganypet_nnunet.inference import coordinates as C
from seganypet_nnunet.inference.image_input import preprocess_image
from seganypet_nnunet.inference.model_folder import load_model_folder


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        _, folder = shared_model(tmp_path_factory, mp)
        yield load_model_folder(folder)


def _ramp_case(m, spacing):
    """Image whose value is an affine function of the world point (inside a non-zero box); NoNormalization plans."""
    pet, _ = make_image(7, spacing=spacing)
    arr = sitk.GetArrayFromImage(pet)
    zyx = np.argwhere(np.ones(arr.shape, bool))
    world = C.voxel_to_world(C.array_to_voxel(zyx), pet)
    ramp = (5.0 + 0.02 * world[:, 0] - 0.03 * world[:, 1] + 0.01 * world[:, 2]).reshape(arr.shape)
    arr = np.where(arr > 0, ramp, 0).astype(np.float32)
    data, props = preprocess_image((arr, pet), None, m.plans_manager, m.configuration_manager, m.dataset_json)
    geom = C.PreprocessingGeometry.from_properties(
        props, m.plans_manager.transpose_forward, m.configuration_manager.spacing
    )
    return pet, arr, data[0], props, geom


def test_world_voxel_round_trip_rotated():
    pet, _ = make_image(0)
    assert pet.GetDirection() == pytest.approx(DIRECTION)
    ijk = np.array([[0, 0, 0], [3.25, 7.5, 11.0], [23, 35, 39]], float)
    world = C.voxel_to_world(ijk, pet)
    np.testing.assert_allclose(world[1], pet.TransformContinuousIndexToPhysicalPoint(tuple(ijk[1])))
    np.testing.assert_allclose(C.world_to_voxel(world, C.geometry_reference(pet)), ijk, atol=1e-9)
    # a step along i moves spacing_x mm along the rotated first direction column
    step = C.voxel_to_world([1, 0, 0], pet) - C.voxel_to_world([0, 0, 0], pet)
    np.testing.assert_allclose(step, 3.0 * np.array(DIRECTION).reshape(3, 3)[:, 0], atol=1e-9)


@pytest.mark.parametrize("spacing", [(3.0, 2.0, 2.0), (2.5, 1.7, 2.2)])
def test_preprocessed_round_trip_and_values(model, spacing):
    pet, arr, pre, props, geom = _ramp_case(model, spacing)
    assert geom.transpose_forward == (2, 0, 1)  # x (largest spacing) first
    assert any(a > 0 for a, _ in geom.bbox)  # crop-to-non-zero offset is exercised
    assert pre.shape == geom.preprocessed_shape
    rng = np.random.default_rng(0)
    ijk = rng.uniform(2, np.array(pet.GetSize()) - 3, (20, 3))
    world = C.voxel_to_world(ijk, pet)
    q = C.world_to_preprocessed(world, pet, geom)
    np.testing.assert_allclose(C.preprocessed_to_world(q, pet, geom), world, atol=1e-6)
    np.testing.assert_allclose(C.preprocessed_to_voxel(C.voxel_to_preprocessed(ijk, geom), geom), ijk, atol=1e-9)
    # the preprocessed value at integer voxels equals the ramp at the world point we map them to
    inner = np.argwhere(np.ones(pre.shape, bool))
    inner = inner[((inner >= 3) & (inner <= np.array(pre.shape) - 4)).all(1)]
    pick = inner[rng.choice(len(inner), 30, replace=False)]
    w = C.preprocessed_to_world(pick.astype(float), pet, geom)
    expect = 5.0 + 0.02 * w[:, 0] - 0.03 * w[:, 1] + 0.01 * w[:, 2]
    np.testing.assert_allclose(pre[tuple(pick.T)], expect, atol=2e-3)


def test_array_voxel_orders_and_box(model):
    pet, _, _, _, geom = _ramp_case(model, (2.5, 1.7, 2.2))
    np.testing.assert_array_equal(C.voxel_to_array([1, 2, 3]), [3, 2, 1])
    lo, hi = C.box_to_preprocessed([2, 3, 4], [10, 12, 14], "voxel", pet, geom)
    corners = C.voxel_to_preprocessed(np.array([[2, 3, 4], [10, 12, 14]], float), geom)
    np.testing.assert_allclose(lo, corners.min(0))
    np.testing.assert_allclose(hi, corners.max(0))
    with pytest.raises(ValueError, match="space"):
        C.to_preprocessed([1, 2, 3], "pixels", pet, geom)
