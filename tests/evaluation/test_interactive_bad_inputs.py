"""seganypet_evaluate on bad inputs: one line naming the file/flag, exit 1, no output, checked before any click."""

from __future__ import annotations

import shutil

import pytest
from bad_files import assert_one_line_error, label_with_value, run_entry, shifted, snapshot, with_nan
from inference_data import shared_model

from seganypet_nnunet.evaluation.evaluate_cli import evaluate_entry

CMD = "seganypet_evaluate"


@pytest.fixture
def root(model, tmp_path, monkeypatch):
    shared_model(None, monkeypatch)
    raw, _ = model
    shutil.copytree(raw / "imagesTr", tmp_path / "img")
    shutil.copytree(raw / "labelsTr", tmp_path / "ref")
    return tmp_path


def _argv(r, model, *extra, i="img", ref="ref", o="out"):
    return ["-i", r / i, "-ref", r / ref, "-o", r / o, "-m", model[1], "-f", "0", "-n_clicks", "1", "-device", "cpu",
            *extra]  # fmt: skip


def _ref(r):
    return r / "ref" / "case00.nii.gz"


BAD = {
    "images_missing": (None, {"i": "nope"}, (), "nope: folder not found"),
    "reference_missing": (lambda r: _ref(r).unlink(), {}, (), "case00.nii.gz: case case00: missing reference"),
    "reference_other_grid": (lambda r: shifted(_ref(r), _ref(r)), {}, (), "case00.nii.gz: grid differs"),
    "reference_label_42": (lambda r: label_with_value(_ref(r), _ref(r), 42), {}, (), "label values [42]"),
    "nan_image": (lambda r: with_nan(r / "img" / "case00_0000.nii.gz", r / "img" / "case00_0000.nii.gz"), {}, (),
                  "case00_0000.nii.gz: image holds 2 NaN/Inf"),
    "output_is_input": (None, {"o": "img"}, (), "-o is the same folder as -i"),
    "n_clicks_0": (None, {}, ("-n_clicks", "0"), "-n_clicks: must be > 0"),
    "targets_unknown": (None, {}, ("-targets", "nope"), "-targets: unknown structure name(s) ['nope']"),
    "auto_pred_missing": (None, {}, ("-auto_pred", "{r}/nope"), "nope: -auto_pred folder not found"),
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_input_one_line_no_output(root, model, capsys, kind):
    mutate, kw, extra, expect = BAD[kind]
    if mutate is not None:
        mutate(root)
    before = snapshot(root)
    argv = _argv(root, model, *[str(x).replace("{r}", str(root)) for x in extra], **kw)
    code, err = run_entry(evaluate_entry, argv, capsys)
    assert_one_line_error(code, err, CMD, expect)
    assert snapshot(root) == before
