"""``seganypet_evaluate --protocol sam_med3d``: SAM-Med3D's oracle protocol, next to ours (interactive.py).

SAM-Med3D / SegAnyPET evaluate with the ground truth (their MedIM validation path), and so does this protocol, per case
and target (each reference label present; lesion labels split into instances as in ours):

- the 128^3 crop (nnU-Net's 1.5 mm preprocessing, ``SamMed3DPlanner``) is centred on the centre of the target's
  GROUND-TRUTH bounding box and stays there for every click (no object following: one crop);
- click k is a voxel drawn uniformly (seeded rng) from the error region (FN u FP) of the current prediction inside
  that crop; with an empty prediction that is a random voxel of the target; positive in FN, negative in FP;
- clicks accumulate and the previous low-res logits are fed back (the session does both);
- Dice / NSD / HD95 after each click against the full reference in the original geometry; the headline score is
  the LAST click's, ``max_over_clicks`` (upstream's optimistic ``max(dice_list)``) is given too, labelled.

The numbers are therefore oracle numbers (crop and clicks from the ground truth): not comparable with nnU-Net's
automatic Dice; ``summary["settings"]["protocol"]`` says so in every summary written here.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from tqdm import tqdm

from seganypet_nnunet import io_utils
from seganypet_nnunet.evaluation import summary as S
from seganypet_nnunet.evaluation.interactive import (
    DEFAULT_LESION_NAMES,
    ClickRecord,
    EvalCase,
    case_targets,
    find_cases,
    structure_labels,
)
from seganypet_nnunet.evaluation.metrics import dice, hd95, surface_dice
from seganypet_nnunet.inference import coordinates as C
from seganypet_nnunet.inference.follow import centred_box
from seganypet_nnunet.inference.session import SegAnyPETSession
from seganypet_nnunet.pretrained import resolve_model

PROTOCOL = "sam_med3d"
PROTOCOL_TEXT = (
    "sam_med3d (SAM-Med3D/SegAnyPET oracle protocol: 128^3 crop centred on the ground-truth bounding box, clicks "
    "drawn at random from the error region inside it, accumulated, previous low-res logits fed back; uses the ground "
    "truth, not comparable with automatic Dice)"
)


class OracleCropSession(SegAnyPETSession):
    """A session whose crop for the current target is pinned to a given centre (no following: ``max_crops`` 1).

    ``pin_crop(centre)`` takes a preprocessed voxel coordinate; every later prompt of that target is decoded on the
    crop centred there (prompts outside it are ignored by the session, as always).
    """

    def __init__(self, *args, **kwargs) -> None:
        kwargs.update(follow=False, max_crops=1)
        super().__init__(*args, **kwargs)
        self._pinned: np.ndarray | None = None

    def pin_crop(self, centre_pre: np.ndarray) -> tuple[tuple[int, int], ...]:
        """Pins the current target's crop on ``centre_pre`` (preprocessed voxel); returns the crop box."""
        self._pinned = np.asarray(centre_pre, float)
        # SamMed3DNet: unclamped, zero-padded outside the image, as upstream's CropOrPad (``centred_crops``)
        return centred_box(self._pinned, self.patch, self.geometry.preprocessed_shape, not self._centred_crops)

    def _interact(
        self, centre_pre: np.ndarray, points_pre: list | None = None, box_pre: tuple | None = None
    ) -> np.ndarray:
        if self._pinned is not None:
            centre_pre = self._pinned  # the pinned crop is kept whatever the click
        return super()._interact(centre_pre, points_pre, box_pre)


def gt_box_centre(mask_zyx: np.ndarray) -> np.ndarray:
    """Centre of the bounding box of a (z, y, x) bool mask, array coordinates (z, y, x)."""
    idx = np.argwhere(mask_zyx)
    return (idx.min(0) + idx.max(0)) / 2.0


def error_click_in_crop(
    pred: np.ndarray, ref: np.ndarray, crop: Sequence[tuple[int, int]], geometry, rng: np.random.Generator
) -> tuple[np.ndarray, bool] | None:
    """A random voxel of (pred XOR ref) whose preprocessed position lies in ``crop``; None when there is none.

    Args:
        pred / ref: (z, y, x) bool arrays, original geometry. crop: preprocessed-voxel box ((lo, hi) per axis).

    Returns:
        (array index (z, y, x), positive) or None.
    """
    err = np.argwhere(pred != ref)
    if not len(err):
        return None
    pre = C.array_to_preprocessed(err.astype(float), geometry)
    lo = np.array([a for a, _ in crop], float) - 0.5
    hi = np.array([b for _, b in crop], float) - 0.5
    inside = err[((pre >= lo) & (pre < hi)).all(1)]
    if not len(inside):
        return None
    zyx = inside[int(rng.integers(len(inside)))]
    return zyx, bool(ref[tuple(zyx)])


def run_target_sam_med3d(session: OracleCropSession, target, spacing_zyx, n_clicks: int, tol: float, rng) -> list:
    """Click loop of one target (module docstring); returns its ``ClickRecord`` dicts."""
    session.new_target(target.name)
    session.reset()
    crop = session.pin_crop(C.array_to_preprocessed(gt_box_centre(target.mask), session.geometry))
    pred = np.zeros(target.mask.shape, bool)
    records: list[dict] = []
    for k in range(1, n_clicks + 1):
        click = error_click_in_crop(pred, target.mask, crop, session.geometry, rng)
        if click is None:
            records.append(asdict(ClickRecord(k, False, None, None, **{m: records[-1][m] for m in S.METRICS})))
            continue
        zyx, positive = click
        ijk = tuple(float(c) for c in zyx[::-1])
        pred = np.asarray(session.add_point(ijk, positive=positive, space="voxel")) > 0
        metrics = {
            "dice": dice(pred, target.mask),
            "nsd": surface_dice(pred, target.mask, spacing_zyx, tol),
            "hd95_mm": S.finite_or_none(hd95(pred, target.mask, spacing_zyx)),
        }
        records.append(asdict(ClickRecord(k, True, ijk, positive, **metrics)))
    return records


def evaluate_sam_med3d(
    cases: Sequence[EvalCase],
    session: OracleCropSession,
    labels: Mapping[str, int],
    *,
    n_clicks: int = 5,
    tolerance_mm: float = 2.0,
    target_names: Sequence[str] | None = None,
    lesion_names: Sequence[str] = DEFAULT_LESION_NAMES,
    seed: int = 233,
    output_folder: Path | None = None,
    settings: Mapping | None = None,
) -> dict:
    """Runs SAM-Med3D's oracle protocol; returns the summary (``summary_sam_med3d.json`` in ``output_folder``).

    Args:
        cases: from ``find_cases``. session: an ``OracleCropSession`` (model loaded once).
        labels: dataset.json labels. n_clicks: clicks per target (>= 1). seed: click rng seed (upstream: 233).
    """
    if n_clicks < 1:
        raise ValueError(f"n_clicks must be >= 1, got {n_clicks}")
    if not cases:
        raise ValueError("no cases to evaluate")
    structures = structure_labels(labels, target_names)
    rng = np.random.default_rng(seed)
    out_cases = {}
    for case in tqdm(cases, desc="seganypet_evaluate (sam_med3d)", unit="case"):
        ref, spacing_zyx = S.read_label_array(
            case.label_file, f"case {case.case_id} reference", reference=case.image_files[0]
        )
        inst = None
        if case.instance_file is not None:
            inst, _ = S.read_label_array(
                case.instance_file, f"case {case.case_id} instances", reference=case.image_files[0]
            )
        session.set_image([str(f) for f in case.image_files])
        targets = {}
        for t in case_targets(ref, inst, structures, lesion_names):
            clicks = run_target_sam_med3d(session, t, spacing_zyx, n_clicks, tolerance_mm, rng)
            targets[t.name] = {
                "structure": t.structure,
                "label": t.label,
                "kind": t.kind,
                "voxels": int(t.mask.sum()),
                "clicks": clicks,
                **S.target_block(clicks),
            }
        out_cases[case.case_id] = {"label_file": str(case.label_file), "targets": targets, "lesions": {}}
    summary = {
        "settings": {
            "protocol": PROTOCOL_TEXT,
            "n_clicks": n_clicks,
            "tolerance_mm": tolerance_mm,
            "seed": seed,
            "score": "last click ('last'); 'max_over_clicks' is upstream's optimistic best over clicks",
            "structures": structures,
            **dict(settings or {}),
        },
        "cases": out_cases,
        "mean": S.aggregate(out_cases),
    }
    if output_folder is not None:
        io_utils.write_json(summary, Path(output_folder) / "summary_sam_med3d.json")
    return summary


def evaluate_model_folder_sam_med3d(
    model_folder: Path,
    images_dir: Path,
    labels_dir: Path,
    output_folder: Path | None = None,
    *,
    folds: Sequence[int | str] = ("all",),
    checkpoint: str = "checkpoint_final.pth",
    device: str = "cpu",
    instances_dir: Path | None = None,
    trust_checkpoint: bool = False,
    **kwargs,
) -> dict:
    """``evaluate_sam_med3d`` on an nnU-Net model folder (labels and channels from its dataset.json)."""
    from seganypet_nnunet.inference.model_folder import load_model_folder

    model_folder = resolve_model(model_folder)
    ds = io_utils.read_json_object(model_folder / "dataset.json")
    ending = ds.get("file_ending", ".nii.gz")
    cases = find_cases(images_dir, labels_dir, instances_dir, len(ds["channel_names"]), ending)
    session = OracleCropSession(
        load_model_folder(model_folder, folds, checkpoint, trusted=trust_checkpoint), device=device
    )
    settings = {"model_folder": str(model_folder), "folds": [str(f) for f in folds], "checkpoint": checkpoint}
    return evaluate_sam_med3d(cases, session, ds["labels"], output_folder=output_folder, settings=settings, **kwargs)
