"""``ViewerSession``: one ``SegAnyPETSession`` bound to a napari viewer (image, prompt and Labels layers).

Every session call runs off the GUI thread through one ``TaskQueue`` (worker.py); the GUI thread only touches layers.
Prompt layers use array index data coordinates (z, y, x) (mapping.py), so each prompt reaches the session as ITK voxel
index (i, j, k) with ``space="voxel"``. After each interaction the "labels" layer's array is overwritten in place with
``session.label_map()`` (ids 1..K = targets in creation order) and refreshed; ``latency_ms`` holds, per interaction,
the time from the napari event (click, box, button) to the refreshed Labels layer. The layers themselves are
``layers.py``; the automatic mode's prediction is ``automatic.py``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np
import SimpleITK as sitk

from seganypet_nnunet.errors import SeganypetError, one_line
from seganypet_nnunet.napari_plugin import mapping, pet_io
from seganypet_nnunet.napari_plugin.layers import SCRIBBLE_NEGATIVE, SCRIBBLE_POSITIVE, PromptLayers, added
from seganypet_nnunet.napari_plugin.worker import Job, TaskQueue


class ViewerSession:
    """Owns the session, the layers and the prompt history of one viewer.

    Callbacks (GUI thread): ``on_status(text, is_error)``, ``on_busy(busy, description)``, ``on_update()`` (targets,
    latency or model changed). Errors never raise into napari: they show as a napari notification and a status line.
    """

    def __init__(self, viewer) -> None:
        self.viewer = viewer
        self.on_status: Callable[[str, bool], None] = lambda text, error: None
        self.on_update: Callable[[], None] = lambda: None
        self.queue = TaskQueue(on_busy=lambda busy, text: self.on_busy(busy, text))
        self.on_busy: Callable[[bool, str], None] = lambda busy, text: None
        self.session = None
        self.model_settings: dict = {}
        self.image: sitk.Image | None = None
        self.display = PromptLayers(viewer)
        self.latency_ms: list[float] = []  # event -> Labels layer refreshed, per interaction
        self.status = ""
        self._history: dict[str, list[tuple[object | None, int]]] = {}  # target -> [(prompt layer, items added)]
        self._new_target: str | None = ""  # start a target (this name, "" = automatic) at the next prompt

    @property
    def layers(self) -> dict:
        """The viewer's layers by key of ``LAYER_NAMES`` (empty before an image is open)."""
        return self.display.layers

    # ------------------------------------------------------------------------------------------------ messages
    def message(self, text: str, error: bool = False) -> None:
        """Status line; errors also as a napari notification (no traceback)."""
        self.status = text
        if error:
            from napari.utils.notifications import show_error

            show_error(text)
        self.on_status(text, error)

    def _fail(self, what: str) -> Callable[[BaseException], None]:
        def failed(err: BaseException) -> None:
            user = isinstance(err, (SeganypetError, ValueError, FileNotFoundError, RuntimeError))
            self.message(f"{what}: {one_line(err)}" if user else f"{what}: {type(err).__name__}: {one_line(err)}", True)

        return failed

    @property
    def model_can_run_automatic(self) -> bool:
        """The loaded model has an automatic (prompt-free) mode."""
        return self.session is not None and not getattr(self.session.model.network, "prompt_only", False)

    # ------------------------------------------------------------------------------------------ model and image
    def load_model(
        self, folder: str | Path, *, folds=(0,), checkpoint="checkpoint_final.pth", device="cpu", trusted: bool = False
    ) -> None:
        """Load a model folder (our network or an imported SegAnyPET model); re-runs ``set_image`` if one is open."""
        from seganypet_nnunet.inference.session import SegAnyPETSession

        settings = dict(folds=tuple(folds), checkpoint=checkpoint, device=device, trusted=trusted)

        def work():  # reads self.image when it runs: done callbacks of earlier jobs have run by then
            session = SegAnyPETSession.from_model_folder(folder, **settings)
            if self.image is not None:
                session.set_image(self.image)
            return session

        def done(session) -> None:
            self.session, self.model_settings = session, {"folder": str(folder), **settings}
            self._forget_prompts()
            self.message(f"model loaded: {Path(folder).name} (folds {list(settings['folds'])}, {device})")
            self.on_update()

        self.queue.submit(Job(work, done, self._fail("load model"), "loading model", progress=True))

    def open_image(self, path: str | Path) -> None:
        """Read a PET file or DICOM series (as SUV), show it, and run ``set_image`` if a model is loaded."""

        def work():
            image, source = pet_io.read_pet(path)
            if self.session is not None:  # read when it runs (a model load queued before this has finished)
                self.session.set_image(image)
            return image, source

        def done(result) -> None:
            self.image, source = result
            self._show(self.image)
            self.message(f"image: {source}, {self.image.GetSize()} voxels (i, j, k)")
            self.on_update()

        self.queue.submit(Job(work, done, self._fail(f"open {Path(path).name}"), "set_image", progress=True))

    def _show(self, image: sitk.Image) -> None:
        """(Re)create the layers over ``image`` and forget the prompts."""
        self.display.show(image, self._on_points, self._on_box)
        self._forget_prompts()

    def set_window(self, preset: str, inverted: bool = True) -> None:
        """PET window preset (pet_io.WINDOW_PRESETS) and grey or inverted grey."""
        self.display.set_window(preset, inverted)

    def set_mip(self, on: bool) -> None:
        """Maximum-intensity projection in inverted grey (3D view, coronal) or back to the slice view."""
        self.display.set_mip(on)

    # -------------------------------------------------------------------------------------------------- prompts
    def _on_points(self, event, positive: bool) -> None:
        if self.display.muted or not added(event):
            return
        t0, layer = time.perf_counter(), event.source
        for coords in np.array(layer.data[-len(event.data_indices) :]):
            try:
                ijk = mapping.data_to_voxel(coords, self.image.GetSize()[::-1])
            except SeganypetError as err:
                self._remove_display(layer, 1)
                self.message(f"click: {err}", True)
                continue
            kind = "positive" if positive else "negative"
            act = lambda s, p=ijk: s.add_point(p, positive, space="voxel")  # noqa: E731
            self.prompt(f"{kind} click {ijk}", act, layer, 1, t0, negative_only=not positive)

    def _on_box(self, event) -> None:
        if self.display.muted or not added(event):
            return
        t0, layer = time.perf_counter(), event.source
        try:
            lo, hi = mapping.rectangle_to_box(
                layer.data[-1], self.box_depth_mm, mapping.layer_scale(self.image), self.image.GetSize()[::-1]
            )
        except SeganypetError as err:
            self._remove_display(layer, 1)
            self.message(f"box: {err}", True)
            return
        self.prompt(f"box {lo}-{hi}", lambda s: s.add_box(lo, hi, space="voxel"), layer, 1, t0)

    box_depth_mm = 60.0  #: total depth a box drawn on a slice is extended by (centred on the slice)

    def apply_scribble(self) -> None:
        """Send the painted scribble (1 = positive, 2 = negative) to the session, then clear it."""
        t0 = time.perf_counter()
        data = np.array(self.layers["scribble"].data)
        parts = [(data == v, v == SCRIBBLE_POSITIVE) for v in (SCRIBBLE_POSITIVE, SCRIBBLE_NEGATIVE)]
        parts = [(m, pos) for m, pos in parts if m.any()]
        if not parts:
            self.message("scribble: paint on the scribble layer first (label 1 positive, 2 negative)", True)
            return

        def act(s) -> None:
            for m, pos in parts:
                s.add_scribble(m, positive=pos)

        self.layers["scribble"].data[...] = 0
        self.layers["scribble"].refresh()
        self.prompt("scribble", act, None, 0, t0, steps=len(parts), negative_only=not any(p for _, p in parts))

    def prompt(
        self, what: str, act: Callable, layer, count: int, t0: float, steps: int = 1, negative_only: bool = False
    ) -> None:
        """Run ``act(session)`` on the current target (starting one first if due), then refresh the labels.

        A prompt that would start a new target with negative points only is refused before the target is made.
        """
        if self.session is None or self.image is None:
            self._remove_display(layer, count)
            self.message(f"{what}: load a model and open an image first", True)
            return
        start, self._new_target = self._new_target, None

        def work():
            t, session = time.perf_counter(), self.session
            if start is not None:
                if negative_only:
                    raise SeganypetError("a new target starts with a positive click, a box or a positive scribble")
                session.new_target(start or f"target_{len(session.targets) + 1}")
            act(session)
            return session.current_target, session.label_map()[0], (time.perf_counter() - t) * 1e3

        def done(result) -> None:
            target, labels, model_ms = result
            self._history.setdefault(target, []).extend([(layer, count)] + [(None, 0)] * (steps - 1))
            self._set_labels(labels)
            self.latency_ms.append((time.perf_counter() - t0) * 1e3)
            self.message(f"{what} -> {target}: {self.latency_ms[-1]:.0f} ms to screen (model {model_ms:.0f} ms)")
            self.on_update()

        def failed(err) -> None:
            if start is not None:
                self._new_target = start  # the next prompt starts (or continues) that target
            self._remove_display(layer, count)
            self._fail(what)(err)

        self.queue.submit(Job(work, done, failed, what))

    # --------------------------------------------------------------------------------------------- target steps
    def _session_step(self, what: str, act: Callable, after: Callable[[str], None]) -> None:
        if self.session is None or self.image is None:
            self.message(f"{what}: load a model and open an image first", True)
            return
        t0 = time.perf_counter()

        def work():
            session = self.session
            act(session)
            return session.current_target, session.label_map()[0]

        def done(result) -> None:
            target, labels = result
            after(target)
            self._set_labels(labels)
            self.latency_ms.append((time.perf_counter() - t0) * 1e3)
            self.message(f"{what} ({target})")
            self.on_update()

        self.queue.submit(Job(work, done, self._fail(what), what))

    def undo(self) -> None:
        """Undo the current target's last interaction (and its prompt on screen)."""

        def after(target: str | None) -> None:
            steps = self._history.get(target, [])
            if steps:
                self._remove_display(*steps.pop())

        self._session_step("undo", lambda s: s.current_target and s.undo(), after)

    def reset(self) -> None:
        """Forget the current target's prompts; its mask becomes empty."""

        def after(target: str | None) -> None:
            self._history.pop(target, None)
            self._clear_prompt_layers()

        self._session_step("reset", lambda s: s.current_target and s.reset(), after)

    def next_target(self, name: str = "") -> None:
        """Start target ``name`` (empty: ``target_N``) now; switching to an existing name continues it."""
        self._session_step(
            "next target",
            lambda s: s.new_target(name or f"target_{len(s.targets) + 1}"),
            lambda target: self._accept_display(),
        )

    def accept(self) -> None:
        """Keep the current target as it is; the next prompt starts a new target."""
        self._accept_display()
        self._new_target = ""
        self.message("accepted; the next prompt starts a new target")

    def _accept_display(self) -> None:
        self._new_target = None
        self._clear_prompt_layers()

    # --------------------------------------------------------------------------------------- automatic and save
    def run_automatic(self) -> None:
        """The model's automatic mode (nnU-Net sliding window, folds ensembled); one target per label found."""
        from seganypet_nnunet.napari_plugin.automatic import automatic_targets

        if not self.model_can_run_automatic or self.image is None:
            self.message("automatic: needs an image and a model with an automatic mode", True)
            return
        session, image, settings = self.session, self.image, self.model_settings

        def done(result) -> None:
            self._accept_display()
            self._new_target = ""
            self._set_labels(result)
            self.message(f"automatic mode: {len(session.targets)} target(s)")
            self.on_update()

        work = lambda: automatic_targets(session, image, settings)  # noqa: E731
        self.queue.submit(Job(work, done, self._fail("automatic"), "automatic segmentation", progress=True))

    def save(self, path: str | Path) -> None:
        """Write the label map with the image's geometry, and its target names JSON next to it."""
        if self.session is None or self.image is None:
            self.message("save: nothing to save yet", True)
            return
        session = self.session

        def done(paths) -> None:
            self.message(f"saved {paths[0]} and {paths[1].name}")

        self.queue.submit(Job(lambda: pet_io.save_label_map(session, path), done, self._fail("save"), "saving"))

    # -------------------------------------------------------------------------------------------------- helpers
    def _set_labels(self, labels: np.ndarray) -> None:
        self.display.set_labels(labels)

    def _remove_display(self, layer, count: int) -> None:
        self.display.remove(layer, count)

    def _clear_prompt_layers(self) -> None:
        self.display.clear_prompts()

    def _forget_prompts(self) -> None:
        self._history.clear()
        self._new_target = ""
        self.latency_ms.clear()
        if self.layers:
            self._clear_prompt_layers()
            if self.session is not None and self.image is not None:
                self.display.clear_labels()
