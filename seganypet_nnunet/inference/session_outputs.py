"""What ``SegAnyPETSession`` hands out: a target's mask (and as a SimpleITK image), its logits, and the label map of all
targets; a base class of the session, so these stay its methods.

Space: masks and label maps are the ORIGINAL image's array, (z, y, x), matching ``sitk.GetArrayFromImage``; images
carry the original geometry (origin, spacing, direction); logits are preprocessed voxel space, axes (P0, P1, P2).
Everything returned is a new array: keeping or writing into one never touches the session.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import SimpleITK as sitk

from seganypet_nnunet.inference import coordinates as C
from seganypet_nnunet.inference.revert import BACKGROUND_LOGIT
from seganypet_nnunet.inference.target import Target


class SessionOutputs:
    """Output methods of ``SegAnyPETSession``; they read the session state named below (set by ``set_image``) and
    find a target with the session's ``_get(name, what)`` (``name`` None: the current target)."""

    geometry: C.PreprocessingGeometry | None
    reference: sitk.Image | None
    _targets: OrderedDict[str, Target]

    @property
    def array_shape(self) -> tuple[int, int, int]:
        """Original image shape in array order (z, y, x)."""
        g = self.geometry
        return tuple(int(s) for s in np.array(g.shape_before_cropping)[list(g.transpose_backward)])

    def logits(self, name: str | None = None) -> np.ndarray | None:
        """Copy of target ``name``'s (default: current) logits, (P0, P1, P2) preprocessed voxel space; None if none."""
        t = self._get(name, "logits")
        out = None if t.logits is None else t.logits.copy()
        t.compact(BACKGROUND_LOGIT)
        return out

    def mask(self, name: str | None = None) -> np.ndarray:
        """(z, y, x) uint8 mask of target ``name`` (default: current) in the original geometry; a new array."""
        t = self._get(name, "mask")
        if t.mask_t is None:
            return np.zeros(self.array_shape, np.uint8)
        return t.mask_t.full().transpose(self.geometry.transpose_backward).copy(order="C")

    def to_image(self, array: np.ndarray) -> sitk.Image:
        """A (z, y, x) array as a SimpleITK image with the original geometry (origin, spacing, direction)."""
        img = sitk.GetImageFromArray(array)
        img.SetOrigin(self.reference.GetOrigin())
        img.SetSpacing(self.reference.GetSpacing())
        img.SetDirection(self.reference.GetDirection())
        return img

    def mask_image(self, name: str | None = None) -> sitk.Image:
        """Target mask as a SimpleITK image with the original geometry."""
        return self.to_image(self.mask(name))

    def label_map(self) -> tuple[np.ndarray, dict[int, str]]:
        """(z, y, x) uint8/uint16 label map with ids 1..K in target order (later targets win overlaps), and names."""
        out = np.zeros(self.array_shape, np.uint8 if len(self._targets) < 255 else np.uint16)
        names = {}
        for i, name in enumerate(self._targets, start=1):
            out[self.mask(name) > 0] = i
            names[i] = name
        return out, names
