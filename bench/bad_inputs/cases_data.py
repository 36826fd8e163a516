"""Inputs of the data commands: make_synthetic, convert_generic, dicom_to_suv."""

# ruff: noqa: E501  (the case tables read best one input per line)
from __future__ import annotations

import json
import shutil
from pathlib import Path

from common import Case, _ds, bf


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
