"""autoPET IV scorer: Dice, false-positive and false-negative volume per interaction step, AUCs, ranking terms.

A re-implementation of what the challenge defines (the published ``evaluation_metrics.py`` cannot run; see
reference/field_update_2026-11.md), runnable on predictions from ANY method: ``seganypet_score_autopet -pred DIR
-ref DIR``. Layout: ``REF/CASE<ending>`` and ``PRED/CASE_pred0<ending> ... CASE_pred{n-1}<ending>`` (pred0 = no
click, pred i = after i tumour + i background clicks; ending ``.nii.gz``, ``.nii``, ``.mha`` or ``.nrrd``).

Definitions (per case, per step; masks = ``label map != 0``, or ``== value`` when a reference / prediction label
value is given, for multi-label maps):
- Dice = 2|P∩R| / (|P| + |R|); undefined (NaN) for a lesion-free reference.
- FPV = mL of predicted connected components (cc3d, 18-connectivity, as the challenge) touching no reference voxel.
- FNV = mL of reference components (18-connectivity) touched by no predicted voxel; 0 for a lesion-free reference.
- AUC of each over the steps: trapezoid rule with unit step (x = 0, 1, ..., n-1), as the challenge's
  ``cumulative_trapezoid(values, arange(n))[-1]``; so AUC-Dice lies in [0, n-1] (10 for 11 steps).
- Lesion-free cases count for FPV only: Dice and FNV terms are averaged over cases with lesions, FPV terms over all.
- Ranking (challenge weights): Dice@last 0.25, AUC-Dice 0.25, FPV@last, FNV@last, AUC-FPV, AUC-FNV 0.125 each. Each
  term's mean is ranked across methods (1 = best; higher Dice, lower volumes; ties share the average rank) and the
  score is the weighted sum of ranks (lower is better). Ranks are given overall and per tracer / centre subset.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from seganypet_nnunet import io_utils
from seganypet_nnunet.errors import InputNotFoundError, SeganypetError, cli_entry
from seganypet_nnunet.evaluation.metrics import AUTOPET_CONNECTIVITY, dice, false_negative_volume, false_positive_volume
from seganypet_nnunet.evaluation.summary import finite_or_none, read_label_array

N_STEPS = 11
ENDINGS = (".nii.gz", ".nii", ".mha", ".nrrd")
RANKING_WEIGHTS = {
    "dice_last": 0.25,
    "dice_auc": 0.25,
    "fpv_last": 0.125,
    "fnv_last": 0.125,
    "fpv_auc": 0.125,
    "fnv_auc": 0.125,
}
HIGHER_IS_BETTER = ("dice_last", "dice_auc")
TRACERS = ("fdg", "psma", "pet")
_STEP_KEYS = ("dice", "fpv_ml", "fnv_ml")


def step_metrics(pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float]) -> dict[str, float]:
    """Dice, FPV and FNV (mL, 18-connectivity) of one binary prediction.

    Args:
        pred: 3D bool prediction.
        ref: 3D bool reference, same shape and axis order.
        spacing: voxel size in mm, axis order of the arrays.

    Returns:
        ``{"dice", "fpv_ml", "fnv_ml"}``; Dice is NaN for an empty reference.
    """
    pred, ref = np.asarray(pred, bool), np.asarray(ref, bool)
    return {
        "dice": dice(pred, ref) if ref.any() else float("nan"),
        "fpv_ml": false_positive_volume(pred, ref, spacing, connectivity=AUTOPET_CONNECTIVITY),
        "fnv_ml": false_negative_volume(pred, ref, spacing, connectivity=AUTOPET_CONNECTIVITY),
    }


def step_auc(values: Sequence[float]) -> float:
    """Trapezoid area under ``values`` placed at x = 0, 1, ..., n-1 (n >= 2), the challenge's AUC."""
    y = np.asarray(values, dtype=np.float64)
    if y.ndim != 1 or y.size < 2:
        raise ValueError(f"step_auc needs at least 2 steps, got {y.size}")
    return float(np.sum((y[1:] + y[:-1]) / 2.0))


def score_case(preds: Sequence[np.ndarray], ref: np.ndarray, spacing: Sequence[float]) -> dict:
    """Per-step metrics, AUCs and last values of one case.

    Args:
        preds: bool predictions after step 0, 1, ..., n-1 (n >= 2), each shaped like ``ref``.
        ref: 3D bool reference.
        spacing: voxel size in mm, axis order of the arrays.

    Returns:
        ``{"lesion_free", "steps": [{"step", "dice", "fpv_ml", "fnv_ml"}], "dice_auc", "fpv_auc", "fnv_auc",
        "dice_last", "fpv_last", "fnv_last"}``; Dice and FNV terms None for a lesion-free case (FPV only).
    """
    ref = np.asarray(ref, bool)
    rows = [{"step": i, **step_metrics(p, ref, spacing)} for i, p in enumerate(preds)]
    lesion_free = not ref.any()
    out: dict = {"lesion_free": lesion_free, "steps": rows}
    for key, short in (("dice", "dice"), ("fpv_ml", "fpv"), ("fnv_ml", "fnv")):
        values = [r[key] for r in rows]
        skip = lesion_free and short != "fpv"
        out[f"{short}_auc"] = None if skip else step_auc(values)
        out[f"{short}_last"] = None if skip else values[-1]
    for r in rows:
        r["dice"] = finite_or_none(r["dice"])
        if lesion_free:
            r["fnv_ml"] = None
    return out


def _mean(values) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(vals)) if vals else None


def summarize(cases: Mapping[str, Mapping]) -> dict:
    """Means over cases of ``score_case`` results (Dice/FNV over cases with lesions, FPV over all cases).

    Returns:
        ``{"n_cases", "n_lesion_free", "terms": {ranking term: mean}, "per_step": [{"step", "dice", "fpv_ml",
        "fnv_ml"}]}``.
    """
    blocks = list(cases.values())
    n = len(blocks[0]["steps"]) if blocks else 0
    terms = {term: _mean(b[term] for b in blocks) for term in RANKING_WEIGHTS}
    per_step = [{"step": i, **{k: _mean(b["steps"][i][k] for b in blocks) for k in _STEP_KEYS}} for i in range(n)]
    return {
        "n_cases": len(blocks),
        "n_lesion_free": sum(bool(b["lesion_free"]) for b in blocks),
        "terms": terms,
        "per_step": per_step,
    }


def case_subsets(case_id: str, centre_regex: str | None = None) -> dict[str, str]:
    """Subsets a case name carries: ``tracer`` (leading ``fdg_`` / ``psma_`` / ``pet_``, case-insensitive) and
    ``centre`` (the first group of ``centre_regex``, else a HECKTOR-style ``CENTRE-`` prefix of letters)."""
    out = {}
    tracer = re.match(r"^([A-Za-z]+)_", case_id)
    if tracer and tracer.group(1).lower() in TRACERS:
        out["tracer"] = tracer.group(1).lower()
    centre = re.search(centre_regex, case_id) if centre_regex else re.match(r"^([A-Za-z]+)-", case_id)
    if centre and centre.groups():
        out["centre"] = centre.group(1)
    return out


def grouped_summaries(cases: Mapping[str, Mapping], centre_regex: str | None = None) -> dict:
    """``{"overall": summary, "tracer=fdg": summary, "centre=CHUM": summary, ...}`` (subsets present only)."""
    groups: dict[str, dict] = {}
    for cid, block in cases.items():
        for kind, value in case_subsets(cid, centre_regex).items():
            groups.setdefault(f"{kind}={value}", {})[cid] = block
    return {"overall": summarize(cases), **{k: summarize(v) for k, v in sorted(groups.items())}}


def _average_ranks(values: Sequence[float], higher_is_better: bool) -> list[float]:
    """1-based ranks, ties share their average rank; a missing value (None/NaN) ranks last."""
    keyed = [(-v if higher_is_better else v) if v is not None and math.isfinite(v) else math.inf for v in values]
    ranks = [0.0] * len(keyed)
    for i, v in enumerate(keyed):
        better = sum(w < v for w in keyed)
        equal = sum(w == v for w in keyed)
        ranks[i] = better + (equal + 1) / 2.0
    return ranks


def rank_methods(terms_by_method: Mapping[str, Mapping[str, float | None]]) -> dict:
    """The challenge ranking of several methods from their term means (``summarize(...)["terms"]``).

    Returns:
        ``{"ranks": {method: {term: rank}}, "score": {method: sum(weight * rank)}, "order": [methods, best first]}``.
    """
    methods = list(terms_by_method)
    ranks: dict[str, dict[str, float]] = {m: {} for m in methods}
    for term in RANKING_WEIGHTS:
        r = _average_ranks([terms_by_method[m][term] for m in methods], term in HIGHER_IS_BETTER)
        for m, value in zip(methods, r, strict=True):
            ranks[m][term] = value
    score = {m: float(sum(RANKING_WEIGHTS[t] * ranks[m][t] for t in RANKING_WEIGHTS)) for m in methods}
    return {"ranks": ranks, "score": score, "order": sorted(methods, key=lambda m: (score[m], methods.index(m)))}


def _find(folder: Path, stem: str) -> Path | None:
    for ending in ENDINGS:
        if (folder / f"{stem}{ending}").is_file():
            return folder / f"{stem}{ending}"
    return None


def _reference_cases(ref_dir: Path) -> dict[str, Path]:
    out = {}
    for f in sorted(ref_dir.iterdir()):
        for ending in ENDINGS:
            if f.name.endswith(ending) and not f.name.startswith("."):
                out[f.name[: -len(ending)]] = f
                break
    if not out:
        raise InputNotFoundError(f"{ref_dir}: no reference label files ({', '.join(ENDINGS)})")
    return out


def _binary(arr: np.ndarray, label: int | None) -> np.ndarray:
    return arr != 0 if label is None else arr == label


def score_folder(
    pred_dir: str | Path,
    ref_dir: str | Path,
    *,
    n_steps: int = N_STEPS,
    label: int | None = None,
    pred_label: int | None = None,
    centre_regex: str | None = None,
    output_file: str | Path | None = None,
) -> dict:
    """Scores ``PRED/CASE_pred{i}`` against ``REF/CASE`` for every reference case (module docstring).

    Args:
        pred_dir: folder of ``CASE_pred0 ... CASE_pred{n_steps-1}`` label maps.
        ref_dir: folder of ``CASE`` reference label maps.
        n_steps: interaction steps including step 0 (autoPET IV: 11).
        label: reference lesion value (``== label``); None = every non-zero reference voxel.
        pred_label: the same for the predictions.
        centre_regex: regex with one group extracting a centre from a case name (see ``case_subsets``).
        output_file: writes the result as JSON there.

    Returns:
        ``{"settings", "cases": {case: score_case(...)}, "summary": grouped_summaries(...)}``.

    Raises:
        InputNotFoundError: a folder or a case's prediction file is missing. SeganypetError: a prediction's grid
            differs from its reference's in physical space (size, spacing, direction, origin), a truncated or
            unreadable file, a spacing out of range, ``n_steps`` < 2, or ``output_file`` an existing folder.
    """
    pred_dir, ref_dir = Path(pred_dir), Path(ref_dir)
    for flag, folder in (("-pred", pred_dir), ("-ref", ref_dir)):
        if folder.is_file():
            raise SeganypetError(f"{folder}: {flag} is a file, expected a folder")
        if not folder.is_dir():
            raise InputNotFoundError(f"{folder}: {flag} folder not found")
    if n_steps < 2:
        raise SeganypetError(f"-n_steps {n_steps}: must be >= 2 (step 0 and at least one interaction)")
    if output_file is not None and Path(output_file).is_dir():
        raise SeganypetError(f"{output_file}: -o is a folder, expected a JSON file name")
    cases = {}
    for cid, ref_file in _reference_cases(ref_dir).items():
        ref, spacing = read_label_array(ref_file, f"case {cid} reference")
        preds = []
        for i in range(n_steps):
            f = _find(pred_dir, f"{cid}_pred{i}")
            if f is None:
                raise InputNotFoundError(f"{pred_dir / f'{cid}_pred{i}.nii.gz'}: case {cid}: missing prediction")
            arr, _ = read_label_array(f, f"case {cid} step {i} prediction", reference=ref_file)
            preds.append(_binary(arr, pred_label))
        cases[cid] = score_case(preds, _binary(ref, label), spacing)
    result = {
        "settings": {
            "pred": str(pred_dir),
            "ref": str(ref_dir),
            "n_steps": n_steps,
            "label": label,
            "pred_label": pred_label,
            "connectivity": AUTOPET_CONNECTIVITY,
            "auc": "trapezoid, unit step over steps 0..n-1",
            "lesion_free_cases": "count for FPV only",
        },
        "cases": cases,
        "summary": grouped_summaries(cases, centre_regex),
    }
    if output_file is not None:
        io_utils.write_json(result, output_file)
    return result


def _fmt(value, width: int = 9, digits: int = 4) -> str:
    return f"{value:{width}.{digits}f}" if value is not None else f"{'-':>{width}}"


def format_steps_table(summary: Mapping) -> str:
    """Mean Dice / FPV / FNV per step, then the six ranking terms, of one ``summarize`` result."""
    lines = [f"{'step':>4} | {'Dice':>9} | {'FPV mL':>9} | {'FNV mL':>9}"]
    for r in summary["per_step"]:
        lines.append(f"{r['step']:>4} | {_fmt(r['dice'])} | {_fmt(r['fpv_ml'])} | {_fmt(r['fnv_ml'])}")
    t = summary["terms"]
    lines.append(
        f"cases {summary['n_cases']} ({summary['n_lesion_free']} lesion-free: FPV only) | "
        + " | ".join(f"{k} {_fmt(t[k], 0)}" for k in RANKING_WEIGHTS)
    )
    return "\n".join(lines)


@cli_entry("seganypet_score_autopet")
def score_autopet_entry(argv: list[str] | None = None) -> None:
    """Console script ``seganypet_score_autopet``."""
    p = argparse.ArgumentParser(description="autoPET IV scorer: Dice/FPV/FNV per step, AUCs, ranking terms.")
    p.add_argument("-pred", nargs="+", required=True, help="[REQUIRED] prediction folder(s) of CASE_pred0..N files")
    p.add_argument("-ref", required=True, help="[REQUIRED] reference label folder (CASE.nii.gz)")
    p.add_argument("-o", default=None, help="[OPTIONAL] JSON output file (one folder: its result; several: all)")
    p.add_argument("-n_steps", type=int, default=N_STEPS, help=f"[OPTIONAL] steps incl. step 0. Default: {N_STEPS}")
    p.add_argument("-label", type=int, default=None, help="[OPTIONAL] reference lesion value. Default: non-zero")
    p.add_argument("-pred_label", type=int, default=None, help="[OPTIONAL] prediction lesion value. Default: non-zero")
    p.add_argument("-centre_regex", default=None, help="[OPTIONAL] regex, group 1 = centre in the case name")
    p.add_argument("--verbose", action="store_true", help="[OPTIONAL] show tracebacks of errors")
    a = p.parse_args(argv)
    if a.centre_regex is not None:
        try:
            if re.compile(a.centre_regex).groups < 1:
                raise SeganypetError(f"-centre_regex {a.centre_regex!r}: needs one group, e.g. '^([A-Z]+)_'")
        except re.error as err:
            raise SeganypetError(f"-centre_regex {a.centre_regex!r}: not a regular expression ({err})") from None
    if a.o is not None and Path(a.o).is_dir():
        raise SeganypetError(f"{a.o}: -o is a folder, expected a JSON file name")
    results = {}
    for folder in a.pred:
        results[folder] = score_folder(
            folder, a.ref, n_steps=a.n_steps, label=a.label, pred_label=a.pred_label, centre_regex=a.centre_regex
        )
        for group, summary in results[folder]["summary"].items():
            print(f"\n{folder} [{group}]\n{format_steps_table(summary)}")
    if len(a.pred) > 1:
        groups = set.intersection(*(set(r["summary"]) for r in results.values()))
        ranking = {g: rank_methods({m: r["summary"][g]["terms"] for m, r in results.items()}) for g in sorted(groups)}
        for g, rk in ranking.items():
            print(
                f"\nranking [{g}] (weighted rank, lower is better): "
                + ", ".join(f"{m} {rk['score'][m]:.3f}" for m in rk["order"])
            )
        results = {"methods": results, "ranking": ranking}
    elif a.pred:
        results = results[a.pred[0]]
    if a.o:
        io_utils.write_json(results, a.o)


if __name__ == "__main__":
    score_autopet_entry()
