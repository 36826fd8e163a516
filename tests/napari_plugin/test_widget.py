"""The dock widget driven headless on a real napari viewer (Qt offscreen unless a display exists) with the shared tiny
untrained model: load, click, undo, box, targets, scribble, save and re-read; bad inputs give messages, not tracebacks.

Clicks go through napari's own path for a mouse press in a Points layer's add mode: world position -> layer data
coordinate (``layer.world_to_data``) -> ``layer.add``. The test image has a 30 degree direction and anisotropic spacing.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
import SimpleITK as sitk

if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
napari = pytest.importorskip("napari")
pytest.importorskip("qtpy.QtWidgets")

from inference_data import new_session  # noqa: E402

from seganypet_nnunet.napari_plugin.widget import SegAnyPETWidget  # noqa: E402


@pytest.fixture(scope="module")
def viewer():
    """One viewer for the module (closing a viewer costs seconds); each test gets a fresh widget and no layers."""
    from qtpy.QtWidgets import QApplication

    v = napari.Viewer(show=False)
    yield v
    v.close()
    QApplication.processEvents()


@pytest.fixture
def widget(model, viewer):
    w = SegAnyPETWidget(viewer)
    yield w
    wait(w)
    w.close()
    viewer.layers.clear()


def wait(w, timeout: float = 600.0) -> None:
    """Process Qt events until the widget's job queue is empty (the timeout is a hang guard, not a timing)."""
    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + timeout
    while w.controller.queue.busy:
        if time.monotonic() > end:
            raise TimeoutError("the widget's worker did not finish")
        QApplication.processEvents()
        time.sleep(0.002)
    QApplication.processEvents()


def loaded(w, model, image_name: str = "test00_0000.nii.gz"):
    raw, folder = model
    w.model_path.setText(str(folder))
    w.load_model()
    w.image_path.setText(str(raw / "imagesTs" / image_name))
    w.open_image()
    wait(w)
    assert w.controller.session is not None and w.controller.image is not None, w.controller.status
    return raw / "imagesTs" / image_name


def click(w, layer_key: str, zyx) -> None:
    """A mouse press at the napari world position where array voxel ``zyx`` is drawn."""
    layer = w.controller.layers[layer_key]
    world = layer.data_to_world(np.asarray(zyx, float))
    layer.add(layer.world_to_data(world))
    wait(w)


def labels(w) -> np.ndarray:
    return w.controller.layers["labels"].data


def test_click_lands_on_the_voxel_seen_undo_and_save(widget, model, tmp_path):
    w = widget
    image_path = loaded(w, model)
    image = sitk.ReadImage(str(image_path))
    assert not np.allclose(image.GetDirection(), np.eye(3).ravel()) and len(set(image.GetSpacing())) == 3
    arr = sitk.GetArrayFromImage(image)
    hot = np.unravel_index(np.argmax(arr), arr.shape)  # (z, y, x) of the brightest voxel
    s = w.controller.session

    click(w, "positive", hot)
    assert s.targets == ["target_1"] and w.controller.latency_ms and "ms" in w.latency.text()
    np.testing.assert_array_equal(labels(w), s.mask())
    np.testing.assert_array_equal(labels(w), s.label_map()[0])
    # the same voxel clicked through the session's world (LPS mm) conversion on a fresh session
    world = image.TransformIndexToPhysicalPoint(tuple(int(v) for v in hot[::-1]))
    reference = new_session(model[1], image_path)
    np.testing.assert_array_equal(labels(w), reference.add_point(world, space="world"))
    first = labels(w).copy()
    w.preset.setCurrentText("SUV 0-5")
    assert tuple(w.controller.layers["image"].contrast_limits) == (0.0, 5.0)
    w.mip.setChecked(True)
    assert w.viewer.dims.ndisplay == 3 and w.controller.layers["image"].rendering == "mip"
    w.mip.setChecked(False)
    assert w.viewer.dims.ndisplay == 2

    click(w, "negative", (hot[0], hot[1] + 1, hot[2]))
    assert len(w.controller.layers["negative"].data) == 1 and s.undo_steps == 2
    w.controller.undo()
    wait(w)
    assert len(w.controller.layers["negative"].data) == 0 and s.undo_steps == 1
    np.testing.assert_array_equal(labels(w), first)

    out = tmp_path / "seg.nii.gz"
    w.save(str(out))
    wait(w)
    saved = sitk.ReadImage(str(out))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(saved), first)
    for get in ("GetOrigin", "GetSpacing", "GetDirection"):
        np.testing.assert_allclose(getattr(saved, get)(), getattr(image, get)(), atol=1e-6)
    assert json.loads((tmp_path / "seg.json").read_text()) == {"labels": {"1": "target_1"}}


def test_box_targets_scribble_accept_reset_automatic(widget, model):
    w = widget
    loaded(w, model)
    c, s = w.controller, w.controller.session
    click(w, "negative", (5, 5, 5))  # a negative first click: the session refuses, the point is taken back
    assert "positive" in w.status.text() and len(c.layers["negative"].data) == 0
    w.target_name.setText("lesion")
    w.next_target_button.click()
    wait(w)
    z, y, x = (n // 2 for n in c.layers["labels"].data.shape)
    c.layers["box"].add_rectangles(
        np.array([[z, y - 4, x - 4], [z, y - 4, x + 4], [z, y + 4, x + 4], [z, y + 4, x - 4]])
    )
    wait(w)
    assert s.targets == ["lesion"] and s.undo_steps == 1, c.status
    np.testing.assert_array_equal(labels(w), s.label_map()[0])

    c.accept()
    assert len(c.layers["box"].data) == 0
    c.layers["scribble"].data[z, y - 2 : y + 3, x] = 1
    c.apply_scribble()
    wait(w)
    assert s.targets == ["lesion", "target_2"] and not c.layers["scribble"].data.any()
    np.testing.assert_array_equal(labels(w), s.label_map()[0])
    assert "target_2" in w.targets.text()

    c.reset()
    wait(w)
    assert s.mask().sum() == 0 and s.undo_steps == 0
    np.testing.assert_array_equal(labels(w), s.label_map()[0])

    assert w.automatic.isEnabled()
    w.automatic.click()
    wait(w, timeout=120)
    assert "automatic" in w.controller.status and "error" not in w.controller.status.lower(), w.controller.status
    np.testing.assert_array_equal(labels(w), w.controller.session.label_map()[0])


def test_bad_inputs_give_messages_not_tracebacks(widget, model, tmp_path):
    w = widget
    w.image_path.setText(str(tmp_path / "missing.nii.gz"))
    w.open_image()
    wait(w)
    assert "no such file" in w.status.text() and w.controller.image is None
    (tmp_path / "not_a_model").mkdir()
    w.model_path.setText(str(tmp_path / "not_a_model"))
    w.load_model()
    wait(w)
    assert "plans.json" in w.status.text() and w.controller.session is None
    w.folds.setText("zero")
    w.load_model()
    assert "folds" in w.status.text()
    w.controller.undo()
    assert "open an image first" in w.status.text()


def test_the_packaged_reference_model_is_picked_by_name_and_loads(widget):
    """Issue 22: the model picker lists the packaged models; picking one fills the folder field with its name."""
    from seganypet_nnunet.pretrained import REFERENCE_MODEL

    items = [widget.packaged.itemText(i) for i in range(widget.packaged.count())]
    assert REFERENCE_MODEL in items
    widget.packaged.textActivated.emit(REFERENCE_MODEL)
    assert widget.model_path.text() == REFERENCE_MODEL
    widget.load_model()
    wait(widget)
    assert widget.controller.session is not None
    assert widget.controller.model_settings["folder"] == REFERENCE_MODEL
