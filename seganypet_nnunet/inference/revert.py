"""Preprocessed-space logits -> original image geometry, the way nnU-Net's export reverts preprocessing.

nnU-Net's export (``convert_predicted_logits_to_segmentation_with_correct_shape``): resample the logits to the cropped
shape with ``configuration_manager.resampling_fn_probabilities``, paste into the uncropped (transposed) array at
``bbox_used_for_cropping``, transpose back. ``revert_full`` does exactly that. ``RegionReverter`` recomputes only the
voxels a click can have changed, with the same interpolation (align_corners=False, edge clamping; linear, or nearest
along nnU-Net's separate-z axis) written as separable 1-D interpolation, so a click costs a crop, not the whole body.
"""

from __future__ import annotations

import numpy as np
from nnunetv2.preprocessing.resampling.default_resampling import ANISO_THRESHOLD, determine_do_sep_z_and_axis
from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager

from seganypet_nnunet.inference.coordinates import PreprocessingGeometry

BACKGROUND_LOGIT = -10.0
_REGION_FN = "resample_data_or_seg_to_shape"


def _spacings(properties: dict, cm: ConfigurationManager, geom: PreprocessingGeometry) -> tuple[list, list]:
    original = [properties["spacing"][t] for t in geom.transpose_forward]
    return list(cm.spacing), original


def revert_full(
    logits_pre: np.ndarray, geom: PreprocessingGeometry, cm: ConfigurationManager, properties: dict
) -> np.ndarray:
    """(P0, P1, P2) logits in preprocessed voxel space -> (z, y, x) logits in the original array (nnU-Net's export).

    Voxels outside the crop-to-non-zero box get ``BACKGROUND_LOGIT``.
    """
    current, original = _spacings(properties, cm, geom)
    res = cm.resampling_fn_probabilities(
        logits_pre[None].astype(np.float32), list(geom.cropped_shape), current, original
    )
    res = np.asarray(res)[0]
    full = np.full(geom.shape_before_cropping, BACKGROUND_LOGIT, dtype=np.float32)
    full[tuple(slice(a, b) for a, b in geom.bbox)] = res
    return full.transpose(geom.transpose_backward)


class RegionReverter:
    """Recomputes the original-space logits of the voxels whose value depends on a preprocessed box.

    Works in the **transposed, uncropped** array (axes (P0, P1, P2), nnU-Net's ``shape_before_cropping``); callers
    transpose back.
    """

    def __init__(self, geom: PreprocessingGeometry, cm: ConfigurationManager, properties: dict) -> None:
        self.geom = geom
        current, original = _spacings(properties, cm, geom)
        kwargs = dict(cm.configuration.get("resampling_fn_probabilities_kwargs", {}))
        self.exact = cm.configuration.get("resampling_fn_probabilities") == _REGION_FN and kwargs.get("order", 3) <= 1
        self.order = int(kwargs.get("order", 1))
        sep, axis = determine_do_sep_z_and_axis(
            kwargs.get("force_separate_z"),
            current,
            original,
            kwargs.get("separate_z_anisotropy_threshold", ANISO_THRESHOLD),
        )
        order_z = int(kwargs.get("order_z", 0))
        self.axis_order = [self.order] * 3
        if sep and axis is not None:
            self.axis_order[int(axis[0])] = order_z
        self.identity = tuple(geom.cropped_shape) == tuple(geom.preprocessed_shape)

    def cropped_region(self, box_pre: tuple) -> tuple[tuple[int, int], ...]:
        """Cropped-space (transposed, before resampling) box whose voxels sample inside ``box_pre`` (+1 margin)."""
        out = []
        for (a, b), scale, n in zip(box_pre, self.geom.scale, self.geom.cropped_shape, strict=True):
            lo = int(np.floor((a - 1 + 0.5) / scale - 0.5)) - 1
            hi = int(np.ceil((b + 0.5) / scale - 0.5)) + 2
            out.append((max(lo, 0), min(hi, int(n))))
        return tuple(out)

    def resample_region(self, logits_pre: np.ndarray, region: tuple) -> np.ndarray:
        """Logits of the cropped-space ``region`` (transposed axis order), interpolated from ``logits_pre``."""
        if self.identity:
            return logits_pre[tuple(slice(a, b) for a, b in region)].astype(np.float32)
        plan, src_slices = [], []
        axes = zip(region, self.geom.scale, self.geom.preprocessed_shape, self.axis_order, strict=True)
        for (a, b), scale, n_src, order in axes:
            src = np.clip((np.arange(a, b) + 0.5) * scale - 0.5, 0, n_src - 1)
            if order == 0:
                i0 = i1 = np.clip(np.floor(src + 0.5).astype(int), 0, n_src - 1)
            else:
                i0 = np.floor(src).astype(int)
                i1 = np.minimum(i0 + 1, n_src - 1)
            lo, hi = int(i0.min()), int(i1.max()) + 1
            src_slices.append(slice(lo, hi))
            plan.append((i0 - lo, i1 - lo, (src - np.floor(src)).astype(np.float32) if order else None))
        block = logits_pre[tuple(src_slices)].astype(np.float32)
        # separable 1-D passes: linear (or nearest on nnU-Net's separate-z axis), align_corners=False, edge clamped
        for axis, (i0, i1, w) in enumerate(plan):
            if w is None:
                block = np.take(block, i0, axis=axis)
                continue
            shape = [1, 1, 1]
            shape[axis] = -1
            w = w.reshape(shape)
            block = np.take(block, i0, axis=axis) * (1 - w) + np.take(block, i1, axis=axis) * w
        return block

    def update_mask(self, mask_t: np.ndarray, logits_pre: np.ndarray, boxes: list) -> None:
        """Rewrites ``mask_t`` (uint8, transposed uncropped space) where preprocessed ``boxes`` of ``logits_pre``
        may have changed it: logits > 0, resampled exactly like nnU-Net's export."""
        for box in boxes:
            region = self.cropped_region(box)
            block = self.resample_region(logits_pre, region) > 0
            dst = tuple(slice(a + o, b + o) for (a, b), (o, _) in zip(region, self.geom.bbox, strict=True))
            mask_t[dst] = block
