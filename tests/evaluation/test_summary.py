"""The per-structure table shared by seganypet_evaluate and the demo."""

from __future__ import annotations

from seganypet_nnunet.evaluation.summary import format_structure_table, table_clicks


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
