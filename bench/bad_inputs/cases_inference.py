"""Inputs of predict and evaluate."""

# ruff: noqa: E501  (the case tables read best one input per line)
from __future__ import annotations

import json
import shutil

from common import DS, PLANS, Case, _ds, _inputs, bf, ws


def _predict_cases() -> list[Case]:
    R = "seganypet_predict"

    def a(*extra, i="in", o="out"):
        return lambda c: ["-i", str(c / i), "-o", str(c / o), "-d", str(DS), "-p", PLANS, "-f", "0", "-device", "cpu",
                          "-npp", "0", "-nps", "0", *extra]  # fmt: skip

    def bad(fn):
        return lambda c: _inputs(c, fn)

    def img(d):
        return sorted(d.glob("*_0000.nii.gz"))[0]

    def prompts(doc):
        def setup(c):
            _inputs(c)
            case = img(c / "in").name[: -len("_0000.nii.gz")]
            text = doc(case) if callable(doc) else doc
            (c / "p.json").write_text(text if isinstance(text, str) else json.dumps(text))

        return setup

    def target(case, **t):
        return {"schema": "seganypet-prompts/1", "cases": {case: {"targets": [{"name": "lesion", **t}]}}}

    pt = {"coord": [10, 10, 10], "space": "voxel"}
    return [
        Case(R, "input_missing", a(i="nope"), "nope"),
        Case(R, "input_is_file", a(i="f.txt"), "f.txt", lambda c: (c / "f.txt").write_text("x")),
        Case(R, "output_is_input", a(o="in"), "-o", bad(None)),
        Case(R, "output_is_file", a(o="f.txt"), "f.txt", lambda c: [_inputs(c), (c / "f.txt").write_text("x")]),
        Case(R, "device_cuda", lambda c: [*a()(c)[:-6], "-device", "cuda"], "-device cuda", bad(None)),
        Case(R, "fold_missing", lambda c: [*a()(c), "-f", "3"], "fold_3", bad(None)),
        Case(R, "fold_abc", lambda c: [*a()(c), "-f", "abc"], "-f", bad(None)),
        Case(R, "dataset_unknown", lambda c: [*a()(c), "-d", "977"], "977", bad(None)),
        Case(R, "malicious_checkpoint", lambda c: [*a()(c), "-tr", "Evil"], "checkpoint_final.pth", bad(None)),
        Case(R, "malicious_checkpoint_prompted", lambda c: [*a()(c), "-tr", "Evil", "--prompts", str(c / "p.json")],
             "checkpoint_final.pth", prompts(lambda k: target(k, points=[pt]))),
        Case(R, "truncated_image", a(), "_0000", bad(lambda d: bf.truncated(img(d), img(d)))),
        Case(R, "zero_byte_image", a(), "_0000", bad(lambda d: bf.zero_bytes(img(d)))),
        Case(R, "nan_image", a(), "_0000", bad(lambda d: bf.with_nan(img(d), img(d)))),
        Case(R, "all_zero_image", a(), "_0000", bad(lambda d: bf.all_zero(img(d), img(d)))),
        Case(R, "image_2d", a(), "_0000", bad(lambda d: bf.image_2d(img(d)))),
        Case(R, "image_4d", a(), "_0000", bad(lambda d: bf.image_4d(img(d), img(d)))),
        Case(R, "garbage_image", a(), "_0000", bad(lambda d: bf.garbage(img(d)))),
        Case(R, "only_channel_1", a(), "_0001", bad(lambda d: img(d).rename(str(img(d)).replace("_0000", "_0001")))),
        Case(R, "extra_channel", a(), "_0001", bad(lambda d: shutil.copy(img(d), str(img(d)).replace("_0000", "_0001")))),
        Case(R, "folder_like_image", a(), "x_0000.nii.gz", bad(lambda d: (d / "x_0000.nii.gz").mkdir())),
        Case(R, "no_channel_suffix", a(), "x.nii.gz", bad(lambda d: shutil.copy(img(d), d / "x.nii.gz"))),
        Case(R, "empty_input", a(i="empty"), "empty", lambda c: (c / "empty").mkdir(parents=True)),
        Case(R, "prompts_missing", lambda c: [*a()(c), "--prompts", str(c / "nope.json")], "nope.json", bad(None)),
        Case(R, "prompts_bad_json", lambda c: [*a()(c), "--prompts", str(c / "p.json")], "p.json", prompts("{")),
        Case(R, "prompts_points_not_list", lambda c: [*a()(c), "--prompts", str(c / "p.json")], "points",
             prompts(lambda k: target(k, points={"coord": [1, 2, 3]}))),
        Case(R, "prompts_deeply_nested", lambda c: [*a()(c), "--prompts", str(c / "p.json")], "p.json",
             prompts("[" * 100000 + "]" * 100000)),
        Case(R, "prompts_bad_target_name", lambda c: [*a()(c), "--prompts", str(c / "p.json")], "name",
             prompts(lambda k: {"schema": "seganypet-prompts/1", "cases": {k: {"targets": [{"name": "../x", "points": [pt]}]}}})),
        Case(R, "prompts_negative_only", lambda c: [*a()(c), "--prompts", str(c / "p.json")], "negative",
             prompts(lambda k: target(k, points=[{**pt, "positive": False}]))),
        Case(R, "prompts_too_many_points", lambda c: [*a()(c), "--prompts", str(c / "p.json")], "points",
             prompts(lambda k: target(k, points=[pt] * 2000))),
        Case(R, "prompts_unknown_case", lambda c: [*a()(c), "--prompts", str(c / "p.json")], "nope",
             prompts(lambda k: target("nope", points=[pt]))),
        Case(R, "prompts_outside", lambda c: [*a()(c), "--prompts", str(c / "p.json")], "outside",
             prompts(lambda k: target(k, points=[{"coord": [900, 1, 1]}]))),
        Case(R, "prompts_box_min_gt_max", lambda c: [*a()(c), "--prompts", str(c / "p.json")], "boxes[0]",
             prompts(lambda k: target(k, boxes=[{"min": [9, 9, 9], "max": [1, 1, 1]}]))),
        Case(R, "prompts_wrong_schema", lambda c: [*a()(c), "--prompts", str(c / "p.json")], "schema",
             prompts(lambda k: {"schema": "x", "cases": {}})),
    ]  # fmt: skip


def _evaluate_cases() -> list[Case]:
    E = "seganypet_evaluate"

    def a(*extra, i="img", ref="ref", o="out", m=None):
        return lambda c: ["-i", str(c / i), "-ref", str(c / ref), "-o", str(c / o), "-m", str(m or ws.model),
                          "-f", "0", "-n_clicks", "1", "-device", "cpu", *extra]  # fmt: skip

    def copy(fn=None):
        def setup(c):
            shutil.copytree(_ds() / "imagesTs", c / "img")
            shutil.copytree(_ds() / "labelsTs", c / "ref")
            if fn is not None:
                fn(c)

        return setup

    def ref0(c):
        return sorted((c / "ref").glob("*.nii.gz"))[0]

    def img0(c):
        return sorted((c / "img").glob("*_0000.nii.gz"))[0]

    return [
        Case(E, "images_missing", a(i="nope"), "nope", copy()),
        Case(E, "reference_missing", a(), "ref", copy(lambda c: ref0(c).unlink())),
        Case(E, "reference_other_grid", a(), "ref", copy(lambda c: bf.shifted(ref0(c), ref0(c)))),
        Case(E, "reference_label_42", a(), "ref", copy(lambda c: bf.label_with_value(ref0(c), ref0(c), 42))),
        Case(E, "output_is_input", a(o="img"), "-o", copy()),
        Case(E, "device_cuda", lambda c: [*a()(c)[:-2], "-device", "cuda"], "-device cuda", copy()),
        Case(E, "malicious_checkpoint", lambda c: a(m=ws.evil)(c), "checkpoint_final.pth", copy()),
        Case(E, "n_clicks_0", lambda c: [*a()(c), "-n_clicks", "0"], "-n_clicks", copy()),
        Case(E, "targets_unknown", lambda c: [*a()(c), "-targets", "nope"], "-targets", copy()),
        Case(E, "nan_image", a(), "img", copy(lambda c: bf.with_nan(img0(c), img0(c)))),
        Case(E, "auto_pred_missing", lambda c: [*a()(c), "-auto_pred", str(c / "nope")], "nope", copy()),
    ]  # fmt: skip
