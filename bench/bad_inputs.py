"""Runs ~110 bad inputs through every console script (real subprocesses, tiny synthetic data) and classifies each.

Outcomes: ``clear`` (exit != 0, one line ``seganypet_<cmd>: error: ...`` naming the expected file/field, no traceback,
nothing written or changed), ``unclear`` (as clear, but the line does not name the file/field), ``traceback``,
``partial`` (exit != 0 but files were written/changed/left behind), ``exit0`` (accepted a bad input), ``code_ran``
(a malicious checkpoint's pickle ran). Usage::

    python bench/bad_inputs.py [-o results.json] [-k substring]

Takes ~10 min on 2 CPU cores (most of it is Python/torch start-up per subprocess).
"""

# ruff: noqa: E501  (the case table reads best one input per line)
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import bad_files as bf  # noqa: E402

SCRIPTS = {
    "seganypet_make_synthetic": "seganypet_nnunet.synthetic.cli:make_synthetic_entry",
    "seganypet_convert_generic": "seganypet_nnunet.dataset_conversion.generic_folder:convert_entry",
    "seganypet_dicom_to_suv": "seganypet_nnunet.dataset_conversion.dicom_to_suv:dicom_to_suv_entry",
    "seganypet_plan_and_preprocess": "seganypet_nnunet.run.plan_and_preprocess:plan_and_preprocess_entry",
    "seganypet_train": "seganypet_nnunet.run.train:train_entry",
    "seganypet_predict": "seganypet_nnunet.inference.predict:predict_entry",
    "seganypet_evaluate": "seganypet_nnunet.evaluation.evaluate_cli:evaluate_entry",
}
DS, NAME, PLANS = 901, "Syn", "SegAnyPETPlansTiny"


@dataclass
class Case:
    command: str
    name: str
    args: Callable[[Path], list[str]]
    expect: str  # substring the error line must contain (file or field)
    setup: Callable[[Path], None] | None = None
    env: dict = field(default_factory=dict)  # values may use {case}
    own_env: bool = False  # nnUNet_raw/preprocessed under the case folder (plan, converters)


class WS:
    root: Path
    raw: Path
    model: Path
    evil: Path
    marker: Path


ws = WS()


def _ds() -> Path:
    return ws.raw / f"Dataset{DS:03d}_{NAME}"


def _test_images() -> list[Path]:
    return sorted((_ds() / "imagesTs").glob("*_0000.nii.gz"))


def _inputs(c: Path, bad: Callable[[Path], None] | None = None) -> None:
    (c / "in").mkdir(parents=True, exist_ok=True)
    for f in _test_images():
        shutil.copy(f, c / "in" / f.name)
    if bad is not None:
        bad(c / "in")


def build_workspace(root: Path) -> dict:
    from seganypet_nnunet.inference.model_folder import plan_and_write_untrained
    from seganypet_nnunet.planners import SegAnyPETPlannerTiny
    from seganypet_nnunet.synthetic import SyntheticConfig, make_dataset

    ws.root, ws.raw = root, root / "raw"
    env = {"nnUNet_raw": str(root / "raw"), "nnUNet_preprocessed": str(root / "pre"),
           "nnUNet_results": str(root / "res"), "nnUNet_def_n_proc": "1", "nnUNet_n_proc_DA": "1"}  # fmt: skip
    os.environ.update(env)
    for k in ("raw", "pre", "res"):
        (root / k).mkdir(parents=True, exist_ok=True)
    make_dataset(DS, NAME, 4, 2, SyntheticConfig(size="small", max_lesions=2), seed=0, raw_root=ws.raw)
    results = root / "res" / _ds().name
    ws.model = plan_and_write_untrained(
        DS, SegAnyPETPlannerTiny, "3d_fullres", results / f"SegAnyPETTrainer__{PLANS}__3d_fullres"
    )
    ws.evil = results / f"Evil__{PLANS}__3d_fullres"
    shutil.copytree(ws.model, ws.evil)
    ws.marker = root / "CODE_RAN"
    bf.malicious_checkpoint(
        ws.evil / "fold_0" / "checkpoint_final.pth", ws.marker, like=ws.model / "fold_0" / "checkpoint_final.pth"
    )
    bf.malicious_checkpoint(
        results / f"nnUNetTrainer__{PLANS}__3d_fullres" / "fold_0" / "checkpoint_latest.pth", ws.marker
    )
    return env


# ------------------------------------------------------------------------------------------------------- the cases
def _synthetic_cases() -> list[Case]:
    def a(*extra):
        return lambda c: ["-d", "950", "-num_train", "2", "-num_test", "0", "--small", "-o", str(c / "out"), *extra]

    def clash(c):
        (c / "out" / "Dataset950_Other").mkdir(parents=True)

    def file_o(c):
        c.mkdir(parents=True, exist_ok=True)
        (c / "outfile").write_text("x")

    return [
        Case("seganypet_make_synthetic", "name_escape", a("-n", "x/../../escaped"), "-n"),
        Case("seganypet_make_synthetic", "name_empty", a("-n", ""), "-n"),
        Case("seganypet_make_synthetic", "name_space", a("-n", "a b"), "-n"),
        Case("seganypet_make_synthetic", "id_0", lambda c: ["-d", "0", "-o", str(c / "out")], "-d"),
        Case("seganypet_make_synthetic", "id_1000", lambda c: ["-d", "1000", "-o", str(c / "out")], "-d"),
        Case("seganypet_make_synthetic", "num_train_0", lambda c: ["-d", "950", "-num_train", "0", "-o", str(c / "out")], "-num_train"),
        Case("seganypet_make_synthetic", "num_test_neg", lambda c: ["-d", "950", "-num_test", "-1", "-o", str(c / "out")], "-num_test"),
        Case("seganypet_make_synthetic", "max_lesions_neg", a("-max_lesions", "-1"), "-max_lesions"),
        Case("seganypet_make_synthetic", "o_is_file", lambda c: ["-d", "950", "-o", str(c / "outfile")], "outfile", file_o),
        Case("seganypet_make_synthetic", "id_not_int", lambda c: ["-d", "abc", "-o", str(c / "out")], "-d"),
        Case("seganypet_make_synthetic", "id_clash", a(), "Dataset950_Other", clash),
    ]  # fmt: skip


def _generic_source(c: Path, n: int = 2) -> None:
    src = c / "src"
    src.mkdir(parents=True, exist_ok=True)
    cases = sorted((_ds() / "imagesTr").glob("*_0000.nii.gz"))[:n]
    for i, f in enumerate(cases):
        shutil.copy(f, src / f"c{i}_pet.nii.gz")
        shutil.copy(_ds() / "labelsTr" / f.name.replace("_0000", ""), src / f"c{i}_seg.nii.gz")
    labels = json.loads((_ds() / "dataset.json").read_text())["labels"]
    (c / "labels.json").write_text(json.dumps(labels))


def _generic_cases() -> list[Case]:
    def a(*extra, src="src", labels="labels.json", name="G", did="950"):
        return lambda c: [str(c / src), "-l", str(c / labels), "-d", did, "-n", name, "-o", str(c / "out"), *extra]

    def mut(fn):
        def setup(c):
            _generic_source(c)
            fn(c)

        return setup

    def pet(c):
        return c / "src" / "c0_pet.nii.gz"

    def seg(c):
        return c / "src" / "c0_seg.nii.gz"

    def grid(c):
        img = bf.shifted(pet(c), c / "tmp.nii.gz")
        shutil.move(img, pet(c))

    def splits(c):
        d = c / "out" / "Dataset950_G"
        d.mkdir(parents=True)
        (d / "splits_final.json").write_text(json.dumps([{"train": ["x"], "val": ["y"]}]))

    G = "seganypet_convert_generic"
    return [
        Case(G, "source_missing", a(src="nope"), "nope", _generic_source),
        Case(G, "source_is_file", a(src="labels.json"), "labels.json", lambda c: _generic_source(c)),
        Case(G, "source_empty", a(src="empty"), "empty", mut(lambda c: (c / "empty").mkdir())),
        Case(G, "labels_missing", a(labels="nope.json"), "nope.json", _generic_source),
        Case(G, "labels_bad_json", a(), "labels.json", mut(lambda c: (c / "labels.json").write_text("{"))),
        Case(G, "labels_gap", a(), "labels.json", mut(lambda c: (c / "labels.json").write_text('{"background": 0, "a": 2}'))),
        Case(G, "name_escape", a(name="x/../../esc"), "-n", _generic_source),
        Case(G, "id_0", a(did="0"), "-d", _generic_source),
        Case(G, "no_seg", a(), "c0_pet", mut(lambda c: seg(c).unlink())),
        Case(G, "unmatched_name", a(), "c9.nii.gz", mut(lambda c: shutil.copy(pet(c), c / "src" / "c9.nii.gz"))),
        Case(G, "truncated_pet", a(), "c0_pet", mut(lambda c: bf.truncated(pet(c), pet(c)))),
        Case(G, "zero_byte_pet", a(), "c0_pet", mut(lambda c: bf.zero_bytes(pet(c)))),
        Case(G, "nan_pet", a(), "c0_pet", mut(lambda c: bf.with_nan(pet(c), pet(c)))),
        Case(G, "all_zero_pet", a(), "c0_pet", mut(lambda c: bf.all_zero(pet(c), pet(c)))),
        Case(G, "pet_2d", a(), "c0_pet", mut(lambda c: bf.image_2d(pet(c)))),
        Case(G, "pet_4d", a(), "c0_pet", mut(lambda c: bf.image_4d(pet(c), pet(c)))),
        Case(G, "garbage_pet", a(), "c0_pet", mut(lambda c: bf.garbage(pet(c)))),
        Case(G, "label_42", a(), "c0_seg", mut(lambda c: bf.label_with_value(seg(c), seg(c), 42))),
        Case(G, "label_half", a(), "c0_seg", mut(lambda c: bf.label_with_value(seg(c), seg(c), 0.5))),
        Case(G, "label_nan", a(), "c0_seg", mut(lambda c: bf.with_nan(seg(c), seg(c)))),
        Case(G, "folder_like_image", a(), "c5_pet.nii.gz", mut(lambda c: (c / "src" / "c5_pet.nii.gz").mkdir())),
        Case(G, "grid_mismatch", a(), "c0_pet", mut(grid)),
        Case(G, "ct_some_cases", a(), "src", mut(lambda c: shutil.copy(pet(c), c / "src" / "c0_ct.nii.gz"))),
        Case(G, "c2p_bad_json", a("-p", "{case}/c2p.json"), "c2p.json", mut(lambda c: (c / "c2p.json").write_text("["))),
        Case(G, "other_splits", a(), "splits_final.json", mut(splits)),
        Case(G, "id_clash", a(), "Dataset950_Other", mut(lambda c: (c / "out" / "Dataset950_Other").mkdir(parents=True))),
    ]  # fmt: skip


def _dicom_cases() -> list[Case]:
    D = "seganypet_dicom_to_suv"
    return [
        Case(D, "input_missing", lambda c: ["-i", str(c / "nope"), "-o", str(c / "suv.nii.gz")], "nope"),
        Case(D, "input_empty", lambda c: ["-i", str(c / "dcm"), "-o", str(c / "suv.nii.gz")], "dcm",
             lambda c: (c / "dcm").mkdir(parents=True)),
        Case(D, "output_is_folder", lambda c: ["-i", str(c / "dcm"), "-o", str(c / "o")], "o",
             lambda c: [(c / "dcm").mkdir(parents=True), (c / "o").mkdir()]),
        Case(D, "not_dicom", lambda c: ["-i", str(c / "dcm"), "-o", str(c / "suv.nii.gz")], "dcm",
             lambda c: [(c / "dcm").mkdir(parents=True), (c / "dcm" / "x.dcm").write_text("no")]),
    ]  # fmt: skip


def _plan_cases() -> list[Case]:
    P = "seganypet_plan_and_preprocess"
    base = ["-d", str(DS), "-pl", "SegAnyPETPlannerTiny", "-c", "3d_fullres", "-np", "1", "--no_baseline"]

    def copy(fn=None):
        def setup(c):
            shutil.copytree(_ds(), c / "raw" / _ds().name)
            (c / "pre").mkdir()
            if fn is not None:
                fn(c / "raw" / _ds().name)

        return setup

    def first(d, sub="imagesTr", pattern="*_0000.nii.gz"):
        return sorted((d / sub).glob(pattern))[0]

    def ds_json(d, **kw):
        doc = json.loads((d / "dataset.json").read_text())
        doc.update(kw)
        (d / "dataset.json").write_text(json.dumps(doc))

    return [
        Case(P, "dataset_missing", lambda c: ["-d", "977", "-pl", "SegAnyPETPlannerTiny"], "977", copy(), own_env=True),
        Case(P, "raw_unset", lambda c: base, "nnUNet_raw", copy(), env={"nnUNet_raw": ""}, own_env=True),
        Case(P, "planner_unknown", lambda c: ["-d", str(DS), "-pl", "Nope"], "Nope", copy(), own_env=True),
        Case(P, "label_42", lambda c: base, "labelsTr", copy(lambda d: bf.label_with_value(first(d, "labelsTr", "*.nii.gz"), first(d, "labelsTr", "*.nii.gz"), 42)), own_env=True),
        Case(P, "label_half", lambda c: base, "labelsTr", copy(lambda d: bf.label_with_value(first(d, "labelsTr", "*.nii.gz"), first(d, "labelsTr", "*.nii.gz"), 0.5)), own_env=True),
        Case(P, "nan_image", lambda c: base, "imagesTr", copy(lambda d: bf.with_nan(first(d), first(d))), own_env=True),
        Case(P, "truncated_image", lambda c: base, "imagesTr", copy(lambda d: bf.truncated(first(d), first(d))), own_env=True),
        Case(P, "only_channel_1", lambda c: base, "imagesTr", copy(lambda d: first(d).rename(str(first(d)).replace("_0000", "_0001"))), own_env=True),
        Case(P, "extra_channel", lambda c: base, "_0001", copy(lambda d: shutil.copy(first(d), str(first(d)).replace("_0000", "_0001"))), own_env=True),
        Case(P, "num_training_wrong", lambda c: base, "numTraining", copy(lambda d: ds_json(d, numTraining=9)), own_env=True),
        Case(P, "dataset_json_missing", lambda c: base, "dataset.json", copy(lambda d: (d / "dataset.json").unlink()), own_env=True),
        Case(P, "dataset_json_bad", lambda c: base, "dataset.json", copy(lambda d: (d / "dataset.json").write_text("{")), own_env=True),
        Case(P, "np_0", lambda c: [*base[:-3], "-np", "0"], "-np", copy(), own_env=True),
        Case(P, "spacing_0", lambda c: [*base, "-overwrite_target_spacing", "0", "0", "0"], "-overwrite_target_spacing", copy(), own_env=True),
        Case(P, "zero_byte_label", lambda c: base, "labelsTr", copy(lambda d: bf.zero_bytes(first(d, "labelsTr", "*.nii.gz"))), own_env=True),
        Case(P, "ambiguous_id", lambda c: base, "901", copy(lambda d: (d.parent / "Dataset901_Twin").mkdir()), own_env=True),
        Case(P, "folder_like_image", lambda c: base, "x_0000.nii.gz", copy(lambda d: (d / "imagesTr" / "x_0000.nii.gz").mkdir()), own_env=True),
    ]  # fmt: skip


def _train_cases() -> list[Case]:
    T = "seganypet_train"
    base = [str(DS), "3d_fullres", "0", "-p", PLANS, "-device", "cpu"]

    def with_fold(f):
        return lambda c: [str(DS), "3d_fullres", f, "-p", PLANS, "-device", "cpu"]

    def weights(setup_file):
        def setup(c):
            c.mkdir(parents=True, exist_ok=True)
            setup_file(c / "w.pth")

        return setup

    return [
        Case(T, "fold_7", with_fold("7"), "fold 7"),
        Case(T, "fold_abc", with_fold("abc"), "fold"),
        Case(T, "trainer_unknown", lambda c: [*base, "-tr", "Nope"], "-tr"),
        Case(T, "device_cuda", lambda c: [*base[:-2], "-device", "cuda"], "-device cuda"),
        Case(T, "plans_unknown", lambda c: [str(DS), "3d_fullres", "0", "-p", "NoPlans", "-device", "cpu"], "NoPlans"),
        Case(T, "configuration_unknown", lambda c: [str(DS), "4d", "0", "-p", PLANS, "-device", "cpu"], "4d"),
        Case(T, "dataset_unknown", lambda c: ["977", "3d_fullres", "0", "-p", PLANS, "-device", "cpu"], "977"),
        Case(T, "c_and_val", lambda c: [*base, "--c", "--val"], "--c"),
        Case(T, "pretrained_missing", lambda c: [*base, "-pretrained_weights", str(c / "nope.pth")], "nope.pth"),
        Case(T, "pretrained_malicious", lambda c: [*base, "-pretrained_weights", str(c / "w.pth")], "w.pth",
             weights(lambda p: bf.malicious_checkpoint(p, ws.marker))),
        Case(T, "pretrained_garbage", lambda c: [*base, "-pretrained_weights", str(c / "w.pth")], "w.pth",
             weights(bf.garbage)),
        Case(T, "pretrained_plain_pickle", lambda c: [*base, "-pretrained_weights", str(c / "w.pth")], "w.pth",
             weights(lambda p: bf.malicious_plain_pickle(p, ws.marker))),
        Case(T, "continue_malicious", lambda c: [*base, "-tr", "nnUNetTrainer", "--c"], "checkpoint_latest.pth"),
        Case(T, "val_unfinished", lambda c: [*base, "-tr", "nnUNetTrainer", "--val"], "checkpoint_final.pth"),
        Case(T, "preprocessed_unset", lambda c: base, "nnUNet_preprocessed", env={"nnUNet_preprocessed": ""}),
        Case(T, "pretrained_and_c", lambda c: [*base, "--c", "-pretrained_weights", str(c / "w.pth")], "-pretrained_weights",
             weights(bf.garbage)),
    ]  # fmt: skip


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


def all_cases() -> list[Case]:
    return (_synthetic_cases() + _generic_cases() + _dicom_cases() + _plan_cases() + _train_cases()
            + _predict_cases() + _evaluate_cases())  # fmt: skip


# ------------------------------------------------------------------------------------------------------ running
def run_case(case: Case, base_env: dict, timeout: int = 300) -> dict:
    c = ws.root / "cases" / f"{case.command}__{case.name}"
    c.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **base_env}
    if case.own_env:
        env.update({"nnUNet_raw": str(c / "raw"), "nnUNet_preprocessed": str(c / "pre")})
        (c / "raw").mkdir(exist_ok=True)
    if case.setup is not None:
        case.setup(c)
    env.update({k: v.format(case=c) for k, v in case.env.items()})
    env = {k: v for k, v in env.items() if v != ""}
    args = [x.replace("{case}", str(c)) for x in case.args(c)]
    watched = [c, ws.root / "raw", ws.root / "pre", ws.root / "res"]
    before = bf.snapshot(*watched)
    ws.marker.unlink(missing_ok=True)
    module, fn = SCRIPTS[case.command].split(":")
    code = f"import sys; sys.argv[0] = {case.command!r}; from {module} import {fn} as e; e()"
    t0 = time.time()
    try:
        proc = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True,
                              timeout=timeout)  # fmt: skip
        rc, stderr = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired:
        rc, stderr = -9, "TIMEOUT"
    seconds = time.time() - t0
    after = bf.snapshot(*watched)
    changed = sorted(set(before.items()) ^ set(after.items()))
    last = next((line for line in reversed(stderr.strip().splitlines()) if line.strip()), "")
    if ws.marker.exists():
        outcome = "code_ran"
    elif rc == 0:
        outcome = "exit0"
    elif "Traceback (most recent call last)" in stderr or rc == -9:
        outcome = "traceback"
    elif changed:
        outcome = "partial"
    elif "error:" in last and case.expect in last:
        outcome = "clear"
    else:
        outcome = "unclear"
    return {"command": case.command, "input": case.name, "outcome": outcome, "exit": rc, "last_line": last[:300],
            "changed": [p for p, _ in changed][:5], "seconds": round(seconds, 1)}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", default=None, help="write the per-input results as JSON here")
    p.add_argument("-k", default=None, help="only inputs whose 'command/name' contains one of these (comma-separated)")
    p.add_argument("--keep", action="store_true", help="keep the workspace")
    a = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="seganypet_bad_inputs_"))
    try:
        base_env = build_workspace(root)
        keys = a.k.split(",") if a.k else None
        cases = [c for c in all_cases() if keys is None or any(k in f"{c.command}/{c.name}" for k in keys)]
        results = []
        for case in cases:
            r = run_case(case, base_env)
            results.append(r)
            print(f"{r['outcome']:9s} {r['command']:30s} {r['input']:28s} {r['last_line'][:110]}", flush=True)
        totals = Counter(r["outcome"] for r in results)
        print(f"\n{len(results)} inputs: " + ", ".join(f"{k} {v}" for k, v in sorted(totals.items())))
        if a.o:
            Path(a.o).write_text(json.dumps({"totals": dict(totals), "results": results}, indent=1))
    finally:
        if not a.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
