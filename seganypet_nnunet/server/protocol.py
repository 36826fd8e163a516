"""One lease's state: a ``SegAnyPETSession`` behind nnInteractive's remote protocol (one target buffer per lease).

Spaces: the protocol speaks the uploaded array's axis order (a0, a1, a2) = (z, y, x) in voxels; the session takes the
original voxel ITK index (i, j, k) = (a2, a1, a0) with ``space="voxel"``. The uploaded image carries spacing only, so
the session's image has that spacing, identity direction and zero origin.

The lease keeps what the client's buffer holds (``view``, (z, y, x) uint8 held by its object's box, only after
``set_target_buffer``); each answer is the bbox where the session's mask now differs from it, plus that crop (the
client pastes it).
"""

from __future__ import annotations

import logging
import threading

import numpy as np

from seganypet_nnunet.inference.boxed import BoxedMask, foreground_box
from seganypet_nnunet.inference.session import SegAnyPETSession
from seganypet_nnunet.server.wire import ProtocolError, bbox_of, change_answer, flag, triple

log = logging.getLogger("seganypet_serve")
TARGET = "target"
BQ_PER_ML_LEVEL = 1000.0  # a PET image whose hot voxels read in the thousands is in Bq/mL, not SUV


def suv_warning(image: np.ndarray) -> str | None:
    """A warning when a (z, y, x) image looks like activity concentration (Bq/mL) rather than SUV."""
    sample = image[::4, ::4, ::4]
    level = float(np.percentile(sample, 99.9)) if sample.size else 0.0
    if level < BQ_PER_ML_LEVEL:
        return None
    return (
        f"image values reach {level:.0f} (99.9th percentile): this looks like Bq/mL, the model expects SUV; convert "
        "first or start seganypet_serve with --suv_factor (or send image_properties.suv_factor)"
    )


def union(a, b):
    """Smallest half-open box holding boxes ``a`` and ``b`` (either may be None)."""
    if a is None or b is None:
        return a if b is None else b
    return tuple((min(p, r), max(q, t)) for (p, q), (r, t) in zip(a, b, strict=True))


class LeaseSession:
    """The protocol's operations on one session (callers hold ``lock``); ProtocolError = HTTP 400."""

    def __init__(self, session: SegAnyPETSession, boxes: bool, suv_factor: float = 1.0) -> None:
        self.session = session
        self.boxes = boxes
        self.suv_factor = suv_factor
        self.lock = threading.Lock()
        self.view: BoxedMask | None = None  # what the client's target buffer holds, (z, y, x) uint8
        self.shape: tuple[int, int, int] | None = None
        self.do_autozoom = True

    # ---------------------------------------------------------------------------------------------- image
    def set_image(self, image: np.ndarray, meta: dict) -> dict:
        """A (1, z, y, x) upload with ``image_properties.spacing`` in the same axis order."""
        if image.ndim != 4 or image.shape[0] != 1 or min(image.shape[1:]) < 1:
            raise ProtocolError(
                f"set_image: expected a (1, z, y, x) array with one PET channel, got {list(image.shape)}"
            )
        props = meta.get("image_properties") or {}
        if not isinstance(props, dict):
            raise ProtocolError("image_properties: expected a JSON object")
        spacing = triple(props.get("spacing", (1.0, 1.0, 1.0)), "image_properties.spacing")
        if min(spacing) <= 0:
            raise ProtocolError(f"image_properties.spacing: must be positive, got {list(spacing)}")
        factor = float(props.get("suv_factor", meta.get("suv_factor", self.suv_factor)))
        if not np.isfinite(factor) or factor <= 0:
            raise ProtocolError(f"suv_factor: must be a positive number, got {factor}")
        data = np.asarray(image[0], np.float32)
        if factor != 1.0:
            data = data * np.float32(factor)
        geometry = {
            "sitk_stuff": {"spacing": spacing[::-1], "origin": (0.0, 0.0, 0.0), "direction": tuple(np.eye(3).ravel())},
            "spacing": list(spacing),
        }
        try:
            self.session.set_image((data, geometry))
        except ValueError as err:
            raise ProtocolError(str(err)) from None
        self.shape = tuple(int(n) for n in data.shape)
        self.view = None
        answer = {"original_image_shape": [1, *self.shape], "suv_factor": factor, "warnings": []}
        warning = suv_warning(data)
        if warning:
            log.warning("set_image: %s", warning)
            answer["warnings"].append(warning)
        return answer

    def _require_image(self) -> tuple[int, int, int]:
        if self.shape is None:
            raise ProtocolError("no image: call set_image first")
        return self.shape

    def set_target_buffer(self, meta: dict) -> dict:
        shape = self._require_image()
        try:
            want = tuple(int(n) for n in meta.get("shape", ()))
        except (TypeError, ValueError):
            raise ProtocolError(f"shape: expected three integers, got {meta.get('shape')!r}") from None
        if want != shape:
            raise ProtocolError(f"shape: target buffer {list(want)} != image shape {list(shape)}")
        self.view = BoxedMask(shape)
        self.session.new_target(TARGET)
        self.session.reset()
        return {"shape": list(shape)}

    def _require_view(self) -> BoxedMask:
        self._require_image()
        if self.view is None:
            raise ProtocolError("no target buffer: call set_target_buffer first")
        if self.session.current_target is None:
            self.session.new_target(TARGET)
        return self.view

    def _mask_box(self):
        """(z, y, x) box of the session target's mask (its exported mask is held by that box, boxed.py)."""
        s = self.session
        held = s._targets[s.current_target].mask_t
        if held is None or held.box is None:
            return None
        return tuple(held.box[a] for a in s.geometry.transpose_backward)

    def _answer(self, ran: bool, mask: np.ndarray) -> tuple[dict, bytes]:
        """Ship where ``mask`` (the session's, (z, y, x)) differs from the client's buffer; the buffer follows.

        Only the union of both objects' boxes can differ, so only that region is compared.
        """
        view = self.view
        region = union(view.box, self._mask_box())
        if region is None:
            return change_answer(ran, None, None)
        sl = tuple(slice(a, b) for a, b in region)
        inner = foreground_box(view[sl] != mask[sl], False)
        if inner is None:
            return change_answer(ran, None, None)
        box = tuple((a + i, a + j) for (a, _), (i, j) in zip(region, inner, strict=True))
        sl = tuple(slice(a, b) for a, b in box)
        view[sl] = mask[sl]
        return change_answer(ran, box, np.ascontiguousarray(mask[sl]))

    # ---------------------------------------------------------------------------------------------- prompts
    def _run(self, call, what: str) -> np.ndarray:
        try:
            return call()
        except ValueError as err:
            raise ProtocolError(f"{what}: {err}") from None

    def add_point(self, meta: dict) -> tuple[dict, bytes]:
        shape = self._require_view().shape
        a = triple(meta.get("coordinates"), "coordinates")
        zyx = [int(round(v)) for v in a]
        if not all(0 <= v < n for v, n in zip(zyx, shape, strict=True)):
            raise ProtocolError(f"coordinates: {list(a)} lies outside the image (z, y, x) {list(shape)}")
        positive = flag(meta, "include_interaction", True)
        mask = self._run(lambda: self.session.add_point(zyx[::-1], positive=positive, space="voxel"), "point")
        return self._answer(True, mask)

    def add_bbox(self, meta: dict) -> tuple[dict, bytes]:
        shape = self._require_view().shape
        box = bbox_of(meta.get("bbox_coords"), shape, "bbox_coords")
        if not self.boxes and not flag(meta, "override_capability_checks", False):
            raise ProtocolError("bbox: this model has no box prompts (see /capabilities); use points or scribbles")
        if not flag(meta, "include_interaction", True):
            raise ProtocolError("bbox: negative boxes are not supported; use negative points")
        lo, hi = [lb for lb, _ in box][::-1], [ub - 1 for _, ub in box][::-1]
        mask = self._run(lambda: self.session.add_box(lo, hi, space="voxel"), "bbox")
        return self._answer(True, mask)

    def _full_mask(self, array: np.ndarray, meta: dict, what: str) -> np.ndarray:
        """A (z, y, x) mask the size of the image from a full upload or a crop plus ``interaction_bbox``."""
        shape = self.shape
        array = np.asarray(array)
        if array.ndim == 4 and array.shape[0] == 1:
            array = array[0]
        bbox = meta.get("interaction_bbox")
        if bbox is None:
            if array.shape != shape:
                raise ProtocolError(f"{what}: mask shape {list(array.shape)} != image shape {list(shape)}")
            return array > 0
        box = bbox_of(bbox, shape, "interaction_bbox")
        if array.shape != tuple(b - a for a, b in box):
            raise ProtocolError(f"{what}: mask shape {list(array.shape)} != interaction_bbox extents")
        full = np.zeros(shape, bool)
        full[tuple(slice(a, b) for a, b in box)] = array > 0
        return full

    def add_scribble(self, array: np.ndarray, meta: dict, what: str = "scribble") -> tuple[dict, bytes]:
        """A scribble (or a lasso: its filled region) becomes a session scribble of its voxels."""
        self._require_view()
        mask = self._full_mask(array, meta, what)
        if not mask.any():
            raise ProtocolError(f"{what}: the mask is empty")
        positive = flag(meta, "include_interaction", True)
        out = self._run(lambda: self.session.add_scribble(mask.view(np.uint8), positive=positive), what)
        return self._answer(True, out)

    def add_initial_seg(self, array: np.ndarray, meta: dict) -> tuple[dict, bytes]:
        """The client has written the mask into its buffer; the session takes it as the target's mask prompt."""
        view = self._require_view()
        mask = self._full_mask(array, meta, "initial_seg")
        view[:, :, :] = mask
        self.session.reset()
        if not mask.any():
            return change_answer(False, None, None)
        return self._answer(True, self._run(lambda: self.session.add_mask(mask.view(np.uint8)), "initial_seg"))

    def memory(self) -> dict:
        """Bytes this lease's target holds now, and what a full-size logit buffer plus mask would hold."""
        s = self.session
        if s.geometry is None:
            return {"target_bytes": 0, "full_size_target_bytes": 0}
        t = s._targets.get(s.current_target) if s.current_target else None
        full = 4 * int(np.prod(s.geometry.preprocessed_shape)) + int(np.prod(s.array_shape))
        return {"target_bytes": 0 if t is None else t.nbytes, "full_size_target_bytes": full}

    # ---------------------------------------------------------------------------------------------- history
    def reset(self) -> dict:
        """Forget the target's prompts; the client zeroes its buffer itself."""
        if self.view is not None:
            self.view = BoxedMask(self.view.shape)
            self.session.reset()
        return {}

    def undo(self) -> tuple[dict, bytes]:
        self._require_view()
        if self.session.undo_steps == 0:
            return change_answer(False, None, None)
        return self._answer(True, self.session.undo())

    def predict(self) -> tuple[dict, bytes]:
        """Every prompt runs at once (run_prediction is always honoured as true): nothing is queued."""
        self._require_view()
        return change_answer(False, None, None)
