"""Simulated-click interactive evaluation of a promptable segmenter (the API behind ``seganypet_evaluate``, whose
command line lives in ``evaluate_cli.py``).

Protocol, per case and target (each reference label present, lesion labels split into instances): the segmenter starts
an empty target; click k (1..N) is ``next_click(pred, ref)`` on the (z, y, x) arrays — with an empty prediction that is
the interior-most voxel of the target's largest component, afterwards the interior-most voxel of the largest error
component (positive in FN, negative in FP); ``--random_clicks`` draws them with a seeded rng instead. The click is
REVERSED to original voxel ITK index order (i, j, k) before it reaches the segmenter. After each click Dice, NSD
(``tolerance_mm``) and HD95 are recorded; once the prediction equals the reference no further click is made and the
last values are carried forward (``clicked: false``). Lesion labels also get, per case and click, autoPET FP/FN volume
(mL) and lesion-wise F1 on the UNION of that label's instance masks vs the reference label. The headline score is
the LAST click's; ``max_over_clicks`` is also given, labelled as such.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Mapping, Protocol, Sequence

import numpy as np
from tqdm import tqdm

from seganypet_nnunet import io_utils, validation
from seganypet_nnunet.errors import SeganypetError
from seganypet_nnunet.evaluation import reference_methods as RM
from seganypet_nnunet.evaluation import summary as S
from seganypet_nnunet.evaluation.cases import (
    EvalCase,
    EvalTarget,
    case_targets,
    check_cases,
    find_cases,
    read_case,
    structure_labels,
)
from seganypet_nnunet.evaluation.metrics import dice as dice_score
from seganypet_nnunet.evaluation.metrics import (
    false_negative_volume,
    false_positive_volume,
    hd95,
    lesion_detection,
    surface_dice,
)
from seganypet_nnunet.evaluation.summary import structure_table
from seganypet_nnunet.pretrained import resolve_model
from seganypet_nnunet.prompts.simulation import next_click

__all__ = ["EvalCase", "Segmenter", "evaluate_interactive", "evaluate_model_folder", "find_cases", "structure_table"]

DEFAULT_LESION_NAMES = ("lesion", "lesions", "tumor", "tumour", "gtvp", "gtvn")


class Segmenter(Protocol):
    """What the protocol drives: one image, several targets, one click at a time."""

    def start_target(self, name: str) -> None:
        """Start a new, empty target; later clicks refine it."""

    def click(self, coord_ijk: Sequence[float], positive: bool) -> np.ndarray:
        """Click at original voxel ITK index (i, j, k); returns the target mask, (z, y, x) array, original geometry."""


SegmenterFactory = Callable[[EvalCase], Segmenter]


@dataclass(frozen=True)
class ClickRecord:
    """Metrics after click ``click`` (1-based); ``coord_ijk`` original voxel (i, j, k); None fields when not clicked."""

    click: int
    clicked: bool
    coord_ijk: tuple[float, float, float] | None
    positive: bool | None
    dice: float
    nsd: float
    hd95_mm: float | None


def _metrics(pred: np.ndarray, ref: np.ndarray, spacing_zyx, tolerance_mm: float) -> dict:
    return {
        "dice": dice_score(pred, ref),
        "nsd": surface_dice(pred, ref, spacing_zyx, tolerance_mm),
        "hd95_mm": S.finite_or_none(hd95(pred, ref, spacing_zyx)),
    }


def run_target(
    segmenter: Segmenter,
    target: EvalTarget,
    spacing_zyx: Sequence[float],
    n_clicks: int,
    tolerance_mm: float,
    rng: np.random.Generator | None,
    case_id: str = "?",
) -> tuple[list[ClickRecord], list[np.ndarray]]:
    """Simulates ``n_clicks`` clicks on one target; returns the records and the (z, y, x) bool mask after each click.

    ``spacing_zyx`` is the voxel size in mm in array order (z, y, x).
    """
    segmenter.start_target(target.name)
    pred = np.zeros(target.mask.shape, dtype=bool)
    records: list[ClickRecord] = []
    masks: list[np.ndarray] = []
    for k in range(1, n_clicks + 1):
        click = next_click(pred, target.mask, rng, spacing=spacing_zyx)
        if click is None:
            records.append(ClickRecord(k, False, None, None, **{m: getattr(records[-1], m) for m in S.METRICS}))
            masks.append(pred)
            continue
        ijk = tuple(float(c) for c in click.coord[::-1])  # array (z, y, x) -> original voxel (i, j, k)
        out = np.asarray(segmenter.click(ijk, click.positive))
        if out.shape != target.mask.shape:
            raise ValueError(
                f"case {case_id}, target {target.name}: segmenter returned shape {out.shape}, "
                f"reference (z, y, x) is {target.mask.shape}"
            )
        pred = out > 0
        records.append(
            ClickRecord(k, True, ijk, bool(click.positive), **_metrics(pred, target.mask, spacing_zyx, tolerance_mm))
        )
        masks.append(pred)
    return records, masks


def _lesion_curve(unions: list[np.ndarray], ref: np.ndarray, spacing_zyx) -> list[dict]:
    rows = []
    for k, union in enumerate(unions, start=1):
        det = lesion_detection(union, ref)
        rows.append(
            {
                "click": k,
                "fp_volume_ml": false_positive_volume(union, ref, spacing_zyx),
                "fn_volume_ml": S.finite_or_none(false_negative_volume(union, ref, spacing_zyx)),
                "lesion_f1": S.finite_or_none(det.f1),
                "lesion_tp": det.tp,
                "lesion_fp": det.fp,
                "lesion_fn": det.fn,
            }
        )
    return rows


def _evaluate_case(case, segmenter, ref, instances, spacing_zyx, structures, lesion_names, n_clicks, tol, rng, scorer):
    targets = case_targets(ref, instances, structures, lesion_names)
    lesion_set = {n.lower() for n in lesion_names}
    unions = {
        n: [np.zeros(ref.shape, bool) for _ in range(n_clicks)]
        for n, v in structures.items()
        if n.lower() in lesion_set and (ref == v).any()
    }
    out_targets = {}
    for t in targets:
        records, masks = run_target(segmenter, t, spacing_zyx, n_clicks, tol, rng, case.case_id)
        clicks = [asdict(r) for r in records]
        out_targets[t.name] = {
            "structure": t.structure,
            "label": t.label,
            "kind": t.kind,
            "voxels": int(t.mask.sum()),
            "clicks": clicks,
            **S.target_block(clicks),
        }
        if scorer is not None:  # the reader's methods from the model's first click, (i, j, k) -> array (z, y, x)
            out_targets[t.name]["reference_methods"] = scorer(t.mask, records[0].coord_ijk[::-1])
        if t.structure in unions:
            for u, m in zip(unions[t.structure], masks, strict=True):
                u |= m
    lesions = {}
    for name, u in unions.items():
        curve = _lesion_curve(u, ref == structures[name], spacing_zyx)
        lesions[name] = {"clicks": curve, "last": curve[-1]}
    return {"label_file": str(case.label_file), "targets": out_targets, "lesions": lesions}


def evaluate_interactive(
    cases: Sequence[EvalCase],
    segmenter_factory: SegmenterFactory,
    labels: Mapping[str, int],
    *,
    n_clicks: int = 5,
    tolerance_mm: float = 2.0,
    target_names: Sequence[str] | None = None,
    lesion_names: Sequence[str] = DEFAULT_LESION_NAMES,
    seed: int | None = None,
    auto_pred: Path | None = None,
    baseline_pred: Path | None = None,
    output_folder: Path | None = None,
    file_ending: str = ".nii.gz",
    settings: Mapping | None = None,
    reference_methods: bool = False,
    liver_voi: Mapping[str, Sequence[float]] | None = None,
) -> dict:
    """Runs the protocol (module docstring) over ``cases`` and returns the summary dict (written if ``output_folder``).

    Args:
        cases: from ``find_cases``.
        segmenter_factory: case → Segmenter with that case's image set (e.g. ``session_factory(...)``).
        labels: dataset.json ``labels`` (name → value).
        n_clicks: clicks per target (>= 1).
        tolerance_mm: NSD tolerance in mm.
        target_names: restrict to these structure names.
        lesion_names: structures split into instances and scored with FP/FN volume and lesion F1.
        seed: None → deterministic protocol; an int → random clicks from ``np.random.default_rng(seed)``.
        auto_pred / baseline_pred: folders of label maps scored per structure (``automatic`` / ``baseline`` blocks).
        output_folder: writes ``summary.json`` and ``dice_vs_clicks.png`` there.
        file_ending: label/image file ending.
        settings: extra settings recorded in the summary (model folder, folds, checkpoint, ``heldout_structures``
            drawn as held out in the plot...).
        reference_methods: also score the PET reader's threshold methods from each target's first click
            (``reference_methods.py``); per target ``reference_methods``, per structure means in ``mean``.
        liver_voi: case id -> world mm LPS (x, y, z) centre of PERCIST's liver VOI where no ``liver`` label exists.
    """
    if n_clicks < 1:
        raise SeganypetError(f"-n_clicks: must be >= 1, got {n_clicks}")
    if tolerance_mm <= 0:
        raise SeganypetError(f"-tolerance_mm: must be > 0, got {tolerance_mm}")
    if not cases:
        raise SeganypetError("no cases to evaluate")
    structures = structure_labels(labels, target_names)
    rng = None if seed is None else np.random.default_rng(seed)
    out_cases, refs, present = {}, {}, {}
    for case in tqdm(cases, desc="seganypet_evaluate", unit="case"):
        ref, instances, spacing_zyx = read_case(case)
        segmenter = segmenter_factory(case)
        scorer = None
        if reference_methods:
            voi = (liver_voi or {}).get(case.case_id)
            scorer = RM.case_scorer(case.image_files[0], ref, labels, voi, spacing_zyx)
        out_cases[case.case_id] = _evaluate_case(
            case, segmenter, ref, instances, spacing_zyx, structures, lesion_names, n_clicks, tolerance_mm, rng, scorer
        )
        refs[case.case_id] = ref
        present[case.case_id] = {n: v for n, v in structures.items() if (ref == v).any()}
    summary = {
        "settings": {
            "n_clicks": n_clicks,
            "tolerance_mm": tolerance_mm,
            "protocol": "deterministic" if seed is None else "random",
            "seed": seed,
            "score": "last click ('last'); 'max_over_clicks' is the optimistic best over clicks",
            "lesion_structures": [n for n in structures if n.lower() in {x.lower() for x in lesion_names}],
            "lesion_connectivity": 26,
            "reference_methods": RM.SETTINGS if reference_methods else None,
            "structures": structures,
            **dict(settings or {}),
        },
        "cases": out_cases,
        "mean": S.aggregate(out_cases),
        "automatic": S.reference_dice(auto_pred, refs, present, file_ending) if auto_pred else None,
        "baseline": S.reference_dice(baseline_pred, refs, present, file_ending) if baseline_pred else None,
    }
    summary["monotonicity"] = S.monotonicity(out_cases, summary["mean"]["per_structure"])
    if output_folder is not None:
        from seganypet_nnunet.evaluation.plot import plot_dice_vs_clicks

        io_utils.write_json(summary, Path(output_folder) / "summary.json")
        plot_dice_vs_clicks(summary, Path(output_folder) / "dice_vs_clicks.png")
    return summary


class SessionSegmenter:
    """Adapter: a ``SegAnyPETSession`` (image already set) as a ``Segmenter``; clicks in original voxel (i, j, k)."""

    def __init__(self, session) -> None:
        self.session = session

    def start_target(self, name: str) -> None:
        self.session.new_target(name)
        self.session.reset()

    def click(self, coord_ijk: Sequence[float], positive: bool) -> np.ndarray:
        return np.asarray(self.session.add_point(coord_ijk, positive=positive, space="voxel"))


def session_factory(
    model_folder: Path,
    folds: Sequence[int | str] = (0,),
    checkpoint: str = "checkpoint_final.pth",
    device: str = "cpu",
    trust_checkpoint: bool = False,
    click_policy=None,
) -> SegmenterFactory:
    """Loads the model once (``trust_checkpoint``: see ``load_model_folder``); each case sets its image channels on
    the same session; ``click_policy``: the session's ``ClickPolicy`` (None: its default)."""
    from seganypet_nnunet.inference.model_folder import load_model_folder
    from seganypet_nnunet.inference.session import SegAnyPETSession

    model = load_model_folder(model_folder, tuple(folds), checkpoint, trusted=trust_checkpoint)
    session = SegAnyPETSession(model, device=device, **({} if click_policy is None else {"click_policy": click_policy}))

    def make(case: EvalCase) -> Segmenter:
        session.set_image([str(f) for f in case.image_files])
        return SessionSegmenter(session)

    return make


def evaluate_model_folder(
    model_folder: Path,
    images_dir: Path,
    labels_dir: Path,
    output_folder: Path | None = None,
    *,
    folds: Sequence[int | str] = (0,),
    checkpoint: str = "checkpoint_final.pth",
    device: str = "cpu",
    instances_dir: Path | None = None,
    trust_checkpoint: bool = False,
    click_policy=None,
    **kwargs,
) -> dict:
    """``evaluate_interactive`` with a SegAnyPETSession from an nnU-Net model folder (labels, channels from its
    dataset.json); ``kwargs`` go to ``evaluate_interactive``. ``model_folder`` may be a packaged model's name."""
    model_folder = resolve_model(model_folder)
    ds = io_utils.read_json_object(model_folder / "dataset.json")
    ending = ds.get("file_ending", ".nii.gz")
    validation.check_device(device)
    cases = find_cases(images_dir, labels_dir, instances_dir, len(ds["channel_names"]), ending)
    structure_labels(ds["labels"], kwargs.get("target_names"))
    preds = {"-auto_pred": kwargs.get("auto_pred"), "-baseline_pred": kwargs.get("baseline_pred")}
    check_cases(cases, ds["labels"], preds, ending)
    for flag in ("n_clicks", "tolerance_mm"):
        if flag in kwargs and kwargs[flag] <= 0:
            raise SeganypetError(f"-{flag}: must be > 0, got {kwargs[flag]}")
    factory = session_factory(model_folder, folds, checkpoint, device, trust_checkpoint, click_policy)
    from seganypet_nnunet.trainers.registry import heldout_labels

    settings = {
        "model_folder": str(model_folder),
        "folds": [str(f) for f in folds],
        "checkpoint": checkpoint,
        "heldout_structures": list(heldout_labels(model_folder.name.split("__")[0])),  # Trainer__Plans__configuration
        "click_policy": "session default" if click_policy is None else repr(click_policy),
    }
    return evaluate_interactive(
        cases, factory, ds["labels"], output_folder=output_folder, file_ending=ending, settings=settings, **kwargs
    )
