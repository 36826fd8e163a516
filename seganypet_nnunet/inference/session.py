"""SegAnyPETSession: SAM-predictor-style promptable segmentation on nnU-Net-preprocessed whole-body PET.

``session.set_image(...)`` runs nnU-Net's preprocessing once (transpose, crop to non-zero, resample, normalise); each
``add_*`` converts its prompt once to preprocessed voxel space, runs the decoder on a patch-size crop around it (the
image embedding of that crop is cached, so a correction click re-runs only the decoder), follows objects larger than one
crop (follow.py), and returns the current target's mask in the ORIGINAL image geometry: a (z, y, x) uint8 array
matching ``sitk.GetArrayFromImage`` (``mask_image()`` gives the SimpleITK image with the original geometry). Returned
masks are new arrays: keeping or writing into one never touches the session.

Spaces (docs/DESIGN.md): prompts come in world mm LPS (x, y, z) or original voxel (i, j, k); the session's logit
buffers live in preprocessed voxel space, axes (P0, P1, P2) = array axes (z, y, x) permuted by ``transpose_forward``.
Names along the click path say their space: ``*_ijk`` original voxel, ``*_zyx`` array, ``*_pre`` preprocessed voxel.
The outputs (``mask``, ``logits``, ``label_map``, ``to_image``) live in session_outputs.py, the argument checks in
session_checks.py.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import numpy as np
import SimpleITK as sitk
import torch

from seganypet_nnunet.inference import click_policy as P
from seganypet_nnunet.inference import coordinates as C
from seganypet_nnunet.inference import reader_region as RR
from seganypet_nnunet.inference.boxed import BoxedMask
from seganypet_nnunet.inference.crop_decoder import CropDecoder
from seganypet_nnunet.inference.follow import Box, centred_box, clip_box, follow_object
from seganypet_nnunet.inference.image_input import preprocess_image
from seganypet_nnunet.inference.model_folder import LoadedModel, load_model_folder
from seganypet_nnunet.inference.revert import BACKGROUND_LOGIT, RegionReverter
from seganypet_nnunet.inference.session_checks import (
    check_box_corners,
    check_mask_values,
    check_points,
    check_positive,
    read_image_checked,
)
from seganypet_nnunet.inference.session_outputs import SessionOutputs
from seganypet_nnunet.inference.target import Target
from seganypet_nnunet.inference.undo import UndoHistory, pack
from seganypet_nnunet.validation import check_path_name

DEFAULT_UNDO_DEPTH = 32
DEFAULT_UNDO_BYTES = 64 * 2**20


class SegAnyPETSession(SessionOutputs):
    """Interactive session over one image; several named targets, each with its own prompts and undo history.

    Coordinates passed to ``add_*`` are world mm LPS (x, y, z) (``space="world"``) or original voxel ITK index
    (i, j, k) (``space="voxel"``); a prompt must lie inside the image (``coordinates.inside_image``). Returned masks
    are (z, y, x) uint8 arrays in the original geometry, independent of the session's buffers.

    Args:
        model: a loaded model folder.
        device: torch device for the networks.
        follow: follow targets larger than one crop into neighbouring crops.
        max_crops: most crops one interaction may run (with ``follow``).
        cache_size: image embeddings (one per crop) kept in memory.
        undo_depth: undo steps kept per target (older ones are dropped).
        undo_bytes: compressed bytes of undo data kept per target (older steps are dropped first).
        click_policy: what a click means on PET around the network (``click_policy.py``; ``ClickPolicy.off()`` for
            the bare network).
    """

    def __init__(
        self,
        model: LoadedModel,
        device: str | torch.device = "cpu",
        follow: bool = True,
        max_crops: int = 8,
        cache_size: int = 16,
        undo_depth: int = DEFAULT_UNDO_DEPTH,
        undo_bytes: int = DEFAULT_UNDO_BYTES,
        click_policy: P.ClickPolicy = P.DEFAULT_POLICY,
    ) -> None:
        UndoHistory(undo_depth, undo_bytes)  # validates the bounds now, not at the first target
        self.model = model
        self.device = torch.device(device)
        self.networks = model.fold_networks(self.device)
        self.patch = tuple(int(p) for p in model.configuration_manager.patch_size)
        self.follow, self.max_crops, self.cache_size = follow, max_crops, cache_size
        self._decoder = CropDecoder(self.networks, self.patch, self.device, cache_size)
        self.undo_depth, self.undo_bytes = undo_depth, undo_bytes
        self.click_policy = click_policy
        self.max_points = int(getattr(getattr(self.networks[0], "config", None), "max_points", 64))
        # SamMed3DNet: the first crop is centred on the click and zero-padded outside the image (upstream's CropOrPad)
        self._centred_crops = bool(getattr(self.networks[0], "centred_crops", False))
        # set by set_image
        self.properties: dict | None = None
        self.geometry: C.PreprocessingGeometry | None = None
        self.reference: sitk.Image | None = None
        self.image_size_ijk: tuple[int, int, int] | None = None  #: original voxel (i, j, k) size
        self._reverter: RegionReverter | None = None
        self._suv: np.ndarray | None = None  # (z, y, x) first channel, original geometry (the PET prior's SUV)
        self._targets: OrderedDict[str, Target] = OrderedDict()
        self._current: str | None = None

    @classmethod
    def from_model_folder(
        cls,
        folder: str | Path,
        folds: Sequence[int | str] = (0,),
        checkpoint: str = "checkpoint_final.pth",
        device: str | torch.device = "cpu",
        *,
        trusted: bool = False,
        **kwargs,
    ) -> SegAnyPETSession:
        """Session from an nnU-Net model folder (``Trainer__Plans__cfg``); several folds average their logits.

        Checkpoints are read with ``weights_only=True``; ``trusted=True`` opts in to the full unpickler for a file
        from a source you trust (``checkpoint_io.load_checkpoint``).
        """
        return cls(load_model_folder(folder, folds, checkpoint, trusted=trusted), device=device, **kwargs)

    # ------------------------------------------------------------------------------------------------ image
    def set_image(self, image, properties: dict | None = None) -> None:
        """Preprocess an image once with nnU-Net's DefaultPreprocessor and the plans; clears targets and cache.

        Args:
            image: a file path, a list of per-channel file paths (``_0000``, ``_0001``...), a ``sitk.Image``, or
                ``(array, geometry)`` with array (z, y, x) or (c, z, y, x) and geometry a ``sitk.Image``.
            properties: with a raw (c, z, y, x) array only: nnU-Net SimpleITKIO properties instead of a geometry.
        Raises:
            ValueError: unreadable or truncated file, NaN/Inf voxels, wrong shape or channel count (one line).
        """
        m = self.model
        data, props = read_image_checked(image, properties, m.plans_manager)
        self._suv = np.array(data[0], np.float32)  # read_image: (c, z, y, x), original geometry
        data, props = preprocess_image((data, props), None, m.plans_manager, m.configuration_manager, m.dataset_json)
        self._decoder.set_data(torch.from_numpy(np.ascontiguousarray(data)).float())
        self.properties = props
        self.geometry = C.PreprocessingGeometry.from_properties(
            props, m.plans_manager.transpose_forward, m.configuration_manager.spacing
        )
        self.reference = C.geometry_reference(props)
        self.image_size_ijk = self.array_shape[::-1]
        self._reverter = RegionReverter(self.geometry, m.configuration_manager, props)
        self._targets.clear()
        self._current = None

    def _require_image(self) -> None:
        if not self._decoder.has_data:
            raise RuntimeError("An image must be set with set_image(...) before adding prompts.")

    # ---------------------------------------------------------------------------------------------- targets
    @property
    def targets(self) -> list[str]:
        """Target names in creation order (label ids 1..K in ``label_map``)."""
        return list(self._targets)

    @property
    def current_target(self) -> str | None:
        """Name of the target later prompts apply to (None before the first one)."""
        return self._current

    def new_target(self, name: str) -> None:
        """Start (or switch to) target ``name``; later prompts apply to it."""
        self._require_image()
        check_path_name(name, field="new_target: target name")  # it names files (CASE__<target>.nii.gz)
        if name not in self._targets:
            self._targets[name] = self._new_target_state(name)
        self._current = name

    def _new_target_state(self, name: str) -> Target:
        return Target(name, UndoHistory(self.undo_depth, self.undo_bytes))

    def _get(self, name: str | None, what: str) -> Target:
        """Target ``name`` (default: the current one); ValueError naming the known targets if there is none."""
        if name is not None and name not in self._targets:
            raise ValueError(f"{what}: unknown target {name!r}; known targets: {list(self._targets)}")
        return self._targets[name] if name is not None else self._target()

    def _target(self) -> Target:
        self._require_image()
        if self._current is None:  # prompts before any new_target(): a default target
            self.new_target("target_1")
        return self._targets[self._current]

    # ---------------------------------------------------------------------------------------------- prompts
    def add_point(self, coord: Sequence[float], positive: bool = True, space: str = "world") -> np.ndarray:
        """Click at ``coord`` (world mm LPS (x, y, z) or original voxel (i, j, k) per ``space``); returns the mask."""
        check_positive(positive, "add_point")
        click_ijk = self._to_ijk(coord, space, "add_point")
        click_pre = C.voxel_to_preprocessed(click_ijk, self.geometry)
        label = int(bool(positive))
        t, click_zyx = self._target(), C.voxel_to_array(np.asarray(click_ijk, float).reshape(3))
        check_points(t, [label], self.max_points, "add_point")
        if t.reader is not None and self.click_policy.reader_corrections:
            spacing_zyx, current_zyx = self.properties["spacing"], self.mask() > 0
            moved = RR.correct(self._suv, t.reader, current_zyx, click_zyx, bool(label), spacing_zyx, self.click_policy)
            if moved is not None:  # the reader's region follows the click; else the network takes it
                return self._set_region(t, moved[1], moved[0], [(click_pre, label)])
        region_zyx, prior_pre, focal = None, None, False
        if label and t.logits is None and self.click_policy.pet_prior:
            region_zyx, prior_pre, focal = self._pet_prior(click_zyx)
            t.logits = None if prior_pre is None else prior_pre.copy()  # the network writes into t.logits in place
        mask_zyx = self._interact(centre_pre=click_pre, points_pre=[(click_pre, label)])
        if region_zyx is not None and self.click_policy.prior_answer:
            if P.prior_is_answer(region_zyx, mask_zyx > 0, self._suv, focal, self.click_policy):
                t.logits = prior_pre  # the reader's region is the answer
                if P.agreement(region_zyx, mask_zyx > 0) < self.click_policy.reader_max_agreement:  # network unsure
                    spacing_zyx, fraction = self.properties["spacing"], self.click_policy.prior_fraction
                    t.reader = RR.start(self._suv, click_zyx, spacing_zyx, fraction, region_zyx)
                self._refresh_mask(t, [tuple((0, n) for n in self.geometry.preprocessed_shape)])
                return self.mask()
        return mask_zyx

    def _set_region(self, t: Target, region_zyx: np.ndarray, reader: RR.ReaderRegion, points_pre: list) -> np.ndarray:
        """One undo step: ``t``'s answer becomes the bool (z, y, x) ``region_zyx`` of the reader-region state
        ``reader``, with ``points_pre`` [(preprocessed voxel (P0, P1, P2), label)] added; returns the mask."""
        full = tuple((0, n) for n in self.geometry.preprocessed_shape)
        t.record([full])
        t.points += points_pre
        t.reader, t.logits = reader, self._region_logits(region_zyx)
        self._refresh_mask(t, [full])
        return self.mask()

    def _region_logits(self, mask_zyx: np.ndarray) -> np.ndarray:
        """A (z, y, x) mask of the original image as float32 logits (+-``BACKGROUND_LOGIT``), preprocessed space."""
        cm = self.model.configuration_manager
        mask_pre = C.mask_to_preprocessed(np.asarray(mask_zyx), self.geometry, self.properties["spacing"], cm)
        return np.where(mask_pre, -BACKGROUND_LOGIT, BACKGROUND_LOGIT).astype(np.float32)

    def _pet_prior(self, click_zyx: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None, bool]:
        """The reader's region of a hot first click (original array index (z, y, x)): (bool (z, y, x) region in the
        original image, the same as preprocessed logits, whether it is a well-delineated focus
        (``ClickPolicy.prior_contrast``)); (None, None, False) when there is no prior."""
        spacing_zyx = self.properties["spacing"]
        region_zyx = P.pet_prior(self._suv, click_zyx, spacing_zyx, self.click_policy)
        if region_zyx is None:
            return None, None, False
        focal = P.is_focus(self._suv, region_zyx, click_zyx, self.click_policy)
        return region_zyx, self._region_logits(region_zyx), focal

    def add_box(self, corner_min: Sequence[float], corner_max: Sequence[float], space: str = "world") -> np.ndarray:
        """Box from two inclusive corners (world mm LPS (x, y, z) or original voxel (i, j, k)); one per target."""
        lo, hi = check_box_corners(corner_min, corner_max, space, "add_box")  # in ``space``
        corners_ijk = self._to_ijk(C.box_corners(lo, hi), space, "add_box", check=(0, 7))
        corners_pre = C.voxel_to_preprocessed(corners_ijk, self.geometry)
        lo_pre, hi_pre = corners_pre.min(axis=0), corners_pre.max(axis=0)
        return self._interact(centre_pre=(lo_pre + hi_pre) / 2, box_pre=(lo_pre, hi_pre))

    def add_scribble(self, scribble, positive: bool = True, space: str = "voxel") -> np.ndarray:
        """Scribble as (N, 3) points in ``space`` or as a mask (z, y, x) in the original geometry; one undo step.

        A mask scribble is thinned to at most half the points the model accepts.
        """
        check_positive(positive, "add_scribble")
        t = self._target()
        if isinstance(scribble, np.ndarray) and scribble.ndim == 3:
            points_zyx = np.argwhere(scribble > 0)
            if not len(points_zyx):
                raise ValueError("add_scribble: the scribble mask is empty")
            keep = np.linspace(0, len(points_zyx) - 1, min(len(points_zyx), self.max_points // 2)).round().astype(int)
            points_pre = C.array_to_preprocessed(points_zyx[keep].astype(float), self.geometry)
        else:
            points_in_space = np.atleast_2d(np.asarray(scribble, float))
            points_pre = C.voxel_to_preprocessed(self._to_ijk(points_in_space, space, "add_scribble"), self.geometry)
        label = int(bool(positive))
        check_points(t, [label] * len(points_pre), self.max_points, "add_scribble")
        return self._interact(centre_pre=points_pre.mean(axis=0), points_pre=[(pt, label) for pt in points_pre])

    def add_mask(self, mask: np.ndarray) -> np.ndarray:
        """Set the current target's mask from a (z, y, x) array in the original geometry (no network run)."""
        check_mask_values(mask, "add_mask")
        t, g, shape = self._target(), self.geometry, np.asarray(mask).shape
        if shape != self.array_shape:
            raise ValueError(f"add_mask: mask shape {shape} != image shape (z, y, x) {self.array_shape}")
        full = tuple((0, n) for n in g.preprocessed_shape)
        t.record([full])
        t.mask_prompt, t.reader = True, None
        t.logits = self._region_logits(mask)
        self._refresh_mask(t, [full])
        return self.mask()

    def undo(self) -> np.ndarray:
        """Revert the current target's last interaction; returns its mask (unchanged if there is nothing to undo)."""
        t = self._target()
        boxes = t.undo()
        if boxes is not None:
            self._refresh_mask(t, boxes)
        return self.mask()

    def reset(self) -> np.ndarray:
        """Forget every prompt (and the undo history) of the current target; returns the (empty) mask."""
        t = self._target()
        self._targets[t.name] = self._new_target_state(t.name)
        return self.mask()

    @property
    def undo_steps(self) -> int:
        """Undo steps held for the current target (at most ``undo_depth``)."""
        return len(self._target().history)

    @property
    def undo_nbytes(self) -> int:
        """Compressed bytes of undo data held for the current target (at most ``undo_bytes``)."""
        return self._target().history.nbytes

    @property
    def cached_crops(self) -> int:
        """Image embeddings (one per crop) currently cached."""
        return self._decoder.cached

    def clear_cache(self) -> None:
        """Forget the cached image embeddings (the next interaction re-runs the encoder)."""
        self._decoder.clear()

    # ---------------------------------------------------------------------------------------------- internals
    def _to_ijk(self, points_in_space, space: str, what: str, check: Sequence[int] | None = None) -> np.ndarray:
        """Validated points (``space``: world (x, y, z) or original voxel (i, j, k)) as original voxel (i, j, k)."""
        self._require_image()
        return C.prompt_to_voxel(points_in_space, space, self.reference, self.image_size_ijk, what, check)

    def _interact(
        self, centre_pre: np.ndarray, points_pre: list | None = None, box_pre: tuple | None = None
    ) -> np.ndarray:
        """Applies new prompts to the current target and re-segments around ``centre_pre``; one undo step.

        Args:
            centre_pre: (3,) preprocessed voxel (P0, P1, P2) the first crop is centred on (unless the last crop
                already holds it well inside and no new box is given).
            points_pre: new [(point (3,) preprocessed voxel, label 1/0)].
            box_pre: new (min, max) corners in preprocessed voxel space, replacing the target's box.
        Returns:
            The target's (z, y, x) mask in the original geometry.
        """
        t, g = self._target(), self.geometry
        margin = np.array(self.patch) // 8
        inside = t.crop is not None and all(  # no margin needed where the crop side is the image border
            (a == 0 or a + m <= c) and (b == n or c <= b - 1 - m)
            for (a, b), c, m, n in zip(t.crop, centre_pre, margin, g.preprocessed_shape, strict=True)
        )
        clamp = not self._centred_crops
        first_crop_pre = (
            t.crop if (inside and box_pre is None) else centred_box(centre_pre, self.patch, g.preprocessed_shape, clamp)
        )
        visited = self._segment(t, first_crop_pre, points_pre or [], box_pre)
        self._refresh_mask(t, visited)
        return self.mask()

    def _segment(self, t: Target, first_crop_pre: Box, points_pre: list, box_pre: tuple | None) -> list[Box]:
        """Runs ``follow_object`` from ``first_crop_pre``; the undo step saves the blocks the crops overwrite."""
        state = t.state()
        t.reader = None  # a network step leaves the reader's-region mode
        correction = t.has_positive_prompt() and t.logits is not None
        t.points += points_pre
        if box_pre is not None:
            t.box = box_pre
        if t.logits is None:
            t.logits = np.full(self.geometry.preprocessed_shape, BACKGROUND_LOGIT, np.float32)
        old: list[tuple[Box, bytes]] = []
        prev_shape = self.geometry.preprocessed_shape

        def segment(crop_pre: Box, prev: np.ndarray) -> np.ndarray:
            old.append((clip_box(crop_pre, prev_shape), pack(prev)))  # prev: the buffer content this crop overwrites
            return self._decoder.decode(crop_pre, t.points, t.box, prev)

        local = correction and points_pre and self.click_policy.local_corrections
        logits_before = t.logits.copy() if local else None
        visited = follow_object(segment, t.logits, first_crop_pre, self.patch, self.max_crops if self.follow else 1)
        t.logits = P.apply_to_step(t.logits, logits_before, points_pre, t.points, visited, self.click_policy)
        t.crop = first_crop_pre
        t.push(state, old)
        return visited

    def _refresh_mask(self, t: Target, boxes: list) -> None:
        """Re-export the original-space mask where ``boxes`` (preprocessed voxel space) may have changed it."""
        if t.logits is None:
            t.mask_t = None
            return
        if t.mask_t is None:
            t.mask_t = BoxedMask(self.geometry.shape_before_cropping)
            boxes = [tuple((0, n) for n in self.geometry.preprocessed_shape)]
        self._reverter.update_mask(t.mask_t, t.logits, boxes)
        t.compact(BACKGROUND_LOGIT)
