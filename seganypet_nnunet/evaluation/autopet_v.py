"""autoPET V protocol runner: an automatic prediction, then scribbles on the largest error; AUC-Dice and AUC-DMM.

Per case: step 0 is the automatic prediction (protocols.py); steps 1..5 each simulate ONE scribble on the current
prediction's largest error component (prompts/scribbles.py: positive in a missed region, negative in a false
positive, on one axial slice) and feed it to the model as a scribble prompt. No error left: the mask is carried.
The rng of case ``CASE`` is ``np.random.default_rng([seed, crc32(CASE)])``, so a case's scribbles do not depend on
which other cases run.

Metrics per step (reference = lesion label, prediction = binary mask):
- Dice (NaN for a lesion-free reference);
- DMM, the detection metric: lesion-wise F1 = 2TP / (2TP + FP + FN) over connected components (18-connectivity, as
  the autoPET volumes), a reference lesion detected (TP) when a predicted component has IoU >= 0.1 with it, a
  predicted component FP when its IoU is < 0.1 with every lesion; NaN for a lesion-free reference;
- FPV / FNV in mL (autopet_score.step_metrics), for reference.
AUC-Dice and AUC-DMM: trapezoid over the 6 steps normalised to [0, 1] (metrics.dice_auc: x = step / 5), and the case
score = 0.5 AUC-Dice + 0.5 AUC-DMM, as the challenge combines them. Lesion-free cases count for FPV only (their Dice
and DMM are undefined), as in autoPET IV. Outputs: ``OUT/predictions_autopet_v/CASE_pred{k}<ending>`` and
``OUT/autopet_v_score.json``.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from tqdm import tqdm

from seganypet_nnunet import io_utils
from seganypet_nnunet.evaluation import protocols as P
from seganypet_nnunet.evaluation.autopet_score import step_metrics
from seganypet_nnunet.evaluation.metrics import AUTOPET_CONNECTIVITY, dice_auc, lesion_detection
from seganypet_nnunet.evaluation.summary import finite_or_none, read_label_array
from seganypet_nnunet.prompts.scribbles import Scribble, simulate_scribble

N_SCRIBBLES = 5
DMM_IOU = 0.1


def detection_f1(pred: np.ndarray, ref: np.ndarray, *, iou_threshold: float = DMM_IOU) -> float:
    """DMM: lesion-wise F1 with matches at IoU >= ``iou_threshold`` (18-connectivity); NaN for an empty reference.

    Args:
        pred / ref: 3D bool arrays of equal shape, any axis order.
        iou_threshold: in (0, 1].
    """
    if not np.asarray(ref).any():
        return float("nan")
    # lesion_detection matches on IoU > min_overlap; the largest double below the threshold makes it ">= threshold"
    below = float(np.nextafter(iou_threshold, 0.0))
    return lesion_detection(pred, ref, min_overlap=below, connectivity=AUTOPET_CONNECTIVITY).f1


def case_rng(seed: int, case_id: str) -> np.random.Generator:
    """The scribble rng of one case: ``default_rng([seed, crc32(case_id)])``."""
    return np.random.default_rng([int(seed), zlib.crc32(case_id.encode())])


def run_scribble_steps(
    prompter: P.Prompter,
    initial: np.ndarray,
    ref: np.ndarray,
    spacing_zyx: Sequence[float],
    rng: np.random.Generator | None,
    n_scribbles: int = N_SCRIBBLES,
    **scribble_kwargs,
) -> tuple[list[np.ndarray], list[Scribble | None]]:
    """Step 0 + ``n_scribbles`` simulated scribbles; returns the (z, y, x) bool masks and the scribbles (None: none).

    ``ref`` is the (z, y, x) bool lesion reference, ``spacing_zyx`` its voxel size in mm; ``scribble_kwargs`` go to
    ``simulate_scribble`` (length_mm, thickness, jitter_deg).
    """
    current = np.asarray(initial, bool)
    prompter.start(current)
    masks, scribbles = [current], []
    for _ in range(n_scribbles):
        s = simulate_scribble(current, ref, spacing_zyx, rng, **scribble_kwargs)
        if s is not None:
            current = np.asarray(prompter.scribble(s.mask, s.positive), bool)
        masks.append(current)
        scribbles.append(s)
    return masks, scribbles


def score_scribble_case(masks: Sequence[np.ndarray], ref: np.ndarray, spacing_zyx: Sequence[float]) -> dict:
    """Per-step Dice / DMM / FPV / FNV, AUC-Dice, AUC-DMM and their 50/50 score of one case (module docstring)."""
    ref = np.asarray(ref, bool)
    lesion_free = not ref.any()
    steps = []
    for k, m in enumerate(masks):
        row = {"step": k, **step_metrics(m, ref, spacing_zyx), "dmm": detection_f1(m, ref)}
        steps.append({key: finite_or_none(v) if key in ("dice", "dmm") else v for key, v in row.items()})
    out: dict = {"lesion_free": lesion_free, "steps": steps, "auc_dice": None, "auc_dmm": None, "score": None}
    if not lesion_free:
        out["auc_dice"] = dice_auc([s["dice"] for s in steps])
        out["auc_dmm"] = dice_auc([s["dmm"] for s in steps])
        out["score"] = 0.5 * out["auc_dice"] + 0.5 * out["auc_dmm"]
    out["fpv_auc_ml"] = dice_auc([s["fpv_ml"] for s in steps])
    return out


def _mean(values) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(vals)) if vals else None


def summarize_v(cases: Mapping[str, Mapping]) -> dict:
    """Means over cases (Dice/DMM terms over cases with lesions, FPV over all) and the per-step mean curve."""
    blocks = list(cases.values())
    n = len(blocks[0]["steps"]) if blocks else 0
    keys = ("dice", "dmm", "fpv_ml", "fnv_ml")
    return {
        "n_cases": len(blocks),
        "n_lesion_free": sum(bool(b["lesion_free"]) for b in blocks),
        **{k: _mean(b[k] for b in blocks) for k in ("auc_dice", "auc_dmm", "score", "fpv_auc_ml")},
        "per_step": [{"step": i, **{k: _mean(b["steps"][i][k] for b in blocks) for k in keys}} for i in range(n)],
    }


def format_v_table(summary: Mapping) -> str:
    """Per-step mean Dice / DMM / FPV, then AUC-Dice, AUC-DMM and the 50/50 score."""

    def f(v) -> str:
        return f"{v:8.4f}" if v is not None else f"{'-':>8}"

    lines = [f"{'step':>4} | {'Dice':>8} | {'DMM':>8} | {'FPV mL':>8}"]
    lines += [f"{r['step']:>4} | {f(r['dice'])} | {f(r['dmm'])} | {f(r['fpv_ml'])}" for r in summary["per_step"]]
    lines.append(
        f"AUC-Dice {f(summary['auc_dice'])} | AUC-DMM {f(summary['auc_dmm'])} | score (50/50) {f(summary['score'])}"
        f" | cases {summary['n_cases']} ({summary['n_lesion_free']} lesion-free: FPV only)"
    )
    return "\n".join(lines)


def run_autopet_v(
    model_folder: Path,
    images_dir: Path,
    ref_dir: Path,
    output_folder: Path,
    *,
    auto_pred: Path | None = None,
    n_scribbles: int = N_SCRIBBLES,
    seed: int = 0,
    folds: Sequence[int | str] = (0,),
    checkpoint: str = "checkpoint_final.pth",
    device: str = "cpu",
) -> dict:
    """Runs the autoPET V protocol with a SegAnyPET model folder; writes predictions and ``autopet_v_score.json``.

    Args:
        model_folder: nnU-Net model folder (its dataset.json names the lesion label and the channels).
        images_dir / ref_dir: ``CASE_0000<ending>`` images and ``CASE<ending>`` reference label maps.
        output_folder: receives ``predictions_autopet_v/``, ``autopet_v_score.json`` (and ``automatic/``).
        auto_pred: automatic-mode label maps to use as step 0 (else predicted).
        n_scribbles: scribbles after step 0 (autoPET V: 5).
        seed: scribble seed (``case_rng``).

    Returns:
        ``{"settings", "cases": {case: score_scribble_case(...) + "scribbles"}, "summary": summarize_v(...)}``.
    """
    from seganypet_nnunet.inference.predict import input_cases
    from seganypet_nnunet.inference.session import SegAnyPETSession

    if n_scribbles < 1:
        raise ValueError(f"n_scribbles must be >= 1, got {n_scribbles}")
    ds = P.model_dataset_json(model_folder)
    ending, value = ds.get("file_ending", ".nii.gz"), P.lesion_label(ds["labels"])
    cases = input_cases(images_dir, ending, len(ds["channel_names"]))
    refs = {c: Path(ref_dir) / f"{c}{ending}" for c in cases}
    for c, f in refs.items():
        if not f.is_file():
            raise FileNotFoundError(f"case {c}: missing reference {f}")
    auto = P.automatic_folder(model_folder, images_dir, output_folder, auto_pred, folds, checkpoint, device)
    session = SegAnyPETSession.from_model_folder(model_folder, folds=tuple(folds), checkpoint=checkpoint, device=device)
    pred_dir = Path(output_folder) / "predictions_autopet_v"
    out_cases = {}
    for cid, files in tqdm(sorted(cases.items()), desc="autoPET V protocol", unit="case"):
        ref, spacing = read_label_array(refs[cid], f"case {cid} reference", reference=files[0])
        session.set_image([str(f) for f in files])
        if tuple(session.array_shape) != ref.shape:
            raise ValueError(f"case {cid}: reference {refs[cid]} shape {ref.shape} != image {session.array_shape}")
        initial = P.automatic_mask(auto, cid, ending, value, ref.shape)
        masks, scribbles = run_scribble_steps(
            P.SessionPrompter(session), initial, ref == value, spacing, case_rng(seed, cid), n_scribbles
        )
        for k, mask in enumerate(masks):
            io_utils.write_image(session.to_image(mask.astype(np.uint8)), pred_dir / f"{cid}_pred{k}{ending}")
        out_cases[cid] = score_scribble_case(masks, ref == value, spacing)
        out_cases[cid]["scribbles"] = [
            None if s is None else {"z": s.z, "positive": s.positive, "voxels": int(s.mask.sum())} for s in scribbles
        ]
    result = {
        "settings": {"n_scribbles": n_scribbles, "seed": seed, "dmm_iou": DMM_IOU, "connectivity": 18},
        "cases": out_cases,
        "summary": summarize_v(out_cases),
    }
    io_utils.write_json(result, Path(output_folder) / "autopet_v_score.json")
    print(format_v_table(result["summary"]))
    return result
