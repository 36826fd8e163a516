"""The per-structure table shared by seganypet_evaluate and the demo, and automatic-column scoring
(summary.reference_dice): false positives in lesion-free cases count (autoPET FPV), and
the summary says that the automatic Dice is per case while the click Dice is per instance.

Arrays (z, y, x) shape (4, 6, 8), spacing (z, y, x) = (2, 2, 5) mm -> one voxel = 0.02 mL. Labels: liver 1, lesion 2.
caseA: liver z0-1 y0-1 x0-1 (8 vox), lesion z3 y4-5 x6-7 (4 vox); prediction = reference exactly.
caseB (lesion-free): liver as in A; the prediction adds a 3-voxel lesion at z2 y0 x4-6 (never scored before).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from seganypet_nnunet.evaluation.summary import AUTOMATIC_NOTE, format_structure_table, reference_dice, table_clicks

SHAPE = (4, 6, 8)


def _write(arr: np.ndarray, path: Path) -> None:
    img = sitk.GetImageFromArray(arr.astype(np.uint8))
    img.SetSpacing((5.0, 2.0, 2.0))  # ITK (x, y, z)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(img, str(path))


def test_lesion_false_positive_in_lesion_free_case_is_scored(tmp_path: Path):
    ref_a, ref_b = np.zeros(SHAPE, np.uint8), np.zeros(SHAPE, np.uint8)
    for r in (ref_a, ref_b):
        r[0:2, 0:2, 0:2] = 1
    ref_a[3, 4:6, 6:8] = 2
    pred_b = ref_b.copy()
    pred_b[2, 0, 4:7] = 2
    _write(ref_a, tmp_path / "pred" / "caseA.nii.gz")
    _write(pred_b, tmp_path / "pred" / "caseB.nii.gz")
    refs = {"caseA": ref_a, "caseB": ref_b}
    present = {"caseA": {"liver": 1, "lesion": 2}, "caseB": {"liver": 1}}
    out = reference_dice(tmp_path / "pred", refs, present)
    assert out["mean"] == pytest.approx({"liver": 1.0, "lesion": 1.0})  # Dice: only where present
    fp = out["fp_volume_ml"]
    assert fp["per_case"]["caseB"] == pytest.approx({"liver": 0.0, "lesion": 3 * 0.02})
    assert fp["mean"]["lesion"] == pytest.approx(0.03)  # over both cases
    assert fp["mean_where_absent"]["liver"] is None  # liver is never absent
    assert fp["mean_where_absent"]["lesion"] == pytest.approx(0.06)  # the lesion-free case's false positive
    assert fp["n_cases_absent"] == {"liver": 0, "lesion": 1}
    assert out["note"] == AUTOMATIC_NOTE and "per case" in AUTOMATIC_NOTE and "per target" in AUTOMATIC_NOTE


def test_format_table_marks_heldout_and_missing_values():
    rows = [
        {
            "structure": "liver",
            "automatic": 0.8,
            "baseline": 0.75,
            "dice_click_1": 0.5,
            "dice_click_3": 0.6,
            "dice_click_5": None,
        },
        {
            "structure": "spleen",
            "automatic": None,
            "baseline": 0.1,
            "dice_click_1": 0.2,
            "dice_click_3": 0.3,
            "dice_click_5": 0.4,
        },
    ]
    lines = format_structure_table(rows, unseen=("spleen",)).splitlines()
    liver = next(line for line in lines if line.strip().startswith("liver"))
    assert [c.strip() for c in liver.split("|")] == ["liver", "0.750", "0.800", "0.500", "0.600", "-"]
    assert any(line.strip().startswith("spleen *") for line in lines)
    assert lines[-1].startswith("* never a prompt target") and "spleen" in lines[-1]


def test_table_clicks_first_third_and_last():
    assert table_clicks(5) == (1, 3, 5)
    assert table_clicks(10) == (1, 3, 10)
    assert table_clicks(2) == (1, 2)
    assert table_clicks(1) == (1,)


def test_dice_vs_clicks_plot_with_references_and_heldout(tmp_path):
    import SimpleITK as sitk

    from seganypet_nnunet.evaluation.plot import plot_dice_vs_clicks

    names = ["aorta", "liver", "spleen"]
    per = {n: {"n_targets": 2, "per_click": [{"click": k, "dice": 0.2 * k} for k in (1, 2, 3)]} for n in names}
    zeros = {n: 0.0 for n in names}  # equal reference values: drawn side by side, not on top of each other
    summary = {
        "mean": {"per_structure": per},
        "automatic": {"mean": zeros},
        "baseline": {"mean": zeros},
        "settings": {"n_clicks": 3, "protocol": "deterministic", "heldout_structures": ["spleen"]},
    }
    out = plot_dice_vs_clicks(summary, tmp_path / "plot.png")
    width, height = sitk.ReadImage(str(out)).GetSize()[:2]
    assert width > 1.4 * height  # the legend sits outside the axes, to the right
    assert not list(tmp_path.glob(".*"))


def test_monotonicity_counts_corrections_that_lose_more_than_the_bound():
    from seganypet_nnunet.evaluation.summary import monotonicity

    def target(dices, clicked):
        return {"clicks": [{"dice": d, "clicked": c} for d, c in zip(dices, clicked, strict=True)]}

    cases = {
        "a": {
            "targets": {"t1": target([0.5, 0.7, 0.6], [True] * 3), "t2": target([0.9, 0.86, 0.86], [True, True, False])}
        }
    }
    per_structure = {
        "lesion": {"per_click": [{"dice": 0.5}, {"dice": 0.7}, {"dice": 0.6}]},
        "liver": {"per_click": [{"dice": 0.9}, {"dice": 0.9}, {"dice": 0.95}]},
    }
    out = monotonicity(cases, per_structure)
    assert out["corrections"] == 3 and out["worse"] == 1 and out["worse_fraction"] == 1 / 3  # 0.7 -> 0.6 only
    assert out["per_structure"]["lesion"] == {"non_decreasing": False, "largest_fall": pytest.approx(0.1)}
    assert out["per_structure"]["liver"]["non_decreasing"]
