"""The napari layers of one viewer over one PET image: the image, the "labels" layer and the prompt layers.

All layers live in the image's array index space (z, y, x), scaled by the voxel spacing (mapping.py). This module only
draws: it knows nothing of the session; ``controller.py`` connects the prompt layers' events to it.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import SimpleITK as sitk

from seganypet_nnunet.napari_plugin import mapping, pet_io

LAYER_NAMES = {
    "image": "PET",
    "labels": "SegAnyPET labels",
    "positive": "positive points",
    "negative": "negative points",
    "box": "box",
    "scribble": "scribble",
}
SCRIBBLE_POSITIVE, SCRIBBLE_NEGATIVE = 1, 2  # label values painted on the scribble layer


def added(event) -> bool:
    """A layer data event that reports finished additions (napari's ActionType.ADDED, a string enum)."""
    return str(getattr(event, "action", "")) == "added"


class PromptLayers:
    """The layers of one viewer (``layers``: key of ``LAYER_NAMES`` -> napari layer; empty before an image).

    ``muted`` is True while this class itself removes prompts from a layer, so the data events it causes are not
    taken for new prompts.
    """

    def __init__(self, viewer) -> None:
        self.viewer = viewer
        self.layers: dict = {}
        self.muted = False

    def show(self, image: sitk.Image, on_points: Callable[[object, bool], None], on_box: Callable[[object], None]):
        """(Re)create the layers over ``image``; ``on_points(event, positive)`` / ``on_box(event)`` get their events."""
        for layer in self.layers.values():
            if layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
        arr = sitk.GetArrayFromImage(image)
        scale, shape = mapping.layer_scale(image), arr.shape
        v, L = self.viewer, LAYER_NAMES
        self.layers = {
            "image": v.add_image(
                arr, name=L["image"], scale=scale, colormap="gray_r", contrast_limits=pet_io.window("SUV 0-10", arr)
            ),
            "labels": v.add_labels(np.zeros(shape, np.uint8), name=L["labels"], scale=scale, opacity=0.5),
            "scribble": v.add_labels(np.zeros(shape, np.uint8), name=L["scribble"], scale=scale),
            "box": v.add_shapes(ndim=3, name=L["box"], scale=scale, edge_color="yellow", face_color="transparent"),
            "negative": v.add_points(ndim=3, name=L["negative"], scale=scale, face_color="red", size=4),
            "positive": v.add_points(ndim=3, name=L["positive"], scale=scale, face_color="lime", size=4),
        }
        self.layers["positive"].events.data.connect(lambda e: on_points(e, True))
        self.layers["negative"].events.data.connect(lambda e: on_points(e, False))
        self.layers["box"].events.data.connect(on_box)
        self.layers["positive"].mode = self.layers["negative"].mode = "add"
        self.layers["box"].mode = "add_rectangle"
        v.layers.selection.active = self.layers["positive"]

    def set_window(self, preset: str, inverted: bool = True) -> None:
        """PET window preset (pet_io.WINDOW_PRESETS) and grey or inverted grey."""
        layer = self.layers["image"]
        lo, hi = pet_io.window(preset, layer.data)
        layer.contrast_limits_range = (min(lo, float(layer.data.min())), max(hi, float(layer.data.max())))
        layer.contrast_limits = (lo, hi)
        layer.colormap = "gray_r" if inverted else "gray"

    def set_mip(self, on: bool) -> None:
        """Maximum-intensity projection in inverted grey (3D view, coronal) or back to the slice view."""
        layer = self.layers["image"]
        self.viewer.dims.ndisplay = 3 if on else 2
        layer.rendering = "mip" if on else "translucent"
        if on:
            layer.colormap = "gray_r"
            self.viewer.camera.angles = (0.0, 0.0, 90.0)  # look along the array y axis (anterior-posterior)

    def set_labels(self, labels: np.ndarray) -> None:
        """Show ``labels`` (z, y, x) in the "labels" layer, in place when the shape and dtype match."""
        layer = self.layers["labels"]
        if layer.data.shape == labels.shape and layer.data.dtype == labels.dtype:
            layer.data[...] = labels  # in place: napari keeps the layer, its colours and selection
            layer.refresh()
        else:
            layer.data = labels

    def clear_labels(self) -> None:
        self.set_labels(np.zeros(self.layers["labels"].data.shape, np.uint8))

    def remove(self, layer, count: int) -> None:
        """Remove the last ``count`` prompts drawn on ``layer`` (None or 0: nothing)."""
        if layer is None or count <= 0 or len(layer.data) < count:
            return
        self.muted = True
        try:
            if layer is self.layers.get("box"):
                layer.selected_data = set(range(len(layer.data) - count, len(layer.data)))
                layer.remove_selected()
            else:
                layer.data = layer.data[:-count]
        finally:
            self.muted = False

    def clear_prompts(self) -> None:
        """Remove every point and box drawn (the scribble layer is cleared when it is applied)."""
        for key in ("positive", "negative", "box"):
            if key in self.layers:
                self.remove(self.layers[key], len(self.layers[key].data))
