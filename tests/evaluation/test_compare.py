"""seganypet_compare: paired statistics, and the command on two tiny trained models (real nnU-Net training)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from bad_files import assert_one_line_error, run_entry
from scipy.stats import wilcoxon

from seganypet_nnunet.evaluation.compare import compare_entry, compare_scores, is_promptable, paired_stats
from seganypet_nnunet.evaluation.metrics import dice

DATASET_ID = 907
OURS, BASE = "SegAnyPETTrainer_tiny", "nnUNetTrainer_seganypet_tiny"
PLANS = ("SegAnyPETPlansTiny", "nnUNetPlansTiny")
CPU = torch.device("cpu")


def test_paired_stats_values_and_seeded_bootstrap():
    d = [0.1, 0.2, -0.05, 0.3, 0.15, 0.05]
    s = paired_stats(d, seed=3)
    assert s["n"] == 6 and s["mean"] == pytest.approx(np.mean(d)) and s["sd"] == pytest.approx(np.std(d, ddof=1))
    assert s["ci95"][0] < s["mean"] < s["ci95"][1]
    assert s["wilcoxon_p"] == pytest.approx(wilcoxon(d).pvalue)
    assert paired_stats(d, seed=3) == s and paired_stats(d, seed=4)["ci95"] != s["ci95"]
    assert paired_stats([0.2])["wilcoxon_p"] is None and paired_stats([0.2])["sd"] == 0.0
    assert paired_stats([0.0, 0.0])["wilcoxon_p"] is None and paired_stats([])["mean"] is None


def test_compare_scores_pairs_only_common_case_structures():
    a = {"c1": {"liver": {"automatic": 0.9}}, "c2": {"liver": {"automatic": 0.8}, "lesion": {"automatic": 0.5}}}
    b = {"c1": {"liver": {"automatic": 0.7}}, "c2": {"liver": {"automatic": 0.7}}, "c3": {"liver": {"automatic": 0}}}
    table = compare_scores(a, b, ["automatic"])
    assert list(table) == ["liver"]
    row = table["liver"]["automatic"]
    assert row["n"] == 2 and row["mean"] == pytest.approx(0.15) and row["cases"] == ["c1", "c2"]
    assert row["mean_a"] == pytest.approx(0.85) and row["mean_b"] == pytest.approx(0.7)


def test_promptable_trainers():
    assert is_promptable(OURS) and is_promptable("SegAnyPETTrainer")
    assert not is_promptable(BASE) and not is_promptable("nnUNetTrainer") and not is_promptable("Unknown")


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    """Tiny synthetic dataset, Tiny plans, fold 0 of our tiny trainer and the tiny nnU-Net baseline (2 x 3 iters,
    then nnU-Net's validation into fold_0/validation); about 2 min on 2 busy cores, hence ``slow``."""
    from seganypet_nnunet.run.plan_and_preprocess import plan_and_preprocess
    from seganypet_nnunet.run.train import build_trainer
    from seganypet_nnunet.synthetic import SyntheticConfig, make_dataset
    from seganypet_nnunet.trainers.registry import get_trainer_class

    root = tmp_path_factory.mktemp("compare")
    with pytest.MonkeyPatch.context() as mp:
        for key in ("raw", "preprocessed", "results"):
            mp.setenv(f"nnUNet_{key}", str(root / key))
            (root / key).mkdir()
        mp.setenv("nnUNet_def_n_proc", "1")
        mp.delenv("nnUNet_n_proc_DA", raising=False)
        raw = make_dataset(DATASET_ID, "CompareTest", 6, 0, SyntheticConfig(size="small", max_lesions=3))
        plan_and_preprocess([DATASET_ID], planner="SegAnyPETPlannerTiny", configurations=("3d_fullres",))
        mp.setenv("nnUNet_n_proc_DA", "0")
        folders = []
        for trainer, plans in zip((OURS, BASE), PLANS, strict=True):
            torch.manual_seed(0)
            t = build_trainer(get_trainer_class(trainer), str(DATASET_ID), "3d_fullres", 0, plans, device=CPU)
            t.run_training()
            t.perform_actual_validation()
            folders.append(os.path.dirname(t.output_folder))
        yield {"root": root, "raw": raw, "folders": folders, "env": dict(os.environ)}


@pytest.mark.slow
def test_compare_two_tiny_models(two_models, tmp_path, capsys, monkeypatch):
    for key in ("raw", "preprocessed", "results"):
        monkeypatch.setenv(f"nnUNet_{key}", two_models["env"][f"nnUNet_{key}"])
    out = tmp_path / "cmp"
    argv = ["-d", str(DATASET_ID), "-tr", OURS, BASE, "-p", *PLANS, "-f", "0", "-n_clicks", "3", "-device", "cpu"]
    compare_entry([*argv, "-o", str(out)])
    printed = capsys.readouterr().out
    result = json.loads((out / "compare.json").read_text())
    assert (out / "compare.png").stat().st_size > 1000
    assert result["stages"] == ["automatic", "click_1", "click_3"] and result["promptable"] == [True, False]
    assert "paired difference A - B" in printed and "liver" in printed
    ours, base = (result["per_case"][t] for t in (OURS, BASE))
    val = sorted(p.name[: -len(".nii.gz")] for p in (two_models["root"] / "results").rglob("validation/*.nii.gz"))
    assert set(ours) == set(base) and set(ours) <= set(val) and ours
    case = sorted(ours)[0]
    ref = sitk.GetArrayFromImage(sitk.ReadImage(str(two_models["raw"] / "labelsTr" / f"{case}.nii.gz")))
    for trainer, folder in zip((OURS, BASE), two_models["folders"], strict=True):  # automatic Dice recomputed here
        pred = sitk.GetArrayFromImage(sitk.ReadImage(os.path.join(folder, "fold_0", "validation", f"{case}.nii.gz")))
        assert result["per_case"][trainer][case]["liver"]["automatic"] == pytest.approx(dice(pred == 3, ref == 3))
    for name, stages in result["per_structure"].items():
        auto = stages["automatic"]
        diffs = [ours[c][name]["automatic"] - base[c][name]["automatic"] for c in auto["cases"]]
        assert auto["mean"] == pytest.approx(np.mean(diffs))
        for c in auto["cases"]:  # the baseline cannot be clicked: its click stages repeat its automatic Dice
            assert base[c][name]["click_3"] == base[c][name]["automatic"]
            assert 0.0 <= ours[c][name]["click_1"] <= 1.0


@pytest.mark.slow
def test_compare_bad_inputs_one_line(two_models, tmp_path, capsys, monkeypatch):
    for key in ("raw", "preprocessed", "results"):
        monkeypatch.setenv(f"nnUNet_{key}", two_models["env"][f"nnUNet_{key}"])
    base = ["-d", str(DATASET_ID), "-tr", OURS, BASE, "-p", *PLANS, "-device", "cpu", "-o", str(tmp_path / "o")]
    code, err = run_entry(compare_entry, [*base, "-f", "1"], capsys)
    assert_one_line_error(code, err, "seganypet_compare", "fold_1/validation: fold 1 has no validation predictions")
    code, err = run_entry(compare_entry, [*base[:-2], "-o", str(tmp_path / "o"), "-p", "NoPlans"], capsys)
    assert_one_line_error(code, err, "seganypet_compare", "model folder not found")
    code, err = run_entry(compare_entry, ["-d", "555", "-tr", OURS, BASE, "-device", "cpu"], capsys)
    assert_one_line_error(code, err, "seganypet_compare", "-d 555")
