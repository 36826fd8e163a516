"""seganypet_check_model: a clean model folder passes; one with a malicious checkpoint fails, nothing in it runs."""

from __future__ import annotations

import torch
from bad_files import assert_one_line_error, malicious_checkpoint, run_entry
from released_files import upstream_training_checkpoint

from seganypet_nnunet.run.check_model import check_model, check_model_entry


def _folder(tmp_path):
    folder = tmp_path / "Trainer__Plans__3d_fullres"
    (folder / "fold_0").mkdir(parents=True)
    torch.save({"network_weights": {"w": torch.zeros(2)}, "init_args": {"fold": 0}}, folder / "fold_0" / "a.pth")
    upstream_training_checkpoint(folder / "fold_0" / "b.pth", {"w": torch.zeros(2)})  # numpy scalars, Namespace
    return folder


def test_clean_folder(tmp_path, capsys):
    folder = _folder(tmp_path)
    assert [v.status for v in check_model(folder)] == ["safe", "safe"]
    check_model_entry([str(folder)])
    out = capsys.readouterr().out
    assert "OK   fold_0/a.pth" in out and "all 2 checkpoint(s) load without running code" in out


def test_malicious_checkpoint_fails_and_never_runs(tmp_path, capsys):
    folder = _folder(tmp_path)
    marker = tmp_path / "CODE_RAN"
    malicious_checkpoint(folder / "fold_1" / "checkpoint_final.pth", marker)
    code, err = run_entry(check_model_entry, [folder], capsys)
    assert_one_line_error(code, err, "seganypet_check_model", "1 of 3 checkpoint(s) would run pickled code")
    verdicts = {v.path.name: v for v in check_model(folder)}
    assert verdicts["checkpoint_final.pth"].status == "code"
    assert "io.open" in verdicts["checkpoint_final.pth"].detail
    assert not marker.exists()


def test_user_errors_one_line(tmp_path, capsys):
    for argv, expect in [([tmp_path / "nope"], "model folder not found"), ([tmp_path], "no checkpoint (*.pth)")]:
        code, err = run_entry(check_model_entry, argv, capsys)
        assert_one_line_error(code, err, "seganypet_check_model", expect)
