"""seganypet_predict: automatic mode equals stock nnUNetPredictor; prompted mode writes the expected files; errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from seganypet_nnunet.prompts.prompt_file import SCHEMA


def _cli(args, cwd):
    cmd = [sys.executable, "-c", "from seganypet_nnunet.inference.predict import predict_entry as e; e()", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=600)


def _base(raw, out, extra=()):
    return [
        "-i",
        str(raw / "imagesTs"),
        "-o",
        str(out),
        "-d",
        "990",
        "-c",
        "3d_fullres",
        "-p",
        "SegAnyPETPlansTiny",
        "-f",
        "0",
        "-device",
        "cpu",
        "-npp",
        "0",
        "-nps",
        "0",
        *extra,
    ]


def test_automatic_equals_stock_predictor(model, tmp_path):
    raw, folder = model
    out = tmp_path / "ours"
    r = _cli(_base(raw, out, ["--save_probabilities"]), tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    stock = nnUNetPredictor(device=torch.device("cpu"), allow_tqdm=False)
    stock.initialize_from_trained_model_folder(str(folder), (0,), "checkpoint_final.pth")
    (tmp_path / "stock").mkdir()
    stock.predict_from_files_sequential(str(raw / "imagesTs"), str(tmp_path / "stock"), True, True, None)
    for case in ("test00", "test01"):
        ours = sitk.GetArrayFromImage(sitk.ReadImage(str(out / f"{case}.nii.gz")))
        ref = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "stock" / f"{case}.nii.gz")))
        np.testing.assert_array_equal(ours, ref)
        np.testing.assert_allclose(
            np.load(out / f"{case}.npz")["probabilities"],
            np.load(tmp_path / "stock" / f"{case}.npz")["probabilities"],
            atol=5e-4,  # float reordering across processes: 1.1e-4 on 156 of 69,120 values on a 2026-12 Xeon
        )
        assert (out / f"{case}.pkl").is_file()
    assert {"dataset.json", "plans.json", "predict_from_raw_data_args.json"} <= {p.name for p in out.iterdir()}


def _doc(cases):
    return {"schema": SCHEMA, "cases": cases}


def test_prompted_writes_label_map_and_per_target(model, tmp_path):
    raw, folder = model
    pet = sitk.ReadImage(str(raw / "imagesTs" / "test01_0000.nii.gz"))
    world = list(pet.TransformContinuousIndexToPhysicalPoint((12.0, 18.0, 20.0)))
    doc = _doc(
        {
            "test01": {
                "targets": [
                    {"name": "lesion", "points": [{"coord": [12, 18, 20], "space": "voxel", "positive": True}]},
                    {
                        "name": "liver",
                        "points": [{"coord": world, "space": "world"}],
                        "boxes": [{"min": [4, 6, 8], "max": [16, 24, 30], "space": "voxel"}],
                    },
                ]
            }
        }
    )
    pf = tmp_path / "prompts.json"
    pf.write_text(json.dumps(doc))
    out = tmp_path / "out"
    assert _cli(_base(raw, out, ["--prompts", str(pf)]), tmp_path).returncode == 0
    assert sorted(p.name for p in out.iterdir()) == ["test01.json", "test01.nii.gz"]
    assert json.loads((out / "test01.json").read_text()) == {"labels": {"1": "lesion", "2": "liver"}}
    img = sitk.ReadImage(str(out / "test01.nii.gz"))
    assert img.GetSize() == pet.GetSize() and img.GetDirection() == pytest.approx(pet.GetDirection())
    from seganypet_nnunet.inference.predict import predict_prompted

    out2 = tmp_path / "out2"
    predict_prompted(folder, raw / "imagesTs", out2, pf, per_target_files=True)
    assert sorted(p.name for p in out2.iterdir()) == ["test01__lesion.nii.gz", "test01__liver.nii.gz"]
    clicks = tmp_path / "test00_clicks.json"  # autoPET IV click JSON is detected and converted
    clicks.write_text(json.dumps({"tumor": [[12, 18, 20]], "background": [[3, 4, 5]]}))
    out3 = tmp_path / "out3"
    predict_prompted(folder, raw / "imagesTs", out3, clicks)
    assert json.loads((out3 / "test00.json").read_text()) == {"labels": {"1": "lesion"}}
    clicks.write_text(json.dumps({"background": [[3, 4, 5]], "tumor": [[12, 18, 20]]}))  # background listed first
    out4 = tmp_path / "out4"
    predict_prompted(folder, raw / "imagesTs", out4, clicks)  # not rejected as a negative-only start
    assert json.loads((out4 / "test00.json").read_text()) == {"labels": {"1": "lesion"}}
    clicks.write_text(json.dumps({"background": [[3, 4, 5]]}))  # a case without lesion: only negative clicks
    out5 = tmp_path / "out5"
    predict_prompted(folder, raw / "imagesTs", out5, clicks)
    assert json.loads((out5 / "test00.json").read_text()) == {"labels": {"1": "lesion"}}
    assert not sitk.GetArrayFromImage(sitk.ReadImage(str(out5 / "test00.nii.gz"))).any()


BAD = {
    "outside": (
        {"test00": {"targets": [{"name": "a", "points": [{"coord": [500, 1, 1], "space": "voxel"}]}]}},
        "case 'test00' target 'a' points[0].coord",
    ),
    "no_case": ({"nope": {"targets": [{"name": "a", "points": [{"coord": [1, 1, 1]}]}]}}, "case 'nope' does not"),
    "missing_coord": (
        {"test00": {"targets": [{"name": "a", "points": [{"space": "voxel"}]}]}},
        "case 'test00' targets[0].points[0]: missing field 'coord'",
    ),
    "wrong_length": ({"test00": {"targets": [{"name": "a", "points": [{"coord": [1, 2]}]}]}}, "points[0].coord"),
    "bad_space": (
        {"test00": {"targets": [{"name": "a", "points": [{"coord": [1, 2, 3], "space": "mm"}]}]}},
        "points[0].space",
    ),
    "box_order": (
        {"test00": {"targets": [{"name": "a", "boxes": [{"min": [5, 5, 5], "max": [1, 9, 9]}]}]}},
        "boxes[0]: min",
    ),
    "no_targets": ({"test00": {"targets": []}}, "'targets' must be a non-empty list"),
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_prompt_file_errors_write_nothing(model, tmp_path, kind):
    from seganypet_nnunet.inference.predict import input_cases
    from seganypet_nnunet.prompts.prompt_file import PromptFileError, load_prompt_file

    raw, _ = model
    cases_doc, message = BAD[kind]
    pf = tmp_path / "p.json"
    # a good case first: its output must not appear either
    good = {"test01": {"targets": [{"name": "ok", "points": [{"coord": [12, 18, 20]}]}]}}
    pf.write_text(json.dumps(_doc({**good, **cases_doc})))
    with pytest.raises(PromptFileError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_prompt_file(pf, input_cases(raw / "imagesTs", ".nii.gz", 1))
    if kind == "outside":
        out = tmp_path / "out"
        r = _cli(_base(raw, out, ["--prompts", str(pf)]), tmp_path)
        assert r.returncode != 0 and "outside the image" in r.stderr
        assert not out.exists() or not any(out.iterdir())
