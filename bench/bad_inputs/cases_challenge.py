"""Inputs of the challenge/demo commands (score_autopet, predict_autopet_gc, demo, import_checkpoint) and of the
four dataset converters, plus geometry: shifted, truncated and out-of-range-spacing images (issue 24 items 2, 4)."""

# ruff: noqa: E501  (the case tables read best one input per line)
from __future__ import annotations

import gzip
import shutil
import struct
from pathlib import Path

import SimpleITK as sitk
from common import DS, Case, _ds, bf, ws


def pixdim_zero(src: Path, dst: Path) -> Path:
    """A copy of a NIfTI(.gz) file whose header pixdim[1] (x spacing) is 0 (SimpleITK would read it as 1 mm)."""
    raw = gzip.decompress(src.read_bytes()) if src.name.endswith(".gz") else src.read_bytes()
    raw = raw[:80] + struct.pack("<f", 0.0) + raw[84:]
    dst.write_bytes(gzip.compress(raw) if dst.name.endswith(".gz") else raw)
    return dst


def spacing_mm(src: Path, dst: Path, spacing: float = 1000.0) -> Path:
    img = sitk.ReadImage(str(src))
    img.SetSpacing((spacing, *img.GetSpacing()[1:]))
    sitk.WriteImage(img, str(dst))
    return dst


def _label(i: int = 0) -> Path:
    return sorted((_ds() / "labelsTs").glob("*.nii.gz"))[i]


def _score_cases() -> list[Case]:
    S = "seganypet_score_autopet"

    def setup(fn=None):
        def run(c):
            (c / "ref").mkdir(parents=True)
            (c / "pred").mkdir()
            shutil.copy(_label(), c / "ref" / "c1.nii.gz")
            for k in range(2):
                shutil.copy(_label(), c / "pred" / f"c1_pred{k}.nii.gz")
            if fn is not None:
                fn(c)

        return run

    def a(*extra, pred="pred", ref="ref"):
        return lambda c: ["-pred", str(c / pred), "-ref", str(c / ref), "-n_steps", "2", *extra]

    p1 = lambda c: c / "pred" / "c1_pred1.nii.gz"  # noqa: E731
    return [
        Case(S, "pred_missing", a(pred="nope"), "nope", setup()),
        Case(S, "ref_missing", a(ref="nope"), "nope", setup()),
        Case(S, "ref_empty", a(ref="empty"), "empty", setup(lambda c: (c / "empty").mkdir())),
        Case(S, "pred_step_missing", a(), "c1_pred1", setup(lambda c: p1(c).unlink())),
        Case(S, "pred_shifted_40mm", a(), "c1_pred1", setup(lambda c: bf.shifted(p1(c), p1(c), mm=40.0))),
        Case(S, "pred_truncated", a(), "c1_pred1", setup(lambda c: bf.truncated(p1(c), p1(c)))),
        Case(S, "pred_garbage", a(), "c1_pred1", setup(lambda c: bf.garbage(p1(c)))),
        Case(S, "pred_spacing_1000mm", a(), "c1_pred1", setup(lambda c: spacing_mm(p1(c), p1(c)))),
        Case(S, "pred_pixdim_0", a(), "c1_pred1", setup(lambda c: pixdim_zero(p1(c), p1(c)))),
        Case(S, "pred_half_values", a(), "c1_pred1", setup(lambda c: bf.label_with_value(p1(c), p1(c), 0.5))),
        Case(S, "n_steps_1", a("-n_steps", "1"), "-n_steps", setup()),
        Case(S, "o_is_folder", a("-o", "{case}/pred"), "-o", setup()),
        Case(S, "centre_regex_bad", a("-centre_regex", "("), "-centre_regex", setup()),
    ]  # fmt: skip


def _gc_cases() -> list[Case]:
    G = "seganypet_predict_autopet_gc"

    def setup(fn=None, clicks=None):
        def run(c):
            from seganypet_nnunet.evaluation.autopet_gc import write_grand_challenge_input

            pet = sorted((_ds() / "imagesTs").glob("*_0000.nii.gz"))[0]
            write_grand_challenge_input(
                pet, None, clicks or {"tumor": [[10, 10, 10]], "background": [[1, 1, 1]]}, c / "in", "u1"
            )
            if fn is not None:
                fn(c / "in" / "images" / "pet" / "u1.mha")

        return run

    def a(*extra, i="in", o="out"):
        return lambda c: ["-i", str(c / i), "-o", str(c / o), "-m", str(ws.model), "-f", "0", "-device", "cpu", *extra]

    return [
        Case(G, "input_missing", a(i="nope"), "nope", setup()),
        Case(G, "clicks_missing", a(), "lesion-clicks.json", setup(lambda p: (p.parents[2] / "lesion-clicks.json").unlink())),
        Case(G, "click_outside", a(), "lesion-clicks.json", setup(clicks={"tumor": [[900, 1, 1]], "background": []})),
        Case(G, "pet_truncated", a(), "u1.mha", setup(lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]))),
        Case(G, "pet_all_zero", a(), "u1.mha", setup(lambda p: bf.all_zero(p, p))),
        Case(G, "pet_spacing_1000mm", a(), "u1.mha", setup(lambda p: spacing_mm(p, p))),
        Case(G, "device_cuda", lambda c: [*a()(c)[:-2], "-device", "cuda"], "-device cuda", setup()),
        Case(G, "output_is_input", a(o="in"), "-o", setup()),
        Case(G, "model_missing", lambda c: [*a()(c), "-m", str(c / "nope")], "nope", setup()),
        Case(G, "save_steps_disk_full", a("--save_steps"), "out of disk space", setup(), mount=("full", "out")),
        Case(G, "output_read_only", a(), "not writable", setup(), mount=("ro", "out")),
    ]  # fmt: skip


def _demo_cases() -> list[Case]:
    D = "seganypet_demo"
    return [
        Case(D, "device_cuda", lambda c: ["-o", str(c / "demo"), "-device", "cuda"], "-device cuda"),
        Case(D, "num_train_1", lambda c: ["-o", str(c / "demo"), "-num_train", "1"], "-num_train"),
        Case(D, "num_test_0", lambda c: ["-o", str(c / "demo"), "-num_test", "0"], "-num_test"),
        Case(D, "id_0", lambda c: ["-o", str(c / "demo"), "-d", "0"], "-d"),
        Case(D, "o_is_file", lambda c: ["-o", str(c / "f.txt")], "f.txt", lambda c: (c / "f.txt").write_text("x")),
    ]  # fmt: skip


def _import_and_converter_cases() -> list[Case]:
    IC = "seganypet_import_checkpoint"
    return [
        Case(IC, "checkpoint_missing", lambda c: ["--checkpoint", str(c / "nope.pth"), "-d", str(DS)], "nope.pth"),
        Case(IC, "checkpoint_is_folder", lambda c: ["--checkpoint", str(c), "-d", str(DS)], "--checkpoint"),
        Case(IC, "name_escape", lambda c: ["--checkpoint", str(c / "w.pth"), "-d", str(DS), "--name", "../../../../escaped"], "--name",
             lambda c: bf.garbage(c / "w.pth")),
        Case("seganypet_convert_autopet_fdg", "source_missing", lambda c: [str(c / "nope"), "-d", "960", "-o", str(c / "out")], "nope"),
        Case("seganypet_convert_autopet_iv", "source_missing", lambda c: [str(c / "nope"), "-d", "961", "-o", str(c / "out")], "nope"),
        Case("seganypet_convert_autopet_organ", "labels_missing", lambda c: [str(c / "nope"), str(c / "nope2"), "-d", "962", "-o", str(c / "out")], "nope"),
        Case("seganypet_convert_hecktor", "source_missing", lambda c: [str(c / "nope"), "-d", "963", "-o", str(c / "out")], "nope"),
        Case("seganypet_convert_hecktor", "source_empty", lambda c: [str(c / "src"), "-d", "963", "-o", str(c / "out")], "src",
             lambda c: (c / "src").mkdir()),
    ]  # fmt: skip


def challenge_cases() -> list[Case]:
    return _score_cases() + _gc_cases() + _demo_cases() + _import_and_converter_cases()
