"""seganypet_evaluate: the click protocol with a real, deterministic local region-growing segmenter on a hand-made
anisotropic, non-cubic image (so an (i, j, k) / (z, y, x) mix-up fails), summary layout and means against hand
computations, lesion FP/FN volume and F1 on the union, PNG, automatic/baseline Dice, bad inputs, and one run of the
CLI with the real SegAnyPETSession on an untrained tiny model folder.

Layout (array order (z, y, x), shape (8, 14, 20), spacing (z, y, x) = (3.0, 1.5, 0.8) mm; intensity in brackets):
  liver  (label 1): A1 z1-3 y1-4 x1-5 (60 vox) [5] and A2 z1-2 y1-2 x8-9 (8 vox) [5], not connected.
  heart  (label 2): B z5-6 y1-4 x1-4 (32) [10] with an unlabelled spill H z5-6 y1-4 x5-7 (24) [12] attached.
  lesion (label 3): L1 z1-3 y8-11 x1-4 (48) [20] with unlabelled S z1-3 y8-11 x5-8 (48) [22] attached and T z2 y9-10
                    x9 (2) [22.8] attached to S; L2 z5-6 y10-12 x14-16 (18) [0.5, "cold": below the segmenter's floor].
The segmenter adds, on a positive click, the 26-connected region of |I - I(click)| <= 3 and I >= 1 around the click,
and removes, on a negative click, the 26-connected region of |I - I(click)| <= 0.5. Hence (hand-derived):
  liver: click 1 -> A1, Dice 120/128; click 2 (positive in A2) -> 1; click 3+ nothing to correct (carried).
  heart: click 1 -> B+H, Dice 64/88; click 2 (negative in H) -> 1.
  L1: click 1 -> L1+S+T, 96/146; click 2 (negative in S) -> L1+T (T now detached), 96/98; click 3 (negative, T) -> 1.
  L2: always empty, Dice 0.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from seganypet_nnunet.evaluation.interactive import EvalCase, evaluate_interactive, find_cases, structure_table
from seganypet_nnunet.evaluation.metrics import hd95, surface_dice
from seganypet_nnunet.prompts.simulation import first_click

SHAPE = (8, 14, 20)
SPACING_ZYX = (3.0, 1.5, 0.8)
VOXEL_ML = 3.0 * 1.5 * 0.8 / 1000.0
LABELS = {"background": 0, "liver": 1, "heart": 2, "lesion": 3}
BOXES = {  # name: ((z0, z1), (y0, y1), (x0, x1)) inclusive, intensity, label
    "A1": (((1, 3), (1, 4), (1, 5)), 5.0, 1),
    "A2": (((1, 2), (1, 2), (8, 9)), 5.0, 1),
    "B": (((5, 6), (1, 4), (1, 4)), 10.0, 2),
    "H": (((5, 6), (1, 4), (5, 7)), 12.0, 0),
    "L1": (((1, 3), (8, 11), (1, 4)), 20.0, 3),
    "S": (((1, 3), (8, 11), (5, 8)), 22.0, 0),
    "T": (((2, 2), (9, 10), (9, 9)), 22.8, 0),
    "L2": (((5, 6), (10, 12), (14, 16)), 0.5, 3),
}
TOL = 2.0


def box(name: str) -> np.ndarray:
    m = np.zeros(SHAPE, bool)
    m[tuple(slice(a, b + 1) for a, b in BOXES[name][0])] = True
    return m


def phantom() -> tuple[np.ndarray, np.ndarray]:
    img, ref = np.zeros(SHAPE, np.float32), np.zeros(SHAPE, np.uint8)
    for name, (_, value, label) in BOXES.items():
        img[box(name)] = value
        ref[box(name)] = label
    return img, ref


def to_sitk(arr: np.ndarray) -> sitk.Image:
    im = sitk.GetImageFromArray(arr)
    im.SetSpacing(SPACING_ZYX[::-1])
    im.SetOrigin((-5.0, 3.0, 10.0))
    return im


class RegionGrowing:
    """Real, deterministic segmenter (module docstring); logs the clicks it received in original voxel (i, j, k)."""

    def __init__(self, image: sitk.Image) -> None:
        self.image = image
        self.arr = sitk.GetArrayFromImage(image)
        self.log: list[tuple[str, tuple[float, ...], bool]] = []

    def start_target(self, name: str) -> None:
        self.name, self.mask = name, np.zeros(self.arr.shape, bool)

    def click(self, coord_ijk, positive: bool) -> np.ndarray:
        self.log.append((self.name, tuple(coord_ijk), positive))
        ijk = [int(round(c)) for c in coord_ijk]
        seed_value = self.image.GetPixel(ijk)  # SimpleITK indexes in (i, j, k)
        zyx = tuple(ijk[::-1])
        cand = np.abs(self.arr - seed_value) <= (3.0 if positive else 0.5)
        if positive:
            cand &= self.arr >= 1.0
        lab, _ = ndimage.label(cand, structure=np.ones((3, 3, 3)))
        region = (lab == lab[zyx]) & cand if cand[zyx] else np.zeros_like(cand)
        self.mask = self.mask | region if positive else self.mask & ~region
        return self.mask.astype(np.uint8)


def write_case(root: Path, cid: str, instances: bool = False) -> None:
    img, ref = phantom()
    for sub in ("imagesTs", "labelsTs", "instancesTs"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(to_sitk(img), str(root / "imagesTs" / f"{cid}_0000.nii.gz"))
    sitk.WriteImage(to_sitk(ref), str(root / "labelsTs" / f"{cid}.nii.gz"))
    if instances:  # numbering opposite to raster order: L2 = 1, L1 = 2
        sitk.WriteImage(
            to_sitk((box("L2") * 1 + box("L1") * 2).astype(np.uint8)), str(root / "instancesTs" / f"{cid}.nii.gz")
        )


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    write_case(tmp_path, "caseA")
    return tmp_path


def factory(segmenters: list):
    def make(case: EvalCase) -> RegionGrowing:
        segmenters.append(RegionGrowing(sitk.ReadImage(str(case.image_files[0]))))
        return segmenters[-1]

    return make


EXPECTED_DICE = {
    "liver": [120 / 128, 1.0, 1.0, 1.0],
    "heart": [64 / 88, 1.0, 1.0, 1.0],
    "lesion_1": [96 / 146, 96 / 98, 1.0, 1.0],
    "lesion_2": [0.0, 0.0, 0.0, 0.0],
}


def test_protocol_clicks_dice_coordinates_and_means(raw: Path):
    segs: list = []
    s = evaluate_interactive(
        find_cases(raw / "imagesTs", raw / "labelsTs"),
        factory(segs),
        LABELS,
        n_clicks=4,
        tolerance_mm=TOL,
        output_folder=raw / "out",
    )
    targets = s["cases"]["caseA"]["targets"]
    assert set(targets) == set(EXPECTED_DICE)
    for name, want in EXPECTED_DICE.items():
        clicks = targets[name]["clicks"]
        assert [c["click"] for c in clicks] == [1, 2, 3, 4]
        assert [c["dice"] for c in clicks] == pytest.approx(want)
        assert targets[name]["last"]["dice"] == pytest.approx(want[-1])
        assert targets[name]["max_over_clicks"]["dice"] == pytest.approx(max(want))
        auc = sum((a + b) / 2 for a, b in zip(want[:-1], want[1:], strict=True)) / 3
        assert targets[name]["dice_auc"] == pytest.approx(auc)
    # clicked flags and signs: liver stops after 2 clicks; heart's 2nd click negative; L1 clicks 2 and 3 negative
    assert [c["clicked"] for c in targets["liver"]["clicks"]] == [True, True, False, False]
    assert [c["positive"] for c in targets["heart"]["clicks"][:2]] == [True, False]
    assert [c["positive"] for c in targets["lesion_1"]["clicks"][:3]] == [True, False, False]
    # first click = interior-most voxel of the target (array order), reported and sent REVERSED as (i, j, k)
    ref = sitk.GetArrayFromImage(sitk.ReadImage(str(raw / "labelsTs" / "caseA.nii.gz")))
    want_zyx, _ = first_click(ref == 1, spacing=SPACING_ZYX)
    ijk = tuple(targets["liver"]["clicks"][0]["coord_ijk"])
    assert ijk == tuple(want_zyx[::-1])
    assert box("A1")[tuple(int(c) for c in ijk[::-1])]
    assert segs[0].log[0] == ("liver", ijk, True)
    l1_second = tuple(int(c) for c in targets["lesion_1"]["clicks"][1]["coord_ijk"][::-1])
    assert box("S")[l1_second]
    # NSD / HD95 after click 1 against the metric functions on hand-built masks
    heart1 = targets["heart"]["clicks"][0]
    assert heart1["nsd"] == pytest.approx(surface_dice(box("B") | box("H"), box("B"), SPACING_ZYX, TOL))
    assert heart1["hd95_mm"] == pytest.approx(hd95(box("B") | box("H"), box("B"), SPACING_ZYX))
    assert targets["lesion_2"]["clicks"][0]["hd95_mm"] is None  # inf (empty prediction) -> null
    # means: lesion structure = mean of its two targets; overall = mean of the three structure means
    per = s["mean"]["per_structure"]
    lesion_mean = [(a + b) / 2 for a, b in zip(EXPECTED_DICE["lesion_1"], EXPECTED_DICE["lesion_2"], strict=True)]
    assert [r["dice"] for r in per["lesion"]["per_click"]] == pytest.approx(lesion_mean)
    assert per["lesion"]["n_targets"] == 2
    overall = [
        (a + b + c) / 3 for a, b, c in zip(EXPECTED_DICE["liver"], EXPECTED_DICE["heart"], lesion_mean, strict=True)
    ]
    assert [r["dice"] for r in s["mean"]["overall"]["per_click"]] == pytest.approx(overall)
    assert s["mean"]["overall"]["last"]["dice"] == pytest.approx(overall[-1])
    assert per["lesion"]["per_click"][0]["hd95_n_finite"] == 1
    # settings and files
    assert s["settings"]["protocol"] == "deterministic" and s["settings"]["n_clicks"] == 4
    assert s["automatic"] is None and s["baseline"] is None
    on_disk = json.loads((raw / "out" / "summary.json").read_text())
    assert set(on_disk) == {"settings", "cases", "mean", "automatic", "baseline", "monotonicity"}
    # correction clicks: liver 1, heart 1, L1 2, L2 3 (always empty, re-clicked); none lowers its target's Dice
    assert (on_disk["monotonicity"]["corrections"], on_disk["monotonicity"]["worse"]) == (7, 0)
    png = (raw / "out" / "dice_vs_clicks.png").read_bytes()
    assert len(png) > 1000 and png[:8] == b"\x89PNG\r\n\x1a\n"


def test_lesion_union_fp_fn_volume_and_f1(raw: Path):
    s = evaluate_interactive(find_cases(raw / "imagesTs", raw / "labelsTs"), factory([]), LABELS, n_clicks=4)
    curve = s["cases"]["caseA"]["lesions"]["lesion"]["clicks"]
    # union: click 1 L1+S+T (one blob touching L1); click 2 L1 + detached T; click 3+ L1. L2 never found.
    assert [c["fp_volume_ml"] for c in curve] == pytest.approx([0.0, 2 * VOXEL_ML, 0.0, 0.0])
    assert [c["fn_volume_ml"] for c in curve] == pytest.approx([18 * VOXEL_ML] * 4)
    assert [c["lesion_f1"] for c in curve] == pytest.approx([2 / 3, 2 / 4, 2 / 3, 2 / 3])
    assert [(c["lesion_tp"], c["lesion_fp"], c["lesion_fn"]) for c in curve[:2]] == [(1, 0, 1), (1, 1, 1)]
    assert s["mean"]["lesions"]["lesion"]["last"]["lesion_f1"] == pytest.approx(2 / 3)


def test_instance_map_targets_and_random_protocol_is_seeded(tmp_path: Path):
    write_case(tmp_path, "caseB", instances=True)
    cases = find_cases(tmp_path / "imagesTs", tmp_path / "labelsTs", tmp_path / "instancesTs")
    s = evaluate_interactive(cases, factory([]), LABELS, n_clicks=2, target_names=["lesion"])
    targets = s["cases"]["caseB"]["targets"]
    assert set(targets) == {"lesion_1", "lesion_2"}  # instance ids from the map: 1 = L2 (cold), 2 = L1
    assert targets["lesion_1"]["voxels"] == 18 and targets["lesion_2"]["voxels"] == 48
    assert [c["dice"] for c in targets["lesion_2"]["clicks"]] == pytest.approx(EXPECTED_DICE["lesion_1"][:2])
    runs = [evaluate_interactive(cases, factory([]), LABELS, n_clicks=3, seed=7) for _ in range(2)]
    assert runs[0]["cases"] == runs[1]["cases"]
    assert runs[0]["settings"]["protocol"] == "random" and runs[0]["settings"]["seed"] == 7


def test_automatic_and_baseline_dice_and_structure_table(raw: Path):
    _, ref = phantom()
    auto = ref.copy()
    auto[box("A2")] = 0  # liver 120/128
    auto[box("H")] = 2  # heart 64/88
    base = ref.copy()
    base[box("L1")] = 0  # lesion: 2*18/(18+66)
    for name, arr in (("auto", auto), ("base", base)):
        (raw / name).mkdir()
        sitk.WriteImage(to_sitk(arr), str(raw / name / "caseA.nii.gz"))
    s = evaluate_interactive(
        find_cases(raw / "imagesTs", raw / "labelsTs"),
        factory([]),
        LABELS,
        n_clicks=3,
        auto_pred=raw / "auto",
        baseline_pred=raw / "base",
        output_folder=raw / "out",
    )
    assert s["automatic"]["mean"] == pytest.approx({"liver": 120 / 128, "heart": 64 / 88, "lesion": 1.0})
    assert s["baseline"]["per_case"]["caseA"] == pytest.approx({"liver": 1.0, "heart": 1.0, "lesion": 36 / 84})
    rows = {r["structure"]: r for r in structure_table(s, clicks=(1, 3, 5))}
    assert rows["liver"]["automatic"] == pytest.approx(120 / 128)
    assert rows["lesion"]["baseline"] == pytest.approx(36 / 84)
    assert rows["heart"]["dice_click_1"] == pytest.approx(64 / 88) and rows["heart"]["dice_click_5"] is None
    assert (raw / "out" / "dice_vs_clicks.png").stat().st_size > 1000


def test_bad_inputs_raise_clear_errors(raw: Path):
    (raw / "imagesTs" / "caseZ_0000.nii.gz").write_bytes((raw / "imagesTs" / "caseA_0000.nii.gz").read_bytes())
    with pytest.raises(FileNotFoundError, match="case caseZ: missing reference"):
        find_cases(raw / "imagesTs", raw / "labelsTs")
    (raw / "imagesTs" / "caseZ_0000.nii.gz").unlink()
    cases = find_cases(raw / "imagesTs", raw / "labelsTs")
    with pytest.raises(ValueError, match=r"-targets: unknown structure name\(s\) \['pancreas'\]"):
        evaluate_interactive(cases, factory([]), LABELS, n_clicks=1, target_names=["pancreas"])
    (raw / "auto").mkdir()
    with pytest.raises(FileNotFoundError, match="case caseA .*auto"):
        evaluate_interactive(cases, factory([]), LABELS, n_clicks=1, auto_pred=raw / "auto")
    sitk.WriteImage(to_sitk(np.zeros((8, 14, 19), np.uint8)), str(raw / "auto" / "caseA.nii.gz"))
    with pytest.raises(ValueError, match="case caseA: .* has shape"):
        evaluate_interactive(cases, factory([]), LABELS, n_clicks=1, auto_pred=raw / "auto")
    sitk.WriteImage(to_sitk(np.zeros((8, 14, 19), np.uint8)), str(raw / "labelsTs" / "caseA.nii.gz"))
    with pytest.raises(ValueError, match=r"caseA.nii.gz: grid differs from caseA_0000.nii.gz \(size"):
        evaluate_interactive(cases, factory([]), LABELS, n_clicks=1)


def test_cli_with_real_session_on_untrained_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    pytest.importorskip("seganypet_nnunet.inference.session")
    inference_data = pytest.importorskip("inference_data")
    from seganypet_nnunet.evaluation.evaluate_cli import evaluate_entry

    raw_folder, model = inference_data.setup_model(tmp_path, monkeypatch)
    out = tmp_path / "eval"
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "seganypet_evaluate",
            "-i",
            str(raw_folder / "imagesTr"),
            "-ref",
            str(raw_folder / "labelsTr"),
            "-o",
            str(out),
            "-d",
            "990",
            "-c",
            "3d_fullres",
            "-p",
            "SegAnyPETPlansTiny",
            "-n_clicks",
            "2",
            "-device",
            "cpu",
        ],
    )
    evaluate_entry()
    printed = capsys.readouterr().out
    assert "nnU-Net auto" in printed and "ours 2 clicks" in printed  # the per-structure table, as the demo prints it
    assert any(line.strip().startswith("lesion |") for line in printed.splitlines())
    s = json.loads((out / "summary.json").read_text())
    assert s["settings"]["model_folder"] == str(model) and s["settings"]["folds"] == ["0"]
    assert set(s["cases"]) == {"case00", "case01"}
    ref = sitk.ReadImage(str(raw_folder / "labelsTr" / "case00.nii.gz"))
    for target in s["cases"]["case00"]["targets"].values():  # label "lesion" -> one instance target per blob
        assert len(target["clicks"]) == 2
        first = target["clicks"][0]
        assert first["positive"] is True and ref.GetPixel([int(c) for c in first["coord_ijk"]]) == 1
        assert all(0.0 <= c["dice"] <= 1.0 for c in target["clicks"])
    assert (out / "dice_vs_clicks.png").stat().st_size > 1000
