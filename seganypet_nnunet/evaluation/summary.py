"""Aggregation for ``seganypet_evaluate``: per-click means, reference label-map Dice and the per-structure table
(``structure_table`` rows, ``format_structure_table`` text) that both ``seganypet_evaluate`` and the demo print.

Conventions:
- A "record" is one click's metrics: ``{"dice", "nsd", "hd95_mm"}`` (plus click bookkeeping). Non-finite HD95 (an empty
  prediction gives inf) is stored as ``None`` in JSON; HD95 means are taken over the finite values only and
  ``hd95_n_finite`` says how many there were.
- Per-structure means weigh every target of that structure equally (each lesion instance is one target). The overall
  mean weighs every STRUCTURE equally (mean of the per-structure means), so many lesions do not swamp a few organs.
- "last" is the score after the last click (the headline); "max_over_clicks" is the best value over clicks (max Dice,
  max NSD, min HD95), reported only as an optimistic secondary number (SAM-Med3D's ``val_old.py`` reported it as if it
  were the score).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import SimpleITK as sitk

from seganypet_nnunet import validation
from seganypet_nnunet.errors import SeganypetError, one_line
from seganypet_nnunet.evaluation.metrics import dice, dice_auc, false_positive_volume
from seganypet_nnunet.evaluation.reference_methods import METHODS, ORACLE, best_method

METRICS = ("dice", "nsd", "hd95_mm")
#: What the automatic/baseline Dice means next to the click Dice (stored as ``summary["automatic"]["note"]``).
AUTOMATIC_NOTE = (
    "automatic/baseline Dice is per case and structure on the whole label (all lesions of a case together, as autoPET"
    " scores them); the click Dice in 'mean' is per target (each lesion instance on its own). fp_volume_ml is the"
    " autoPET false-positive volume (18-connectivity) of each structure in EVERY case, also where the structure is"
    " absent (a lesion predicted in a lesion-free case counts); Dice covers the cases where it is present."
)
LESION_METRICS = ("fp_volume_ml", "fn_volume_ml", "lesion_f1")


def finite_or_none(value: float) -> float | None:
    """JSON-safe float: None for NaN/inf."""
    return float(value) if value is not None and math.isfinite(value) else None


def _mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(vals)) if vals else None


def best_over_clicks(clicks: Sequence[Mapping]) -> dict:
    """Best value over clicks: max Dice, max NSD, min HD95 (finite values only; None when none)."""
    out = {}
    for key, pick in (("dice", max), ("nsd", max), ("hd95_mm", min)):
        vals = [c[key] for c in clicks if c[key] is not None]
        out[key] = pick(vals) if vals else None
    return out


def target_block(clicks: Sequence[Mapping]) -> dict:
    """Per-target summary of its click records: ``dice_auc``, ``last`` and ``max_over_clicks``."""
    return {
        "dice_auc": dice_auc([c["dice"] for c in clicks]),
        "last": {k: clicks[-1][k] for k in METRICS},
        "max_over_clicks": best_over_clicks(clicks),
    }


def _mean_curve(curves: Sequence[Sequence[Mapping]], keys: Sequence[str]) -> list[dict]:
    """Mean over curves (each a list of per-click dicts of equal length) per click; HD95 over finite values."""
    n = len(curves[0])
    out = []
    for k in range(n):
        row: dict = {"click": k + 1}
        for key in keys:
            row[key] = _mean(c[k][key] for c in curves)
        if "hd95_mm" in keys:
            row["hd95_n_finite"] = sum(c[k]["hd95_mm"] is not None for c in curves)
        out.append(row)
    return out


def _curve_block(curves: Sequence[Sequence[Mapping]], aucs: Sequence[float], lasts, maxes, n_targets: int) -> dict:
    per_click = _mean_curve(curves, METRICS)
    return {
        "n_targets": n_targets,
        "per_click": per_click,
        "dice_auc": _mean(aucs),
        "last": {k: _mean(m[k] for m in lasts) for k in METRICS},
        "max_over_clicks": {k: _mean(m[k] for m in maxes) for k in METRICS},
    }


def aggregate(cases: Mapping[str, Mapping]) -> dict:
    """Means of a ``summary["cases"]`` block.

    Returns:
        ``{"per_structure": {name: block}, "overall": block, "lesions": {name: {"per_click": [...], "last": {...}}}}``
        with block = ``{"n_targets", "per_click": [{"click", "dice", "nsd", "hd95_mm", "hd95_n_finite"}], "dice_auc",
        "last", "max_over_clicks"}``. ``overall`` is the mean of the per-structure values (structures weigh equally).
    """
    by_structure: dict[str, list[Mapping]] = {}
    lesions: dict[str, list[list[Mapping]]] = {}
    for case in cases.values():
        for target in case["targets"].values():
            by_structure.setdefault(target["structure"], []).append(target)
        for name, block in case.get("lesions", {}).items():
            lesions.setdefault(name, []).append(block["clicks"])
    per_structure = {
        name: _curve_block(
            [t["clicks"] for t in ts],
            [t["dice_auc"] for t in ts],
            [t["last"] for t in ts],
            [t["max_over_clicks"] for t in ts],
            len(ts),
        )
        for name, ts in by_structure.items()
    }
    for name, ts in by_structure.items():
        scored = [t["reference_methods"] for t in ts if "reference_methods" in t]
        if scored:
            per_structure[name]["reference_methods"] = {k: _mean(r.get(k) for r in scored) for k in (*METHODS, ORACLE)}
    overall = None
    if per_structure:
        blocks = list(per_structure.values())
        overall = {
            "n_structures": len(blocks),
            "per_click": _mean_curve([b["per_click"] for b in blocks], METRICS),
            "dice_auc": _mean(b["dice_auc"] for b in blocks),
            "last": {k: _mean(b["last"][k] for b in blocks) for k in METRICS},
            "max_over_clicks": {k: _mean(b["max_over_clicks"][k] for b in blocks) for k in METRICS},
        }
        for row in overall["per_click"]:
            row.pop("hd95_n_finite", None)
    lesion_means = {}
    for name, curves in lesions.items():
        per_click = _mean_curve(curves, LESION_METRICS)
        lesion_means[name] = {"n_cases": len(curves), "per_click": per_click, "last": per_click[-1]}
    return {"per_structure": per_structure, "overall": overall, "lesions": lesion_means}


def read_label_array(
    path: Path, what: str, reference: str | Path | None = None
) -> tuple[np.ndarray, tuple[float, float, float]]:
    """(z, y, x) integer label array and its spacing in mm, array order (z, y, x).

    Args:
        path: a 3D label map (header, spacing and truncation checked by ``validation.read_header``).
        what: how messages name it (``case X reference``).
        reference: an image file the label map must share the grid with in physical space (size, spacing,
            direction, origin); None skips the comparison.

    Raises:
        InputNotFoundError / SeganypetError: missing, truncated, unreadable, not 3D, non-integer values, spacing out
            of range, or a grid different from ``reference``'s.
    """
    header = validation.read_header(path, what)
    if reference is not None:
        validation.check_same_grid(validation.read_header(reference), header, reference, path)
    try:
        img = sitk.ReadImage(str(path))
    except RuntimeError as err:
        raise SeganypetError(f"{path}: unreadable {what} ({one_line(err)})") from None
    arr = sitk.GetArrayFromImage(img)
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr)) or not np.array_equal(arr, np.round(arr)):
            raise SeganypetError(f"{path}: {what} holds non-integer values; expected a label map")
        arr = arr.astype(np.int64)
    return arr, tuple(float(s) for s in img.GetSpacing()[::-1])


def reference_dice(
    pred_folder: Path,
    references: Mapping[str, np.ndarray],
    structures: Mapping[str, Mapping[str, int]],
    file_ending: str = ".nii.gz",
) -> dict:
    """Per-structure Dice of automatic-mode (or baseline) label maps against the references.

    Args:
        pred_folder: Folder with ``CASE<file_ending>`` label maps (nnUNetv2_predict / seganypet_predict output).
        references: case id → reference label array (z, y, x).
        structures: case id → {structure name: label value} of the structures evaluated in that case.
        file_ending: Label file ending.

    Returns:
        ``{"folder", "per_case": {case: {structure: dice}}, "mean": {structure: mean dice over cases}, "fp_volume_ml":
        {"per_case": {case: {structure: mL}}, "mean": {structure: mean over ALL cases}, "mean_where_absent":
        {structure: mean over cases without it, None if none}, "n_cases_absent": {structure: count}}, "note"}``.
        False-positive volumes cover every structure present in at least one case, in every case.

    Raises:
        FileNotFoundError / ValueError: a case has no file in ``pred_folder`` or its shape differs from the reference.
    """
    pred_folder = Path(pred_folder)
    if not pred_folder.is_dir():
        raise FileNotFoundError(f"prediction folder {pred_folder} does not exist")
    per_case: dict[str, dict[str, float]] = {}
    fpv: dict[str, dict[str, float]] = {}
    known = {name: value for present in structures.values() for name, value in present.items()}
    for case_id, ref in references.items():
        pred, spacing = read_label_array(
            pred_folder / f"{case_id}{file_ending}", f"case {case_id} (folder {pred_folder})"
        )
        if pred.shape != ref.shape:
            raise ValueError(
                f"case {case_id}: {pred_folder / (case_id + file_ending)} has shape {pred.shape}, "
                f"reference has {ref.shape}"
            )
        per_case[case_id] = {name: dice(pred == value, ref == value) for name, value in structures[case_id].items()}
        fpv[case_id] = {name: false_positive_volume(pred == v, ref == v, spacing) for name, v in known.items()}
    names = sorted({n for d in per_case.values() for n in d})
    mean = {n: _mean(d[n] for d in per_case.values() if n in d) for n in names}
    absent = {n: [c for c in references if n not in structures[c]] for n in sorted(known)}
    fp_block = {
        "per_case": fpv,
        "mean": {n: _mean(fpv[c][n] for c in references) for n in sorted(known)},
        "mean_where_absent": {n: _mean(fpv[c][n] for c in cases) for n, cases in absent.items()},
        "n_cases_absent": {n: len(cases) for n, cases in absent.items()},
    }
    return {
        "folder": str(pred_folder),
        "per_case": per_case,
        "mean": mean,
        "fp_volume_ml": fp_block,
        "note": AUTOMATIC_NOTE,
    }


def structure_table(summary: Mapping, clicks: Sequence[int] = (1, 3, 5)) -> list[dict]:
    """One row per structure: automatic Dice, baseline Dice and mean Dice after the given clicks (None if absent).

    Args:
        summary: ``summary.json`` content from ``evaluate_interactive``.
        clicks: 1-based click numbers.

    Returns:
        ``[{"structure", "automatic", "baseline", "dice_click_1", "dice_click_3", ...}]`` sorted by structure name;
        with reference methods also ``"reader_best"`` (best reader method's mean Dice from the first click),
        ``"reader_best_method"`` and ``"oracle_threshold"``.
    """
    rows = []
    auto = (summary.get("automatic") or {}).get("mean", {})
    base = (summary.get("baseline") or {}).get("mean", {})
    for name, block in sorted(summary["mean"]["per_structure"].items()):
        row = {"structure": name, "automatic": auto.get(name), "baseline": base.get(name)}
        curve = block["per_click"]
        for k in clicks:
            row[f"dice_click_{k}"] = curve[k - 1]["dice"] if 1 <= k <= len(curve) else None
        if "reference_methods" in block:
            row["reader_best_method"], row["reader_best"] = best_method(block["reference_methods"])
            row["oracle_threshold"] = block["reference_methods"][ORACLE]
        rows.append(row)
    return rows


def table_clicks(n_clicks: int) -> tuple[int, ...]:
    """Click numbers shown in the table: 1, 3 and the last (``(1, 3, 5)`` for 5 clicks)."""
    return tuple(sorted({1, min(3, n_clicks), n_clicks}))


def format_structure_table(rows: Sequence[Mapping], unseen: Sequence[str] = ()) -> str:
    """The per-structure Dice table: nnU-Net baseline and ours automatic, then ours after each click of the rows.

    Args:
        rows: from ``structure_table``; the click columns are the rows' ``dice_click_K`` keys.
        unseen: structures never used as prompt targets in training; marked ``*`` with a footnote.
    """
    clicks = sorted(int(k.rsplit("_", 1)[1]) for k in (rows[0] if rows else {}) if k.startswith("dice_click_"))
    reader = any("reader_best" in r for r in rows)
    header = ["structure", "nnU-Net auto", "ours auto"] + [f"ours {k} click{'s' * (k > 1)}" for k in clicks]
    header += ["reader 1 click", "oracle thresh."] if reader else []
    lines = [" | ".join(f"{h:>14}" for h in header), "-" * (17 * len(header))]

    def cell(value) -> str:
        return f"{value:14.3f}" if value is not None else f"{'-':>14}"

    for row in rows:
        name = row["structure"] + (" *" if row["structure"] in unseen else "")
        values = [row["baseline"], row["automatic"]] + [row[f"dice_click_{k}"] for k in clicks]
        values += [row.get("reader_best"), row.get("oracle_threshold")] if reader else []
        lines.append(" | ".join([f"{name:>14}"] + [cell(v) for v in values]))
    if unseen:
        lines.append(f"* never a prompt target in training (held out): {', '.join(unseen)}")
    if reader:
        best = ", ".join(f"{r['structure']}: {r['reader_best_method']}" for r in rows if r.get("reader_best_method"))
        lines.append(f"reader 1 click = best PET-reader threshold from the model's first click ({best});")
        lines.append("oracle thresh. = best fraction of the local SUVmax chosen per target with the reference")
    return "\n".join(lines)


def format_reference_table(summary: Mapping) -> str:
    """Per structure: every reader method's mean Dice from the first click, the oracle threshold and ours after
    click 1 and the last click (``summary`` from ``evaluate_interactive(..., reference_methods=True)``)."""
    keys = (*METHODS, ORACLE)
    header = ["structure", *keys, "ours 1", f"ours {summary['settings']['n_clicks']}"]
    widths = [max(14, len(h)) for h in header]
    lines = [" | ".join(f"{h:>{w}}" for h, w in zip(header, widths, strict=True))]
    for name, block in sorted(summary["mean"]["per_structure"].items()):
        ref = block.get("reference_methods")
        if ref is None:
            continue
        values = [ref[k] for k in keys] + [block["per_click"][0]["dice"], block["per_click"][-1]["dice"]]
        cells = [f"{v:>{w}.3f}" if v is not None else f"{'-':>{w}}" for v, w in zip(values, widths[1:], strict=True)]
        lines.append(" | ".join([f"{name:>{widths[0]}}", *cells]))
    return "\n".join(lines)


def monotonicity(cases: Mapping[str, Mapping], per_structure: Mapping[str, Mapping], max_drop: float = 0.05) -> dict:
    """Do clicks ever make things worse?

    Returns:
        ``{"max_drop", "per_structure": {name: {"non_decreasing": mean Dice never falls from one click to the next,
        "largest_fall"}}, "corrections": correction clicks made (click >= 2, clicked), "worse": of those, how many
        lowered their target's Dice by more than ``max_drop``, "worse_fraction"}``.
    """
    structures = {}
    for name, block in per_structure.items():
        dices = [row["dice"] for row in block["per_click"]]
        falls = [a - b for a, b in zip(dices[:-1], dices[1:], strict=True)]
        structures[name] = {"non_decreasing": all(f <= 0 for f in falls), "largest_fall": max([0.0, *falls])}
    corrections = worse = 0
    for case in cases.values():
        for target in case["targets"].values():
            clicks = target["clicks"]
            for prev, cur in zip(clicks[:-1], clicks[1:], strict=True):
                if cur["clicked"]:
                    corrections += 1
                    worse += cur["dice"] < prev["dice"] - max_drop
    return {
        "max_drop": max_drop,
        "per_structure": structures,
        "corrections": corrections,
        "worse": worse,
        "worse_fraction": worse / corrections if corrections else None,
    }
