"""Viewer latency: time from a click event in napari to the updated Labels layer, on a whole-body synthetic case.

    python bench/bench_napari_latency.py [-m MODEL_FOLDER] [--checkpoint NAME] [--clicks 10] [--screenshot PNG]

Drives the real dock widget headless (Qt offscreen): each click goes through napari's add-mode path (world position ->
layer data coordinate -> ``Points.add``), the widget's thread worker and ``SegAnyPETSession.add_point``, and ends when
the Labels layer has been overwritten in place and refreshed (the widget's own ``latency_ms``). Without ``-m`` it uses
the demo model if it exists, else an UNTRAINED model of the SegAnyPETPlannerSmall plans (latency does not depend on
the weights). Target: median <= 150 ms with the demo model.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEMO_MODEL = Path(
    "/work/demo_run/nnUNet_results/Dataset990_SegAnyPETDemo/SegAnyPETTrainer_demo__SegAnyPETPlansSmall__3d_fullres"
)


def _case(seed: int = 7) -> Path:
    """A whole-body synthetic PET case written to a temporary NIfTI file."""
    import SimpleITK as sitk

    from seganypet_nnunet.synthetic import SyntheticConfig
    from seganypet_nnunet.synthetic.case import make_case

    path = Path(tempfile.mkdtemp(prefix="seganypet_napari_bench_")) / "case_0000.nii.gz"
    sitk.WriteImage(make_case(seed, SyntheticConfig(size="whole_body")).pet, str(path))
    return path


def _wait(widget, timeout: float = 600.0) -> None:
    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + timeout
    while widget.controller.queue.busy and time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.001)
    QApplication.processEvents()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-m", "--model_folder", default=None)
    p.add_argument("--checkpoint", default=None, help="default: checkpoint_final.pth, else checkpoint_best.pth")
    p.add_argument("--image", default=None, help="default: a generated whole-body synthetic case")
    p.add_argument("--clicks", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--screenshot", default=None, help="save the dock widget after the clicks (PNG)")
    a = p.parse_args()
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import napari
    import torch

    from seganypet_nnunet.napari_plugin.widget import SegAnyPETWidget

    torch.set_num_threads(a.threads)
    model = Path(a.model_folder) if a.model_folder else (DEMO_MODEL if DEMO_MODEL.is_dir() else None)
    if model is None:
        sys.path.insert(0, str(Path(__file__).parent))
        from _inference_model import untrained_whole_body_model

        raw, model = untrained_whole_body_model(996, "SegAnyPETPlannerSmall")
        image = Path(a.image) if a.image else next((raw / "imagesTs").glob("*_0000.nii.gz"))
        print(f"model: UNTRAINED SegAnyPETPlannerSmall plans ({model})")
    else:
        image = Path(a.image) if a.image else _case()
        print(f"model: {model}")
    checkpoint = a.checkpoint or next(
        (c for c in ("checkpoint_final.pth", "checkpoint_best.pth") if (model / "fold_0" / c).is_file()),
        "checkpoint_final.pth",
    )
    viewer = napari.Viewer(show=False)
    w = SegAnyPETWidget(viewer)
    w.model_path.setText(str(model))
    w.checkpoint.setCurrentText(checkpoint)
    w.image_path.setText(str(image))
    t0 = time.perf_counter()
    w.load_model()
    w.open_image()
    _wait(w)
    c = w.controller
    if c.session is None or c.image is None:
        raise SystemExit(f"setup failed: {c.status}")
    print(f"{checkpoint}; image (z, y, x) {c.session.array_shape}; load + set_image {time.perf_counter() - t0:.1f} s")

    arr = c.layers["image"].data
    hot = np.array(np.unravel_index(np.argmax(arr), arr.shape))  # (z, y, x) of the hottest voxel (a lesion/organ)
    rng = np.random.default_rng(0)
    for n in range(a.clicks + 1):  # the first click also runs the encoder: reported separately
        zyx = np.clip(hot + (rng.integers(-2, 3, 3) if n else 0), 0, np.array(arr.shape) - 1)
        layer = c.layers["positive" if n == 0 or rng.random() < 0.6 else "negative"]
        layer.add(layer.world_to_data(layer.data_to_world(zyx.astype(float))))
        _wait(w)
        print(f"  click {n}: {c.status}")
    first, clicks = c.latency_ms[0], np.array(c.latency_ms[1:])
    print(f"first click (encoder + decoder) {first:.0f} ms")
    print(
        f"click event -> Labels layer updated over {len(clicks)} correction clicks: median {np.median(clicks):.0f} ms, "
        f"p90 {np.percentile(clicks, 90):.0f} ms (target <= 150 ms: {np.median(clicks) <= 150})"
    )
    if a.screenshot:
        w.resize(460, 820)
        w.grab().save(a.screenshot)
        print(f"screenshot: {a.screenshot}")
    viewer.close()


if __name__ == "__main__":
    main()
