"""autoPET IV scorer against hand computations on small arrays: a case with two lesions (empty prediction, a corner-
touching false positive that is separate only under 18-connectivity, one component touching both lesions), a
lesion-free case (FPV only), AUCs, subset summaries, the ranking terms, the folder layout and the CLI.

Array order (z, y, x), shape (6, 8, 10), spacing (2, 3, 4) mm -> one voxel = 0.024 mL.
Case "fdg_a": L1 z1-2 y1-2 x1-2 (8 vox), L2 z1-2 y1-2 x5-6 (8 vox).
  step 0: empty                 -> Dice 0,            FPV 0,          FNV 16 vox = 0.384 mL
  step 1: L1 + F (z3 y3 x3-4)   -> Dice 16/26,        FPV 2 vox 0.048, FNV 8 vox = 0.192 mL   (F touches L1 at a corner)
  step 2: bridge z1-2 y1-2 x1-6 -> Dice 32/40 = 0.8,  FPV 0,          FNV 0                  (one component, 2 lesions)
  AUC (unit step): Dice 16/26 + 0.4; FPV 0.048; FNV (0.384 + 0.192) / 2 + 0.192 / 2 = 0.384.
Case "psma_b" (lesion-free): step 0 predicts 3 voxels (0.072 mL), steps 1-2 empty -> FPV AUC 0.036, FPV@last 0.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from seganypet_nnunet.errors import SeganypetError
from seganypet_nnunet.evaluation.autopet_score import (
    RANKING_WEIGHTS,
    case_subsets,
    rank_methods,
    score_case,
    score_folder,
    step_auc,
    step_metrics,
    summarize,
)

SHAPE = (6, 8, 10)
SPACING = (2.0, 3.0, 4.0)
VOX = 0.024


def box(z, y, x) -> np.ndarray:
    m = np.zeros(SHAPE, bool)
    m[z[0] : z[1] + 1, y[0] : y[1] + 1, x[0] : x[1] + 1] = True
    return m


L1, L2 = box((1, 2), (1, 2), (1, 2)), box((1, 2), (1, 2), (5, 6))
F = box((3, 3), (3, 3), (3, 4))
REF_A = L1 | L2
PREDS_A = [np.zeros(SHAPE, bool), L1 | F, box((1, 2), (1, 2), (1, 6))]
REF_B = np.zeros(SHAPE, bool)
PREDS_B = [box((4, 4), (5, 5), (6, 8)), np.zeros(SHAPE, bool), np.zeros(SHAPE, bool)]


def test_step_metrics_hand_values():
    assert step_metrics(PREDS_A[0], REF_A, SPACING) == pytest.approx({"dice": 0.0, "fpv_ml": 0.0, "fnv_ml": 16 * VOX})
    m1 = step_metrics(PREDS_A[1], REF_A, SPACING)
    assert m1 == pytest.approx({"dice": 16 / 26, "fpv_ml": 2 * VOX, "fnv_ml": 8 * VOX})
    # one predicted component touching two reference lesions: neither FP nor FN volume
    assert step_metrics(PREDS_A[2], REF_A, SPACING) == pytest.approx({"dice": 0.8, "fpv_ml": 0.0, "fnv_ml": 0.0})
    free = step_metrics(PREDS_B[0], REF_B, SPACING)
    assert np.isnan(free["dice"]) and free["fpv_ml"] == pytest.approx(3 * VOX) and free["fnv_ml"] == 0.0


def test_step_auc_unit_trapezoid():
    assert step_auc([0.0, 1.0]) == 0.5
    assert step_auc([0.5] * 11) == pytest.approx(5.0)  # 11 steps -> x = 0..10
    with pytest.raises(ValueError):
        step_auc([1.0])


def test_score_case_with_lesions():
    out = score_case(PREDS_A, REF_A, SPACING)
    assert not out["lesion_free"]
    assert out["dice_auc"] == pytest.approx(16 / 26 + 0.4)
    assert out["fpv_auc"] == pytest.approx(2 * VOX)
    assert out["fnv_auc"] == pytest.approx(0.384)
    assert (out["dice_last"], out["fpv_last"], out["fnv_last"]) == pytest.approx((0.8, 0.0, 0.0))
    assert [r["step"] for r in out["steps"]] == [0, 1, 2]


def test_lesion_free_case_counts_for_fpv_only():
    out = score_case(PREDS_B, REF_B, SPACING)
    assert out["lesion_free"]
    assert out["fpv_auc"] == pytest.approx(0.036) and out["fpv_last"] == 0.0
    assert out["dice_auc"] is None and out["dice_last"] is None
    assert out["fnv_auc"] is None and out["fnv_last"] is None
    assert out["steps"][0]["dice"] is None and out["steps"][0]["fnv_ml"] is None


def test_summary_dice_and_fnv_over_lesion_cases_fpv_over_all():
    s = summarize({"fdg_a": score_case(PREDS_A, REF_A, SPACING), "psma_b": score_case(PREDS_B, REF_B, SPACING)})
    assert (s["n_cases"], s["n_lesion_free"]) == (2, 1)
    t = s["terms"]
    assert t["dice_auc"] == pytest.approx(16 / 26 + 0.4) and t["dice_last"] == pytest.approx(0.8)
    assert t["fnv_auc"] == pytest.approx(0.384) and t["fnv_last"] == 0.0
    assert t["fpv_auc"] == pytest.approx((0.048 + 0.036) / 2) and t["fpv_last"] == 0.0
    step0 = s["per_step"][0]
    assert step0 == pytest.approx({"step": 0, "dice": 0.0, "fpv_ml": 0.036, "fnv_ml": 0.384})


def test_ranking_weights_and_ranks_by_hand():
    assert sum(RANKING_WEIGHTS.values()) == pytest.approx(1.0)
    assert RANKING_WEIGHTS["dice_last"] == RANKING_WEIGHTS["dice_auc"] == 0.25
    terms = {
        "m1": {"dice_last": 0.8, "dice_auc": 5, "fpv_last": 1, "fnv_last": 2, "fpv_auc": 10, "fnv_auc": 20},
        "m2": {"dice_last": 0.7, "dice_auc": 5, "fpv_last": 0.5, "fnv_last": 3, "fpv_auc": 5, "fnv_auc": 30},
        "m3": {"dice_last": 0.6, "dice_auc": 4, "fpv_last": 2, "fnv_last": 1, "fpv_auc": 20, "fnv_auc": 10},
    }
    out = rank_methods(terms)
    assert out["ranks"]["m1"] == {
        "dice_last": 1,
        "dice_auc": 1.5,  # tie with m2
        "fpv_last": 2,
        "fnv_last": 2,
        "fpv_auc": 2,
        "fnv_auc": 2,
    }
    assert out["score"] == pytest.approx({"m1": 1.625, "m2": 1.875, "m3": 2.5})
    assert out["order"] == ["m1", "m2", "m3"]
    # a missing term (None) ranks last
    terms["m1"]["dice_last"] = None
    assert rank_methods(terms)["ranks"]["m1"]["dice_last"] == 3


def test_case_subsets():
    assert case_subsets("fdg_0b1f_2019-03-01") == {"tracer": "fdg"}
    assert case_subsets("PSMA_95b8_2018-04-16") == {"tracer": "psma"}
    assert case_subsets("CHUM-001") == {"centre": "CHUM"}
    assert case_subsets("SYN003_BL") == {}
    assert case_subsets("psma_LMU_17", centre_regex=r"^[a-z]+_([A-Z]+)_") == {"tracer": "psma", "centre": "LMU"}


def _write(arr: np.ndarray, path: Path) -> None:
    img = sitk.GetImageFromArray(arr.astype(np.uint8))
    img.SetSpacing(SPACING[::-1])  # ITK (x, y, z)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(img, str(path))


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    for cid, ref, preds in (("fdg_a", REF_A, PREDS_A), ("psma_b", REF_B, PREDS_B)):
        _write(ref, tmp_path / "ref" / f"{cid}.nii.gz")
        for i, p in enumerate(preds):
            _write(p * 2, tmp_path / "pred" / f"{cid}_pred{i}.mha")  # label 2, another ending: still scored
    return tmp_path / "pred", tmp_path / "ref"


def test_score_folder_layout_and_groups(folders, tmp_path):
    pred, ref = folders
    out = score_folder(pred, ref, n_steps=3, output_file=tmp_path / "score.json")
    assert set(out["cases"]) == {"fdg_a", "psma_b"}
    assert out["cases"]["fdg_a"]["dice_auc"] == pytest.approx(16 / 26 + 0.4)
    assert set(out["summary"]) == {"overall", "tracer=fdg", "tracer=psma"}
    assert out["summary"]["tracer=psma"]["terms"]["dice_last"] is None
    assert json.loads((tmp_path / "score.json").read_text())["summary"]["overall"]["n_lesion_free"] == 1
    with pytest.raises(FileNotFoundError, match="fdg_a_pred3"):
        score_folder(pred, ref, n_steps=4)


def test_score_cli_ranks_two_folders(folders, tmp_path):
    pred, ref = folders
    worse = tmp_path / "worse"
    worse.mkdir()
    for f in pred.iterdir():  # every step predicts nothing
        img = sitk.ReadImage(str(f))
        sitk.WriteImage(img * 0, str(worse / f.name))
    out_file = tmp_path / "rank.json"
    cmd = [sys.executable, "-m", "seganypet_nnunet.evaluation.autopet_score", "-pred", str(pred), str(worse)]
    res = subprocess.run([*cmd, "-ref", str(ref), "-n_steps", "3", "-o", str(out_file)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "ranking [overall]" in res.stdout
    ranking = json.loads(out_file.read_text())["ranking"]["overall"]
    assert ranking["order"] == [str(pred), str(worse)]
    # worse: Dice 0 < 0.8 and FNV 0.384 > 0 everywhere; FPV 0 < 0.042 (AUC) and FPV@last ties at 0
    assert ranking["ranks"][str(worse)]["fpv_auc"] == 1 and ranking["ranks"][str(worse)]["fpv_last"] == 1.5


@pytest.mark.parametrize(
    "damage,expect",
    [
        ("shift_40mm", r"fdg_a_pred1.mha: grid differs from fdg_a.nii.gz \(origin"),
        ("direction", r"fdg_a_pred1.mha: grid differs from fdg_a.nii.gz \(direction"),
        ("truncated", r"fdg_a_pred1.nii: truncated"),
    ],
)
def test_a_shifted_or_truncated_prediction_is_refused_not_scored(folders, damage, expect):
    """Issue 24 item 2: grids are compared in physical space (a 40 mm shift once scored Dice 1.000)."""
    pred, ref = folders
    f = pred / "fdg_a_pred1.mha"
    img = sitk.ReadImage(str(f))
    if damage == "shift_40mm":
        img.SetOrigin((40.0, 0.0, 0.0))
    elif damage == "direction":
        img.SetDirection((0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    else:
        f.unlink()
        f = pred / "fdg_a_pred1.nii"
        sitk.WriteImage(img, str(f))
        f.write_bytes(f.read_bytes()[:-20])
    if damage != "truncated":
        sitk.WriteImage(img, str(f))
    with pytest.raises(SeganypetError, match=expect) as err:
        score_folder(pred, ref, n_steps=3)
    assert "\n" not in str(err.value)


def test_score_cli_is_one_line_without_traceback(folders, tmp_path, capsys):
    from seganypet_nnunet.evaluation.autopet_score import score_autopet_entry

    pred, ref = folders
    img = sitk.ReadImage(str(pred / "fdg_a_pred0.mha"))
    img.SetOrigin((0.0, 0.0, 40.0))
    sitk.WriteImage(img, str(pred / "fdg_a_pred0.mha"))
    with pytest.raises(SystemExit) as exit_info:
        score_autopet_entry(["-pred", str(pred), "-ref", str(ref), "-n_steps", "3", "-o", str(tmp_path / "s.json")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and "Traceback" not in err
    assert err.strip().startswith("seganypet_score_autopet: error: ") and "origin" in err
    assert not (tmp_path / "s.json").exists()
