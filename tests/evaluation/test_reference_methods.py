"""Reference methods: per-method Dice and the oracle on hand-made spheres; the evaluator's rows, table and plot."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from seganypet_nnunet.evaluation import reference_methods as RM
from seganypet_nnunet.evaluation.summary import format_reference_table, format_structure_table, structure_table

SPACING = (2.0, 1.0, 1.0)


def _ball(shape, centre, radius_mm):
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    return sum(((g - c) * s) ** 2 for g, c, s in zip(grids, centre, SPACING, strict=True)) <= radius_mm**2


def _lesion_case():
    """Background 1; liver (label 1) SUV 2; a 10-SUV core in a 4.5-SUV rim (the lesion, label 2, is the rim)."""
    shape = (20, 48, 48)
    suv = np.ones(shape, np.float32)
    ref = np.zeros(shape, np.uint8)
    ref[:, :, 36:] = 1
    suv[ref == 1] = 2.0
    rim, core = _ball(shape, (10, 20, 16), 6.0), _ball(shape, (10, 20, 16), 3.0)
    suv[rim], suv[core] = 4.5, 10.0
    ref[rim] = 2
    return suv, ref, rim, core


def test_every_method_on_a_graded_lesion_has_its_known_dice():
    suv, ref, rim, core = _lesion_case()
    threshold = RM.R.liver_threshold(suv, ref == 1)  # 1.5 x 2 + 0 = 3.0: the whole rim
    scores = RM.score_reference_methods(suv, (10, 20, 16), SPACING, rim, threshold)
    core_dice = 2 * core.sum() / (core.sum() + rim.sum())
    assert scores["suvmax41_click"] == pytest.approx(1.0) and scores["suvmax41_hottest"] == pytest.approx(1.0)
    assert scores["suvmax50_click"] == pytest.approx(core_dice)
    assert scores["suv2.5"] == pytest.approx(1.0) and scores["suv4.0"] == pytest.approx(1.0)
    assert scores["percist_liver"] == pytest.approx(1.0)
    assert scores["oracle_fraction"] == pytest.approx(1.0) and scores["oracle_choice"]["fraction"] <= 0.45
    # a click on the rim's edge, 2 voxels outside: nothing grows from the click, everything from the hottest voxel
    out = RM.score_reference_methods(suv, (10, 20, 23), SPACING, rim, None)
    assert out["suvmax41_click"] == 0.0 and out["suvmax41_hottest"] == pytest.approx(1.0)
    assert out["percist_liver"] is None and RM.best_method(out) == ("suvmax41_hottest", pytest.approx(1.0))


def test_liver_mask_from_label_else_from_the_voi(tmp_path):
    suv, ref, _, _ = _lesion_case()
    image = sitk.GetImageFromArray(suv)
    image.SetSpacing(SPACING[::-1])
    image.SetOrigin((5.0, -3.0, 2.0))
    labels = {"background": 0, "liver": 1, "lesion": 2}
    assert np.array_equal(RM.liver_mask(ref, labels, image, None, SPACING), ref == 1)
    no_liver = np.where(ref == 1, 0, ref)
    assert RM.liver_mask(no_liver, labels, image, None, SPACING) is None
    world = image.TransformIndexToPhysicalPoint((40, 24, 10))  # (i, j, k) -> array (10, 24, 40)
    voi = RM.liver_mask(no_liver, labels, image, world, SPACING)
    assert voi[10, 24, 40] and voi.sum() == RM.R.sphere_voi(ref.shape, (10, 24, 40), SPACING).sum()


def _summary():
    block = {"n_targets": 1, "per_click": [{"click": k, "dice": d} for k, d in ((1, 0.5), (2, 0.7))]}
    reader = {k: None for k in RM.METHODS} | {"suvmax41_click": 0.6, "suv2.5": 0.8, RM.ORACLE: 0.9}
    return {
        "settings": {"n_clicks": 2},
        "mean": {"per_structure": {"lesion": {**block, "reference_methods": reader}, "heart": dict(block)}},
    }


def test_rows_and_tables_show_the_readers_best_and_the_oracle():
    rows = structure_table(_summary(), (1, 2))
    lesion = next(r for r in rows if r["structure"] == "lesion")
    assert (lesion["reader_best_method"], lesion["reader_best"], lesion["oracle_threshold"]) == ("suv2.5", 0.8, 0.9)
    text = format_structure_table(rows)
    assert "reader 1 click" in text and "lesion: suv2.5" in text
    table = format_reference_table(_summary())
    assert "heart" not in table and "0.800" in table and "0.900" in table


class HalfMax:
    """Real segmenter for the protocol: each positive click grows SUV >= 50 % of the local SUVmax; negatives ignored."""

    def __init__(self, suv: np.ndarray) -> None:
        self.suv = suv

    def start_target(self, name: str) -> None:
        self.mask = np.zeros(self.suv.shape, bool)

    def click(self, coord_ijk, positive: bool) -> np.ndarray:
        if positive:
            self.mask |= RM.R.fraction_region(self.suv, coord_ijk[::-1], SPACING, 0.5)
        return self.mask.astype(np.uint8)


def test_evaluator_scores_the_methods_from_the_models_first_click(tmp_path):
    from seganypet_nnunet.evaluation.interactive import evaluate_interactive, find_cases

    suv, ref, rim, core = _lesion_case()
    for sub, arr in (("imagesTs", suv), ("labelsTs", ref)):
        (tmp_path / sub).mkdir()
        image = sitk.GetImageFromArray(arr)
        image.SetSpacing(SPACING[::-1])
        name = "c1_0000.nii.gz" if sub == "imagesTs" else "c1.nii.gz"
        sitk.WriteImage(image, str(tmp_path / sub / name))
    labels = {"background": 0, "liver": 1, "lesion": 2}
    summary = evaluate_interactive(
        find_cases(tmp_path / "imagesTs", tmp_path / "labelsTs"),
        lambda case: HalfMax(suv),
        labels,
        n_clicks=2,
        target_names=["lesion"],  # the liver label still serves PERCIST
        reference_methods=True,
        output_folder=tmp_path / "out",
    )
    target = summary["cases"]["c1"]["targets"]["lesion_1"]
    first = target["clicks"][0]["coord_ijk"][::-1]
    assert target["reference_methods"] == RM.score_reference_methods(suv, first, SPACING, rim, 3.0)
    assert target["clicks"][0]["dice"] == pytest.approx(2 * core.sum() / (core.sum() + rim.sum()))
    block = summary["mean"]["per_structure"]["lesion"]["reference_methods"]
    assert block["percist_liver"] == pytest.approx(1.0) and block["oracle_fraction"] == pytest.approx(1.0)
    assert summary["settings"]["reference_methods"]["methods"] == list(RM.METHODS)
    assert (tmp_path / "out" / "dice_vs_clicks.png").stat().st_size > 0
