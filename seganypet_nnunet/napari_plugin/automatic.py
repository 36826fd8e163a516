"""The viewer's **Automatic** button: the model's prompt-free mode on the open image, one session target per label.

Runs in a worker thread (controller.py submits it); writes the image to a temporary folder because nnU-Net's
predictor reads files.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk


def automatic_targets(session, image: sitk.Image, settings: dict) -> np.ndarray:
    """Predict ``image`` with the model folder of ``settings`` (nnU-Net sliding window, folds ensembled, no TTA) and
    add one target per label found (``NAME``, or ``NAME_auto`` when that target exists), started from its mask.

    Args:
        session: the viewer's ``SegAnyPETSession`` (image already set).
        image: the open image.
        settings: ``folder``, ``folds``, ``checkpoint``, ``device``, ``trusted`` of the loaded model.
    Returns:
        the session's label map (z, y, x) afterwards.
    """
    from seganypet_nnunet.inference.predict import predict_automatic

    labels = {k: v for k, v in session.model.dataset_json["labels"].items() if isinstance(v, int) and v > 0}
    ending = session.model.dataset_json["file_ending"]
    with tempfile.TemporaryDirectory(prefix="seganypet_napari_") as tmp:
        sitk.WriteImage(image, str(Path(tmp) / f"case_0000{ending}"))
        predict_automatic(
            settings["folder"],
            tmp,
            Path(tmp) / "out",
            folds=settings["folds"],
            checkpoint=settings["checkpoint"],
            device=settings["device"],
            disable_tta=True,
            npp=0,
            nps=0,
            trust_checkpoint=settings["trusted"],
        )
        seg = sitk.GetArrayFromImage(sitk.ReadImage(str(Path(tmp) / "out" / f"case{ending}")))
    for name, value in labels.items():
        if (seg == value).any():
            session.new_target(name if name not in session.targets else f"{name}_auto")
            session.add_mask((seg == value).astype(np.uint8))
    return session.label_map()[0]
