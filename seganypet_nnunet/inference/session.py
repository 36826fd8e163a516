"""SegAnyPETSession: SAM-predictor-style promptable segmentation on nnU-Net-preprocessed whole-body PET.

``session.set_image(...)`` runs nnU-Net's preprocessing once (crop to non-zero, transpose, resample, normalise); each
``add_*`` converts its prompt to preprocessed voxel space, runs the decoder on a patch-size crop around it (the image
embedding of that crop is cached, so a correction click re-runs only the decoder), follows objects larger than one
crop (follow.py), and returns the current target's mask in the ORIGINAL image geometry: a (z, y, x) uint8 array
matching ``sitk.GetArrayFromImage`` (``mask_image()`` gives the SimpleITK image with the original geometry).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import SimpleITK as sitk
import torch

from seganypet_nnunet.inference import coordinates as C
from seganypet_nnunet.inference.follow import Box, box_slices, centred_box, follow_object
from seganypet_nnunet.inference.image_input import preprocess_image
from seganypet_nnunet.inference.model_folder import LoadedModel, load_model_folder
from seganypet_nnunet.inference.revert import BACKGROUND_LOGIT, RegionReverter
from seganypet_nnunet.prompts.types import Prompts


@dataclass
class _Target:
    """One target: prompts in preprocessed voxel space, its logit buffer and its undo history."""

    name: str
    points: list[tuple[np.ndarray, int]] = field(default_factory=list)
    box: tuple[np.ndarray, np.ndarray] | None = None
    crop: Box | None = None
    logits: np.ndarray | None = None  # (Z', Y', X') float32, preprocessed voxel space
    mask_t: np.ndarray | None = None  # uint8, transposed uncropped array space (nnU-Net shape_before_cropping)
    history: list[tuple] = field(default_factory=list)


class SegAnyPETSession:
    """Interactive session over one image; several named targets, each with its own prompts.

    Coordinates passed to ``add_*`` are world mm LPS (x, y, z) (``space="world"``) or original voxel ITK index
    (i, j, k) (``space="voxel"``). Returned masks are (z, y, x) uint8 arrays in the original geometry.
    """

    def __init__(
        self,
        model: LoadedModel,
        device: str | torch.device = "cpu",
        follow: bool = True,
        max_crops: int = 8,
        cache_size: int = 16,
    ) -> None:
        self.model = model
        self.device = torch.device(device)
        self.networks = model.fold_networks(self.device)
        self.patch = tuple(int(p) for p in model.configuration_manager.patch_size)
        self.follow, self.max_crops, self.cache_size = follow, max_crops, cache_size
        self._cache: OrderedDict[Box, list] = OrderedDict()
        self._targets: OrderedDict[str, _Target] = OrderedDict()
        self._current: str | None = None
        self._data: torch.Tensor | None = None

    @classmethod
    def from_model_folder(
        cls,
        folder: str | Path,
        folds: Sequence[int | str] = (0,),
        checkpoint: str = "checkpoint_final.pth",
        device: str | torch.device = "cpu",
        **kwargs,
    ) -> SegAnyPETSession:
        """Session from an nnU-Net model folder (``Trainer__Plans__cfg``); several folds average their logits."""
        return cls(load_model_folder(folder, folds, checkpoint), device=device, **kwargs)

    # ------------------------------------------------------------------------------------------------ image
    def set_image(self, image, properties: dict | None = None) -> None:
        """Preprocess an image once with nnU-Net's DefaultPreprocessor and the plans; clears targets and cache.

        Args:
            image: a file path, a list of per-channel file paths (``_0000``, ``_0001``...), a ``sitk.Image``, or
                ``(array, geometry)`` with array (z, y, x) or (c, z, y, x) and geometry a ``sitk.Image``.
            properties: with a raw (c, z, y, x) array only: nnU-Net SimpleITKIO properties instead of a geometry.
        """
        m = self.model
        data, props = preprocess_image(image, properties, m.plans_manager, m.configuration_manager, m.dataset_json)
        self._data = torch.from_numpy(np.ascontiguousarray(data)).float()
        self.properties = props
        self.geometry = C.PreprocessingGeometry.from_properties(
            props, m.plans_manager.transpose_forward, m.configuration_manager.spacing
        )
        self.reference = C.reference_from_properties(props)
        #: original voxel (i, j, k) size = reversed array (z, y, x) shape
        self.image_size_ijk = self.array_shape[::-1]
        self._reverter = RegionReverter(self.geometry, m.configuration_manager, props)
        self._cache.clear()
        self._targets.clear()
        self._current = None

    def _require_image(self) -> None:
        if self._data is None:
            raise RuntimeError("An image must be set with set_image(...) before adding prompts.")

    @property
    def array_shape(self) -> tuple[int, int, int]:
        """Original image shape in array order (z, y, x)."""
        g = self.geometry
        return tuple(int(s) for s in np.array(g.shape_before_cropping)[list(g.transpose_backward)])

    # ---------------------------------------------------------------------------------------------- targets
    @property
    def targets(self) -> list[str]:
        """Target names in creation order (label ids 1..K in ``label_map``)."""
        return list(self._targets)

    @property
    def current_target(self) -> str:
        return self._current

    def new_target(self, name: str) -> None:
        """Start (or switch to) target ``name``; later prompts apply to it."""
        self._require_image()
        if not isinstance(name, str) or not name:
            raise ValueError(f"target name must be a non-empty string, got {name!r}")
        if name not in self._targets:
            self._targets[name] = _Target(name)
        self._current = name

    def _target(self) -> _Target:
        self._require_image()
        if self._current is None:  # prompts before any new_target(): a default target
            self.new_target("target_1")
        return self._targets[self._current]

    # ---------------------------------------------------------------------------------------------- prompts
    def add_point(self, coord: Sequence[float], positive: bool = True, space: str = "world") -> np.ndarray:
        """Click at ``coord`` (world mm LPS (x, y, z) or original voxel (i, j, k) per ``space``); returns the mask."""
        p = self._to_pre(coord, space, "point")
        return self._interact(points=[(p, int(bool(positive)))], centre=p)

    def add_box(self, corner_min: Sequence[float], corner_max: Sequence[float], space: str = "world") -> np.ndarray:
        """Box from two inclusive corners (world mm LPS (x, y, z) or original voxel (i, j, k)); one per target."""
        self._to_pre(corner_min, space, "box min")
        self._to_pre(corner_max, space, "box max")
        lo, hi = C.box_to_preprocessed(corner_min, corner_max, space, self.reference, self.geometry)
        return self._interact(box=(lo, hi), centre=(lo + hi) / 2)

    def add_scribble(self, scribble, positive: bool = True, space: str = "voxel") -> np.ndarray:
        """Scribble as (N, 3) points in ``space`` or as a mask (z, y, x) in the original geometry; one undo step."""
        if isinstance(scribble, np.ndarray) and scribble.ndim == 3:
            zyx = np.argwhere(scribble > 0)
            if not len(zyx):
                raise ValueError("add_scribble: the scribble mask is empty")
            keep = np.linspace(0, len(zyx) - 1, min(len(zyx), self._max_points() // 2)).round().astype(int)
            pre = C.array_to_preprocessed(zyx[keep].astype(float), self.geometry)
        else:
            pts = np.atleast_2d(np.asarray(scribble, float))
            pre = np.array([self._to_pre(p, space, "scribble point") for p in pts])
        label = int(bool(positive))
        return self._interact(points=[(p, label) for p in pre], centre=pre.mean(axis=0))

    def add_mask(self, mask: np.ndarray) -> np.ndarray:
        """Set the current target's mask from a (z, y, x) array in the original geometry (no network run)."""
        t, g, cm = self._target(), self.geometry, self.model.configuration_manager
        want = self.array_shape
        if np.asarray(mask).shape != want:
            raise ValueError(f"add_mask: mask shape {np.asarray(mask).shape} != image shape (z, y, x) {want}")
        m = np.asarray(mask > 0, np.int8).transpose(g.transpose_forward)[tuple(slice(a, b) for a, b in g.bbox)]
        spacing_t = [self.properties["spacing"][i] for i in g.transpose_forward]
        pre = np.asarray(cm.resampling_fn_seg(m[None], list(g.preprocessed_shape), spacing_t, list(cm.spacing)))[0]
        full = ((0, n) for n in g.preprocessed_shape)
        self._push_history(t, [(tuple(full), None if t.logits is None else t.logits.copy())])
        t.logits = np.where(pre > 0, -BACKGROUND_LOGIT, BACKGROUND_LOGIT).astype(np.float32)
        self._refresh_mask(t, [tuple((0, n) for n in g.preprocessed_shape)])
        return self.mask()

    def undo(self) -> np.ndarray:
        """Revert the current target's last interaction; returns its mask (unchanged if there is nothing to undo)."""
        t = self._target()
        if t.history:
            points_len, box, crop, blocks = t.history.pop()
            del t.points[points_len:]
            t.box, t.crop = box, crop
            for bx, old in reversed(blocks):
                if old is None:
                    t.logits = None
                else:
                    t.logits[box_slices(bx)] = old
            self._refresh_mask(t, [bx for bx, _ in blocks])
        return self.mask()

    def reset(self) -> np.ndarray:
        """Forget every prompt of the current target; returns the (empty) mask."""
        t = self._target()
        self._targets[t.name] = _Target(t.name)
        return self.mask()

    # ---------------------------------------------------------------------------------------------- outputs
    def mask(self, name: str | None = None) -> np.ndarray:
        """(z, y, x) uint8 mask of target ``name`` (default: current) in the original geometry."""
        t = self._targets[name or self._target().name]
        g = self.geometry
        if t.mask_t is None:
            return np.zeros(self.array_shape, np.uint8)
        return np.ascontiguousarray(t.mask_t.transpose(g.transpose_backward))

    def to_image(self, array: np.ndarray) -> sitk.Image:
        """A (z, y, x) array as a SimpleITK image with the original geometry (origin, spacing, direction)."""
        img = sitk.GetImageFromArray(array)
        stuff = self.properties["sitk_stuff"]
        img.SetOrigin(stuff["origin"])
        img.SetSpacing(stuff["spacing"])
        img.SetDirection(stuff["direction"])
        return img

    def mask_image(self, name: str | None = None) -> sitk.Image:
        """Target mask as a SimpleITK image with the original geometry."""
        return self.to_image(self.mask(name))

    def label_map(self) -> tuple[np.ndarray, dict[int, str]]:
        """(z, y, x) uint8/uint16 label map with ids 1..K in target order (later targets win overlaps), and names."""
        names = {}
        out = None
        for i, name in enumerate(self._targets, start=1):
            m = self.mask(name)
            out = np.zeros(m.shape, np.uint8 if len(self._targets) < 255 else np.uint16) if out is None else out
            out[m > 0] = i
            names[i] = name
        return out, names

    # ---------------------------------------------------------------------------------------------- internals
    def _max_points(self) -> int:
        return int(getattr(getattr(self.networks[0], "config", None), "max_points", 64))

    def _to_pre(self, coord: Sequence[float], space: str, what: str) -> np.ndarray:
        """Validates one point (world (x, y, z) or original voxel (i, j, k)) and returns it in preprocessed space."""
        self._require_image()
        arr = np.asarray(coord, dtype=float)
        if arr.shape != (3,) or not np.isfinite(arr).all():
            raise ValueError(f"{what}: coordinate must be 3 finite numbers, got {coord!r}")
        if space not in ("world", "voxel"):
            raise ValueError(f"{what}: space must be 'world' or 'voxel', got {space!r}")
        ijk = C.world_to_voxel(arr, self.reference) if space == "world" else arr
        size = np.array(self.image_size_ijk)
        if (ijk < -0.5).any() or (ijk > size - 0.5).any():
            raise ValueError(
                f"{what} {list(arr)} ({space}) lies outside the image (voxel i,j,k {list(ijk.round(2))}, "
                f"size {list(size)})"
            )
        return C.voxel_to_preprocessed(ijk, self.geometry)

    def _push_history(self, t: _Target, blocks: list) -> None:
        t.history.append((len(t.points), t.box, t.crop, blocks))

    def _interact(self, centre: np.ndarray, points: list | None = None, box: tuple | None = None) -> np.ndarray:
        t, g = self._target(), self.geometry
        state = (len(t.points), t.box, t.crop)
        t.points += points or []
        if box is not None:
            t.box = box
        margin = np.array(self.patch) // 8
        inside = t.crop is not None and all(
            a + m <= c <= b - 1 - m for (a, b), c, m in zip(t.crop, centre, margin, strict=True)
        )
        first = t.crop if (inside and box is None) else centred_box(centre, self.patch, g.preprocessed_shape)
        if t.logits is None:
            t.logits = np.full(g.preprocessed_shape, BACKGROUND_LOGIT, np.float32)
        blocks: list = []

        def segment(bx: Box, prev: np.ndarray) -> np.ndarray:
            blocks.append((bx, prev.copy()))
            return self._segment_crop(t, bx, prev)

        visited = follow_object(segment, t.logits, first, self.patch, self.max_crops if self.follow else 1)
        t.crop = first
        t.history.append((*state, blocks))
        self._refresh_mask(t, visited)
        return self.mask()

    def _embeddings(self, box: Box) -> list:
        if box in self._cache:
            self._cache.move_to_end(box)
            return self._cache[box]
        x = self._data[(slice(None), *box_slices(box))]
        pad = [p - s for p, s in zip(self.patch, x.shape[1:], strict=True)]
        if any(pad):
            x = torch.nn.functional.pad(x, [v for q in reversed(pad) for v in (0, q)])
        with torch.no_grad():
            emb = [net.encode(x[None].to(self.device)) for net in self.networks]
        self._cache[box] = emb
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return emb

    def _segment_crop(self, t: _Target, box: Box, prev: np.ndarray) -> np.ndarray:
        """Decoder on one crop; points/box -> network-input voxels (preprocessed - crop start); prev = dense prompt."""
        start = np.array([a for a, _ in box], float)
        stop = np.array([b for _, b in box], float)
        pts = [(p - start, lab) for p, lab in t.points if ((p >= start - 0.5) & (p < stop - 0.5)).all()]
        pts = pts[-self._max_points() :]
        kw: dict = {}
        if pts:
            kw["points"] = torch.tensor(np.array([p for p, _ in pts]), dtype=torch.float32)[None]
            kw["point_labels"] = torch.tensor([lab for _, lab in pts], dtype=torch.int64)[None]
        if t.box is not None:
            lo, hi = t.box[0] - start, t.box[1] - start
            hit = bool((hi >= 0).all() and (lo <= stop - start - 1).all())
            top = np.array(self.patch, float) - 1
            kw["boxes"] = torch.tensor(np.stack([np.clip(lo, 0, top), np.clip(hi, 0, top)]), dtype=torch.float32)[None]
            kw["box_mask"] = torch.tensor([hit])
        dense = np.full(self.patch, BACKGROUND_LOGIT, np.float32)
        dense[tuple(slice(0, s) for s in prev.shape)] = prev
        kw["mask"] = torch.from_numpy(dense)[None, None]
        kw["mask_present"] = torch.tensor([bool((prev > 0).any())])
        prompts = Prompts(**kw).to(self.device)
        with torch.no_grad():
            out = [net.decode(emb, prompts)[0] for net, emb in zip(self.networks, self._embeddings(box), strict=True)]
        logits = torch.stack(out).mean(0)[0, 0].float().cpu().numpy()
        return logits[tuple(slice(0, s) for s in prev.shape)]

    def _refresh_mask(self, t: _Target, boxes: list) -> None:
        """Re-export the original-space mask where ``boxes`` (preprocessed) may have changed it."""
        g = self.geometry
        if t.logits is None:
            t.mask_t = None
            return
        if t.mask_t is None:
            t.mask_t = np.zeros(g.shape_before_cropping, np.uint8)
            boxes = [tuple((0, n) for n in g.preprocessed_shape)]
        for bx in boxes:
            region = self._reverter.cropped_region(bx)
            block = self._reverter.resample_region(t.logits, region) > 0
            dst = tuple(slice(a + o, b + o) for (a, b), (o, _) in zip(region, g.bbox, strict=True))
            t.mask_t[dst] = block
