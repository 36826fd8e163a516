"""Viewer data coordinates (array index (z, y, x)) -> ITK voxel index (i, j, k); boxes drawn on a slice."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from seganypet_nnunet.errors import SeganypetError
from seganypet_nnunet.napari_plugin import mapping


def test_scale_is_spacing_in_array_order():
    img = sitk.Image(4, 5, 6, sitk.sitkFloat32)
    img.SetSpacing((3.0, 2.0, 1.5))
    assert mapping.layer_scale(img) == (1.5, 2.0, 3.0)


def test_click_rounds_to_the_voxel_drawn_and_reverses_axes():
    assert mapping.data_to_voxel((5.4, 2.6, 0.49), (10, 20, 30)) == (0, 3, 5)
    with pytest.raises(SeganypetError, match="outside"):
        mapping.data_to_voxel((10.0, 0.0, 0.0), (10, 20, 30))
    with pytest.raises(SeganypetError, match="outside"):
        mapping.data_to_voxel((0.0, -0.6, 0.0), (10, 20, 30))


def test_box_on_axial_and_coronal_slices_extended_in_depth():
    shape, spacing = (40, 30, 20), (4.0, 2.0, 1.0)  # (z, y, x)
    axial = np.array([[10, 5, 3], [10, 5, 8], [10, 12, 8], [10, 12, 3]], float)
    assert mapping.rectangle_to_box(axial, 16.0, spacing, shape) == ((3, 5, 8), (8, 12, 12))  # +-2 slices of 4 mm
    coronal = np.array([[2, 7, 1], [2, 7, 25], [30, 7, 25], [30, 7, 1]], float)  # x clipped to 19
    assert mapping.rectangle_to_box(coronal, 0.0, spacing, shape) == ((1, 7, 2), (19, 7, 30))
    with pytest.raises(SeganypetError, match="one slice"):
        mapping.rectangle_to_box(np.array([[0, 0, 0], [1, 1, 1]], float), 0.0, spacing, shape)
    with pytest.raises(SeganypetError, match="outside"):
        mapping.rectangle_to_box(axial + [0, 100, 0], 0.0, spacing, shape)
