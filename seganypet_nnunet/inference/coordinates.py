"""Coordinate conversions between the spaces of docs/DESIGN.md (coordinate spaces table), the world-geometry
carrier (``geometry_reference``), prompt validation (``prompt_to_voxel``, with the one bounds rule ``inside_image`` of
``prompts/bounds.py``) and a mask's way into preprocessed space (``mask_to_preprocessed``).

Chain (forward = what nnU-Net's ``DefaultPreprocessor.run_case_npy`` does to the array, in that order)::

    world mm LPS (x, y, z)
      <-> original voxel, ITK index (i, j, k)          SimpleITK Transform*Point*/Transform*Index*
      <-> array (z, y, x)                              reversed axis order (sitk.GetArrayFromImage)
      <-> transposed, uncropped (P0, P1, P2)           transpose_forward
      <-> cropped, before resampling (P0, P1, P2)      minus the crop-to-non-zero bbox start
      <-> preprocessed voxel (P0, P1, P2)              resampling with align_corners=False at scale new/old shape

The resampling map is the one nnU-Net's resampling applies (skimage ``resize`` / its own separate-z
``map_coordinates``, both align_corners=False): input coordinate = (output + 0.5) * old/new - 0.5, with the new shape
from ``compute_new_shape`` (original spacing / target spacing, rounded). Voxel coordinates may be float; integer values
are voxel centres.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import SimpleITK as sitk
from nnunetv2.preprocessing.resampling.default_resampling import compute_new_shape

from seganypet_nnunet.prompts.bounds import inside_image


@dataclass(frozen=True)
class PreprocessingGeometry:
    """Everything needed to map array (z, y, x) <-> preprocessed voxel for one case.

    Attributes:
        transpose_forward: plans' axis permutation; preprocessed axis d is array axis ``transpose_forward[d]``.
        bbox: crop-to-non-zero box, [[start, stop), ...] per axis of the **transposed** array (nnU-Net's
            ``properties['bbox_used_for_cropping']``).
        shape_before_cropping: transposed array shape before cropping (nnU-Net's ``shape_before_cropping``).
        cropped_shape: shape after cropping, before resampling (transposed axis order).
        preprocessed_shape: spatial shape of the preprocessed array.
    """

    transpose_forward: tuple[int, int, int]
    bbox: tuple[tuple[int, int], tuple[int, int], tuple[int, int]]
    shape_before_cropping: tuple[int, int, int]
    cropped_shape: tuple[int, int, int]
    preprocessed_shape: tuple[int, int, int]

    @classmethod
    def from_properties(
        cls, properties: dict, transpose_forward: Sequence[int], target_spacing: Sequence[float]
    ) -> PreprocessingGeometry:
        """Build from the properties dict filled by ``DefaultPreprocessor.run_case(_npy)``.

        Args:
            properties: nnU-Net properties; ``spacing`` is in array order (z, y, x), the shapes and bbox in transposed
                array order.
            transpose_forward: ``plans_manager.transpose_forward``.
            target_spacing: ``configuration_manager.spacing`` (already transposed, 3 values).
        """
        tf = tuple(int(t) for t in transpose_forward)
        cropped = tuple(int(s) for s in properties["shape_after_cropping_and_before_resampling"])
        spacing_t = [properties["spacing"][t] for t in tf]
        new_shape = compute_new_shape(cropped, spacing_t, list(target_spacing))
        bbox = tuple((int(a), int(b)) for a, b in properties["bbox_used_for_cropping"])
        return cls(
            tf,
            bbox,
            tuple(int(s) for s in properties["shape_before_cropping"]),
            cropped,
            tuple(int(s) for s in new_shape),
        )

    @property
    def transpose_backward(self) -> tuple[int, int, int]:
        """Inverse permutation: array axis a is preprocessed axis ``transpose_backward[a]``."""
        return tuple(int(i) for i in np.argsort(self.transpose_forward))

    @property
    def scale(self) -> np.ndarray:
        """(3,) preprocessed voxels per cropped-original voxel, per preprocessed axis (new / old shape)."""
        return np.asarray(self.preprocessed_shape, float) / np.asarray(self.cropped_shape, float)


def geometry_reference(source: sitk.Image | sitk.ImageFileReader | dict) -> sitk.Image:
    """A 1-voxel image carrying the world geometry (origin, spacing, direction) of ``source``.

    Args:
        source: a ``sitk.Image``, a ``sitk.ImageFileReader`` after ``ReadImageInformation`` (header only), or nnU-Net
            SimpleITKIO properties (their ``sitk_stuff`` holds the ITK-order values).
    Returns:
        The carrier image; ``world_to_voxel`` / ``voxel_to_world`` accept it in place of the full image.
    """
    if isinstance(source, dict):
        stuff = source["sitk_stuff"]
        origin, spacing, direction = stuff["origin"], stuff["spacing"], stuff["direction"]
    else:
        origin, spacing, direction = source.GetOrigin(), source.GetSpacing(), source.GetDirection()
    ref = sitk.Image([1, 1, 1], sitk.sitkUInt8)
    ref.SetOrigin(tuple(float(v) for v in origin))
    ref.SetSpacing(tuple(float(v) for v in spacing))
    ref.SetDirection(tuple(float(v) for v in direction))
    return ref


def prompt_to_voxel(
    points_in_space: Sequence[float] | np.ndarray,
    space: str,
    reference: sitk.Image,
    size_ijk: Sequence[int],
    what: str,
    check: Sequence[int] | None = None,
) -> np.ndarray:
    """Validates prompt points and returns them as original voxel (i, j, k) (one conversion per point).

    Args:
        points_in_space: (3,) or (N, 3) in ``space`` ("world": mm LPS (x, y, z); "voxel": original ITK index (i, j, k)).
        reference: the image's geometry carrier (``geometry_reference``).
        size_ijk: image size, ITK order (i, j, k).
        what: prompt name for the error message (e.g. ``"add_point"``).
        check: rows to bounds-check with ``inside_image`` (default: all).
    Raises:
        ValueError: one line: not 3 finite numbers per point, unknown space, or a point outside the image.
    """
    arr = np.asarray(points_in_space, dtype=float)
    if arr.shape[-1:] != (3,) or arr.ndim > 2 or not np.isfinite(arr).all():
        raise ValueError(f"{what}: coordinate must be 3 finite numbers, got {points_in_space!r}")
    if space not in ("world", "voxel"):
        raise ValueError(f"{what}: space must be 'world' or 'voxel', got {space!r}")
    points_ijk = to_voxel(arr, space, reference)
    rows = list(check) if check is not None else list(range(len(np.atleast_2d(arr))))
    inside = inside_image(np.atleast_2d(points_ijk)[rows], size_ijk)
    if not inside.all():
        row = rows[int(np.argmin(inside))]
        raise ValueError(
            f"{what}: {list(np.atleast_2d(arr)[row])} ({space}) lies outside the image (voxel i,j,k "
            f"{list(np.atleast_2d(points_ijk)[row].round(2))}, size {list(size_ijk)})"
        )
    return points_ijk


def _as_points(points: Sequence[float] | np.ndarray) -> tuple[np.ndarray, bool]:
    arr = np.asarray(points, dtype=float)
    single = arr.ndim == 1
    arr = np.atleast_2d(arr)
    if arr.shape[-1] != 3:
        raise ValueError(f"coordinates must have 3 components per point, got shape {np.asarray(points).shape}")
    return arr, single


def world_to_voxel(points_xyz: Sequence[float] | np.ndarray, reference: sitk.Image) -> np.ndarray:
    """World mm LPS (x, y, z) -> original voxel ITK index (i, j, k), continuous.

    Args:
        points_xyz: (3,) or (N, 3) world points, LPS mm.
        reference: image (or ``geometry_reference``) carrying origin, spacing, direction.
    Returns:
        Same shape as the input, original voxel (i, j, k) floats.
    """
    arr, single = _as_points(points_xyz)
    out = np.array([reference.TransformPhysicalPointToContinuousIndex(tuple(p)) for p in arr], dtype=float)
    return out[0] if single else out


def voxel_to_world(points_ijk: Sequence[float] | np.ndarray, reference: sitk.Image) -> np.ndarray:
    """Original voxel ITK index (i, j, k), continuous -> world mm LPS (x, y, z). Shapes (3,) or (N, 3)."""
    arr, single = _as_points(points_ijk)
    out = np.array([reference.TransformContinuousIndexToPhysicalPoint(tuple(p)) for p in arr], dtype=float)
    return out[0] if single else out


def voxel_to_array(points_ijk: Sequence[float] | np.ndarray) -> np.ndarray:
    """Original voxel ITK index (i, j, k) -> array index (z, y, x) (axis reversal). Shapes (3,) or (N, 3)."""
    return np.asarray(points_ijk, dtype=float)[..., ::-1].copy()


def array_to_voxel(points_zyx: Sequence[float] | np.ndarray) -> np.ndarray:
    """Array index (z, y, x) -> original voxel ITK index (i, j, k) (axis reversal). Shapes (3,) or (N, 3)."""
    return np.asarray(points_zyx, dtype=float)[..., ::-1].copy()


def array_to_preprocessed(points_zyx: Sequence[float] | np.ndarray, geom: PreprocessingGeometry) -> np.ndarray:
    """Array index (z, y, x) of the original image -> preprocessed voxel (transposed, cropped, resampled).

    Args:
        points_zyx: (3,) or (N, 3), array order, voxel centres at integers.
        geom: the case's preprocessing geometry.
    Returns:
        Same shape, preprocessed voxel coordinates (float).
    """
    arr = np.asarray(points_zyx, dtype=float)
    transposed = arr[..., list(geom.transpose_forward)]
    cropped = transposed - np.array([b[0] for b in geom.bbox], float)
    return (cropped + 0.5) * geom.scale - 0.5


def preprocessed_to_array(points_pre: Sequence[float] | np.ndarray, geom: PreprocessingGeometry) -> np.ndarray:
    """Preprocessed voxel -> array index (z, y, x) of the original image (inverse of ``array_to_preprocessed``)."""
    arr = np.asarray(points_pre, dtype=float)
    cropped = (arr + 0.5) / geom.scale - 0.5
    transposed = cropped + np.array([b[0] for b in geom.bbox], float)
    return transposed[..., list(geom.transpose_backward)]


def voxel_to_preprocessed(points_ijk: Sequence[float] | np.ndarray, geom: PreprocessingGeometry) -> np.ndarray:
    """Original voxel ITK index (i, j, k) -> preprocessed voxel. Shapes (3,) or (N, 3)."""
    return array_to_preprocessed(voxel_to_array(points_ijk), geom)


def preprocessed_to_voxel(points_pre: Sequence[float] | np.ndarray, geom: PreprocessingGeometry) -> np.ndarray:
    """Preprocessed voxel -> original voxel ITK index (i, j, k). Shapes (3,) or (N, 3)."""
    return array_to_voxel(preprocessed_to_array(points_pre, geom))


def world_to_preprocessed(
    points_xyz: Sequence[float] | np.ndarray, reference: sitk.Image, geom: PreprocessingGeometry
) -> np.ndarray:
    """World mm LPS (x, y, z) -> preprocessed voxel. Shapes (3,) or (N, 3)."""
    return voxel_to_preprocessed(world_to_voxel(points_xyz, reference), geom)


def preprocessed_to_world(
    points_pre: Sequence[float] | np.ndarray, reference: sitk.Image, geom: PreprocessingGeometry
) -> np.ndarray:
    """Preprocessed voxel -> world mm LPS (x, y, z). Shapes (3,) or (N, 3)."""
    return voxel_to_world(preprocessed_to_voxel(points_pre, geom), reference)


def to_voxel(points: Sequence[float] | np.ndarray, space: str, reference: sitk.Image) -> np.ndarray:
    """Points in ``space`` ("world": mm LPS (x, y, z); "voxel": original ITK index (i, j, k)) -> original voxel.

    Raises:
        ValueError: unknown space name.
    """
    if space == "world":
        return world_to_voxel(points, reference)
    if space == "voxel":
        return np.asarray(points, dtype=float).copy()
    raise ValueError(f"space must be 'world' or 'voxel', got {space!r}")


def to_preprocessed(
    points: Sequence[float] | np.ndarray, space: str, reference: sitk.Image, geom: PreprocessingGeometry
) -> np.ndarray:
    """Points in ``space`` ("world": mm LPS (x, y, z); "voxel": original ITK index (i, j, k)) -> preprocessed voxel.

    Raises:
        ValueError: unknown space name.
    """
    return voxel_to_preprocessed(to_voxel(points, space, reference), geom)


def box_corners(corner_min: Sequence[float], corner_max: Sequence[float]) -> np.ndarray:
    """(8, 3) corners of the axis-aligned box spanned by two corners (same space and axis order as the input).

    Row 0 is ``corner_min`` and row 7 is ``corner_max``.
    """
    lo, hi = np.asarray(corner_min, float), np.asarray(corner_max, float)
    return np.array([[(lo, hi)[b >> d & 1][d] for d in range(3)] for b in range(8)])


def box_to_preprocessed(
    corner_min: Sequence[float],
    corner_max: Sequence[float],
    space: str,
    reference: sitk.Image,
    geom: PreprocessingGeometry,
) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned box given by two corners in ``space`` -> (min, max) corners in preprocessed voxel space.

    The 8 corners are mapped (a rotated direction matrix turns world boxes into oblique voxel boxes) and the
    axis-aligned hull is returned. Corners: world mm LPS (x, y, z) or original voxel (i, j, k), inclusive.
    """
    pre = to_preprocessed(box_corners(corner_min, corner_max), space, reference, geom)
    return pre.min(axis=0), pre.max(axis=0)


def mask_to_preprocessed(
    mask_zyx: np.ndarray, geom: PreprocessingGeometry, spacing_zyx: Sequence[float], configuration_manager
) -> np.ndarray:
    """A (z, y, x) mask of the original image -> bool mask in preprocessed voxel space (nnU-Net's label preprocessing).

    Same steps as nnU-Net applies to a segmentation: transpose by ``transpose_forward`` (-> transposed, uncropped),
    crop to ``geom.bbox`` (-> cropped, before resampling), resample with ``resampling_fn_seg`` to the preprocessed
    shape.

    Args:
        mask_zyx: array order (z, y, x), the original image's shape; non-zero = foreground.
        geom: the case's preprocessing geometry.
        spacing_zyx: original voxel spacing in array order (nnU-Net's ``properties["spacing"]``).
        configuration_manager: nnU-Net's configuration (``resampling_fn_seg``, target ``spacing``).
    Returns:
        bool array of shape ``geom.preprocessed_shape`` (preprocessed axes (P0, P1, P2)).
    """
    m = np.asarray(mask_zyx > 0, np.int8).transpose(geom.transpose_forward)[tuple(slice(a, b) for a, b in geom.bbox)]
    spacing_t = [spacing_zyx[i] for i in geom.transpose_forward]
    cm = configuration_manager
    pre = cm.resampling_fn_seg(m[None], list(geom.preprocessed_shape), spacing_t, list(cm.spacing))
    return np.asarray(pre)[0] > 0
