"""autoPET IV protocol runner: predictions ``CASE_pred0 ... CASE_pred10`` from each case's click JSON, then the score.

Per case: step 0 is the automatic prediction (no click; protocols.py); step k (1..10) adds the k-th tumour click
(positive) and then the k-th background click (negative) of the case's autoPET IV click JSON, in the order the file
gives them (either form: ``{"tumor": [...], "background": [...]}`` or grand-challenge ``"points"``; coordinates are
original voxel (i, j, k), nibabel/ITK index order). When a list runs out its clicks are simply missing from later
steps; once both are exhausted the mask is carried forward. Click files: ``CLICKS/CASE.json`` or
``CLICKS/CASE_clicks.json``. Outputs, in the challenge's flat layout: ``OUT/predictions/CASE_pred{k}<ending>``
(uint8 0/1, original geometry), and with a reference folder ``OUT/autopet_iv_score.json`` (autopet_score.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import SimpleITK as sitk
from tqdm import tqdm

from seganypet_nnunet import io_utils, validation
from seganypet_nnunet.evaluation import protocols as P
from seganypet_nnunet.evaluation.autopet_score import N_STEPS, format_steps_table, score_folder

Coord = tuple[float, float, float]


def click_file(clicks_dir: Path, case_id: str) -> Path:
    """``CLICKS/CASE.json`` or ``CLICKS/CASE_clicks.json`` (FileNotFoundError naming both when neither exists)."""
    for name in (f"{case_id}.json", f"{case_id}_clicks.json"):
        if (Path(clicks_dir) / name).is_file():
            return Path(clicks_dir) / name
    raise FileNotFoundError(f"case {case_id}: no click file {Path(clicks_dir) / (case_id + '.json')} (or _clicks.json)")


def read_clicks(path: Path, image: sitk.Image | sitk.ImageFileReader) -> tuple[list[Coord], list[Coord]]:
    """(tumour clicks, background clicks) of an autoPET IV click JSON, each in file order, original voxel (i, j, k).

    ``image`` (the PET, or geometry only) bounds-checks the clicks. Raises ValueError (one line naming the file) for
    a malformed file or a click outside the image.
    """
    from seganypet_nnunet.dataset_conversion.autopet_clicks import parse_autopet_clicks

    points = parse_autopet_clicks(Path(path), image)["targets"][0]["points"]
    tumour = [tuple(float(c) for c in p["coord"]) for p in points if p["positive"]]
    background = [tuple(float(c) for c in p["coord"]) for p in points if not p["positive"]]
    return tumour, background


def run_click_steps(
    prompter: P.Prompter,
    initial: np.ndarray,
    tumour: Sequence[Coord],
    background: Sequence[Coord],
    n_steps: int = N_STEPS,
) -> list[np.ndarray]:
    """The autoPET IV click sequence on one case (module docstring).

    Args:
        prompter: model adapter, image already set.
        initial: (z, y, x) bool automatic prediction (step 0).
        tumour / background: clicks, original voxel (i, j, k), in file order.
        n_steps: steps including step 0.

    Returns:
        ``n_steps`` (z, y, x) bool masks: step 0 (``initial``), then after each tumour + background pair.
    """
    current = np.asarray(initial, bool)
    prompter.start(current)
    masks = [current]
    for k in range(n_steps - 1):
        for clicks, positive in ((tumour, True), (background, False)):
            if k < len(clicks):
                current = np.asarray(prompter.click(clicks[k], positive), bool)
        masks.append(current)
    return masks


def run_autopet_iv(
    model_folder: Path,
    images_dir: Path,
    clicks_dir: Path,
    output_folder: Path,
    *,
    ref_dir: Path | None = None,
    auto_pred: Path | None = None,
    n_steps: int = N_STEPS,
    folds: Sequence[int | str] = (0,),
    checkpoint: str = "checkpoint_final.pth",
    device: str = "cpu",
) -> dict:
    """Runs the autoPET IV protocol with a SegAnyPET model folder on an nnU-Net raw images folder.

    Args:
        model_folder: nnU-Net model folder (its dataset.json names the lesion label and the channels).
        images_dir: ``CASE_0000<ending>`` (+ ``_0001`` ...) images.
        clicks_dir: per-case autoPET IV click JSONs.
        output_folder: receives ``predictions/`` (and ``automatic/`` when ``auto_pred`` is None).
        ref_dir: reference label maps (``CASE<ending>``); when given, the predictions are scored.
        auto_pred: automatic-mode label maps (``CASE<ending>``) to use as step 0.
        n_steps: steps including step 0 (autoPET IV: 11).

    Returns:
        ``{"predictions": folder, "cases": [ids], "score": score_folder(...) or None}``.
    """
    from seganypet_nnunet.inference.predict import input_cases
    from seganypet_nnunet.inference.session import SegAnyPETSession

    ds = P.model_dataset_json(model_folder)
    ending, value = ds.get("file_ending", ".nii.gz"), P.lesion_label(ds["labels"])
    cases = input_cases(images_dir, ending, len(ds["channel_names"]))
    clicks = {c: click_file(clicks_dir, c) for c in cases}  # every click file exists before any work
    auto = P.automatic_folder(model_folder, images_dir, output_folder, auto_pred, folds, checkpoint, device)
    session = SegAnyPETSession.from_model_folder(model_folder, folds=tuple(folds), checkpoint=checkpoint, device=device)
    pred_dir = Path(output_folder) / "predictions"
    for cid, files in tqdm(sorted(cases.items()), desc="autoPET IV protocol", unit="case"):
        tumour, background = read_clicks(clicks[cid], validation.read_header(files[0]))
        session.set_image([str(f) for f in files])
        initial = P.automatic_mask(auto, cid, ending, value, session.array_shape)
        masks = run_click_steps(P.SessionPrompter(session), initial, tumour, background, n_steps)
        for k, mask in enumerate(masks):
            io_utils.write_image(session.to_image(mask.astype(np.uint8)), pred_dir / f"{cid}_pred{k}{ending}")
    score = None
    if ref_dir is not None:
        score = score_folder(
            pred_dir, ref_dir, n_steps=n_steps, label=value, output_file=Path(output_folder) / "autopet_iv_score.json"
        )
        print(format_steps_table(score["summary"]["overall"]))
    return {"predictions": str(pred_dir), "cases": sorted(cases), "score": score}
