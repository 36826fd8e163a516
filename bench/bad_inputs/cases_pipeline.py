"""Inputs of plan_and_preprocess and train."""

# ruff: noqa: E501  (the case tables read best one input per line)
from __future__ import annotations

import json
import shutil

from common import DS, PLANS, Case, _ds, bf, ws


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
