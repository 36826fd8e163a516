"""Inputs of issue 24's classes on the older commands: full disks and read-only outputs (a tmpfs mounted in the
command's own mount namespace), spacing 0 / 1000 mm, arguments that did work before failing, silent acceptances,
half-written preprocessed data, and the SegAnyPETSession API (each call in a fresh process)."""

# ruff: noqa: E501  (the case tables read best one input per line)
from __future__ import annotations

import json
import pickle
import shutil
import sys
from pathlib import Path

import numpy as np
from cases_challenge import pixdim_zero, spacing_mm
from common import DS, PLANS, SESSION, Case, _ds, _inputs, bf, ws

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "dataset_conversion"))


def _img(d: Path) -> Path:
    return sorted(d.glob("*_0000.nii.gz"))[0]


def _predict_args(*extra, i="in", o="out"):
    return lambda c: ["-i", str(c / i), "-o", str(c / o), "-d", str(DS), "-p", PLANS, "-f", "0", "-device", "cpu",
                      "-npp", "0", "-nps", "0", *extra]  # fmt: skip


def _prompts(doc):
    def setup(c):
        _inputs(c)
        case = _img(c / "in").name[: -len("_0000.nii.gz")]
        (c / "p.json").write_text(doc(case) if isinstance(doc(case), str) else json.dumps(doc(case)))

    return setup


def _predict_cases() -> list[Case]:
    R = "seganypet_predict"
    a, pf = _predict_args, ["--prompts", "{case}/p.json"]
    pt = {"coord": [10, 10, 10], "space": "voxel"}

    def bad(fn):
        return lambda c: _inputs(c, fn)

    def dup(k):
        return (
            '{"schema": "seganypet-prompts/1", "cases": {"%s": {"targets": [{"name": "a", "points": [{"coord": [10, 10, 10]}]}]}, "%s": {"targets": [{"name": "b", "points": [{"coord": [10, 10, 10]}]}]}}}'
            % (k, k)
        )  # noqa: E731

    return [
        Case(R, "disk_full", a(o="full/pred"), "out of disk space", bad(None), mount=("full", "full")),
        Case(R, "disk_full_prompted", a(*pf, o="full/pred"), "out of disk space", _prompts(lambda k: {"schema": "seganypet-prompts/1", "cases": {k: {"targets": [{"name": "l", "points": [pt]}]}}}), mount=("full", "full")),
        Case(R, "output_read_only", a(o="ro/pred"), "not writable", bad(None), mount=("ro", "ro")),
        Case(R, "step_size_0", a("-step_size", "0"), "-step_size", bad(None)),
        Case(R, "npp_negative", a("-npp", "-1"), "-npp", bad(None)),
        Case(R, "prompts_is_folder", a("--prompts", "{case}/in"), "--prompts", bad(None)),
        Case(R, "prompts_duplicate_case", a(*pf), "twice", _prompts(dup)),
        Case(R, "prompts_zero_volume_box", a(*pf), "zero-volume", _prompts(lambda k: {"schema": "seganypet-prompts/1", "cases": {k: {"targets": [{"name": "l", "boxes": [{"min": [0, 0, 0], "max": [0, 50, 50], "space": "world"}]}]}}})),
        Case(R, "image_pixdim_0", a(), "pixdim", bad(lambda d: pixdim_zero(_img(d), _img(d)))),
        Case(R, "image_spacing_1000mm", a(), "spacing", bad(lambda d: spacing_mm(_img(d), _img(d)))),
    ]  # fmt: skip


def _dicom_series(c: Path, patch=None) -> None:
    from test_dicom_to_suv import SHAPE, write_series

    write_series(c / "dcm", np.random.default_rng(0).uniform(100.0, 5000.0, SHAPE), patch=patch)


def _other_cases() -> list[Case]:
    D, P, T, E = "seganypet_dicom_to_suv", "seganypet_plan_and_preprocess", "seganypet_train", "seganypet_evaluate"
    dcm = lambda c: ["-i", str(c / "dcm"), "-o", str(c / "suv.nii.gz")]  # noqa: E731
    plan = ["-d", str(DS), "-pl", "SegAnyPETPlannerTiny", "-np", "1", "--no_baseline"]
    train = [str(DS), "3d_fullres", "0", "-p", PLANS, "-device", "cpu"]

    def raw_copy(fn=None):
        def setup(c):
            shutil.copytree(_ds(), c / "raw" / _ds().name)
            (c / "pre").mkdir()
            if fn is not None:
                fn(c / "raw" / _ds().name)

        return setup

    def pre_copy(cases: int, marker: bool, splits: bool, broken: bool = False):
        def setup(c):
            import blosc2

            shutil.copytree(Path(ws.root / "pre"), c / "pre")
            data = c / "pre" / _ds().name / f"{PLANS}_3d_fullres"
            data.mkdir(parents=True, exist_ok=True)
            if not splits:
                (c / "pre" / _ds().name / "splits_final.json").unlink(missing_ok=True)
            ids = [f"k{i}" for i in range(cases)]
            for k in ids:
                blosc2.asarray(np.zeros((1, 8, 8, 8), np.float32), urlpath=str(data / f"{k}.b2nd"), mode="w")
                blosc2.asarray(np.zeros((1, 8, 8, 8), np.int8), urlpath=str(data / f"{k}_seg.b2nd"), mode="w")
                (data / f"{k}.pkl").write_bytes(pickle.dumps({}))
            if broken:
                f = data / f"{ids[-1]}.b2nd"
                f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
            if marker:
                (data / ".seganypet").mkdir()
                (data / ".seganypet" / "preprocessing_complete.json").write_text(json.dumps({"cases": ids}))

        return setup

    return [
        Case(D, "disk_full", lambda c: ["-i", str(c / "dcm"), "-o", str(c / "full" / "suv.nii.gz")], "out of disk space", _dicom_series, mount=("full", "full")),
        Case(D, "weight_inf", lambda c: [*dcm(c), "--weight", "inf"], "--weight", _dicom_series),
        Case(D, "height_nan", lambda c: [*dcm(c), "--mode", "lbm", "--height", "nan"], "--height", _dicom_series),
        Case(D, "truncated_pixel_block", dcm, "IM", lambda c: _dicom_series(c, lambda ds, k: setattr(ds, "PixelData", ds.PixelData[:40]))),
        Case(D, "pixel_spacing_1000mm", dcm, "spacing", lambda c: _dicom_series(c, lambda ds, k: setattr(ds, "PixelSpacing", [1000.0, 2.0]))),
        Case(P, "configuration_4d", lambda c: [*plan, "-c", "4d_fullres"], "-c", raw_copy(), own_env=True),
        Case(P, "npfp_0", lambda c: [*plan, "-npfp", "0"], "-npfp", raw_copy(), own_env=True),
        Case(P, "disk_full", lambda c: plan, "out of disk space", raw_copy(), own_env=True, mount=("full", "pre")),
        Case(P, "image_spacing_1000mm", lambda c: plan, "spacing", raw_copy(lambda d: [spacing_mm(_img(d / "imagesTr"), _img(d / "imagesTr"))]), own_env=True),
        Case(T, "num_gpus_2_cpu", lambda c: [*train, "-num_gpus", "2"], "-num_gpus"),
        Case(T, "too_few_cases_for_5_folds", lambda c: train, "5-fold", pre_copy(3, True, False), env={"nnUNet_preprocessed": "{case}/pre"}),
        Case(T, "half_written_preprocessed", lambda c: train, "incomplete", pre_copy(5, False, False, broken=True), env={"nnUNet_preprocessed": "{case}/pre"}),
        Case(E, "output_read_only", lambda c: ["-i", str(c / "img"), "-ref", str(c / "ref"), "-o", str(c / "ro" / "ev"), "-m", str(ws.model), "-f", "0", "-device", "cpu"], "not writable",
             lambda c: [shutil.copytree(_ds() / "imagesTs", c / "img"), shutil.copytree(_ds() / "labelsTs", c / "ref")], mount=("ro", "ro")),
    ]  # fmt: skip


_SESSION_PRELUDE = """
import sys, numpy as np, SimpleITK as sitk
from seganypet_nnunet.inference.session import SegAnyPETSession
s = SegAnyPETSession.from_model_folder(sys.argv[1], folds=(0,), device="cpu")
image = sys.argv[2]
try:
{body}
except ValueError as err:
    print("session_api: error: " + " ".join(str(err).split()), file=sys.stderr)
    sys.exit(1)
"""


def _session(name: str, body: str, expect: str, image_fn=None) -> Case:
    def setup(c):
        c.mkdir(parents=True, exist_ok=True)
        img = sorted((_ds() / "imagesTs").glob("*_0000.nii.gz"))[0]
        shutil.copy(img, c / "img_0000.nii.gz")
        if image_fn is not None:
            image_fn(c / "img_0000.nii.gz")

    code = _SESSION_PRELUDE.format(body="\n".join("    " + line for line in body.strip().splitlines()))
    return Case(SESSION, name, lambda c: [str(ws.model), str(c / "img_0000.nii.gz")], expect, setup, code=code)


def _session_cases() -> list[Case]:
    ready = "s.set_image(image)\ns.new_target('t')\n"
    return [
        _session("positive_no", ready + "s.add_point([10, 10, 10], positive='no', space='voxel')", "positive"),
        _session("initial_mask_all_nan", ready + "s.add_mask(np.full(s.array_shape, np.nan, np.float32))", "NaN"),
        _session("image_all_zero", "s.set_image(image)", "all zero", lambda p: bf.all_zero(p, p)),
        _session("image_spacing_1000mm", "s.set_image(image)", "spacing", lambda p: spacing_mm(p, p)),
        _session("image_pixdim_0", "s.set_image(image)", "pixdim", lambda p: pixdim_zero(p, p)),
        _session("image_truncated", "s.set_image(image)", "truncated", lambda p: bf.truncated(p, p)),
        _session("image_nan", "s.set_image(image)", "NaN", lambda p: bf.with_nan(p, p)),
        _session("target_name_escape", "s.set_image(image)\ns.new_target('../../x')", "target name"),
        _session("box_zero_volume_world", ready + "s.add_box([0, 0, 0], [0, 30, 30], space='world')", "zero-volume"),
        _session("box_min_gt_max", ready + "s.add_box([9, 9, 9], [1, 1, 1], space='voxel')", "exceeds"),
        _session("point_outside", ready + "s.add_point([900, 1, 1], space='voxel')", "add_point"),
        _session("point_nan", ready + "s.add_point([np.nan, 1, 1], space='voxel')", "add_point"),
        _session("mask_wrong_shape", ready + "s.add_mask(np.zeros((2, 2, 2)))", "add_mask"),
    ]


def issue24_cases() -> list[Case]:
    return _predict_cases() + _other_cases() + _session_cases()
