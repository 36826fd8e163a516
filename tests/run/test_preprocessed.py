"""A preprocessed folder records its completion; training refuses a half-written one with one line (issue 24 item 5),
and preprocessing on a full disk is one line with nothing published (item 1)."""

from __future__ import annotations

import os
import shutil
import sys

import pytest

from seganypet_nnunet.errors import SeganypetError
from seganypet_nnunet.run.preprocessed import MARKER, IncompletePreprocessingError, check_complete
from seganypet_nnunet.run.train import check_preprocessed_data, resolve_training

PLANNER, PLANS = "SegAnyPETPlannerTiny", "SegAnyPETPlansTiny"


def _data_folder(env, raw):
    return env.preprocessed / raw.name / f"{PLANS}_3d_fullres"


@pytest.mark.slow
def test_marker_written_last_and_training_refuses_half_written_folders(nnunet_env, raw_dataset_in_env, capsys):
    from seganypet_nnunet.run.plan_and_preprocess import plan_and_preprocess

    dataset_id, raw = raw_dataset_in_env
    plan_and_preprocess([dataset_id], planner=PLANNER, baseline=False, num_processes=1, fingerprint_processes=1)
    data = _data_folder(nnunet_env, raw)
    assert (data / MARKER).is_file()
    cases = check_complete(data)
    folder, plans, fold = resolve_training(dataset_id, "3d_fullres", 0, PLANS)
    assert check_preprocessed_data(folder, plans, "3d_fullres", fold) == cases

    # what a killed run leaves: no marker, one case's arrays cut short
    (data / MARKER).unlink()
    assert check_complete(data) == cases  # complete files without a marker (stock nnUNetv2_preprocess) are accepted
    victim = data / f"{cases[-1]}.b2nd"
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    with pytest.raises(IncompletePreprocessingError, match=f"{cases[-1]}.b2nd: incomplete") as err:
        check_preprocessed_data(folder, plans, "3d_fullres", fold)
    assert "\n" not in str(err.value) and "seganypet_plan_and_preprocess" in str(err.value)

    # a case the splits list but nnU-Net never wrote
    for f in data.glob(f"{cases[-1]}*"):
        f.unlink()
    with pytest.raises(SeganypetError, match="training case\\(s\\) missing"):
        check_preprocessed_data(folder, plans, "3d_fullres", fold)

    # the console script says the same in one line, exit 1, before the trainer writes anything
    from bad_files import run_entry

    from seganypet_nnunet.run.train import train_entry

    results_before = sorted(nnunet_env.results.rglob("*"))
    code, err_text = run_entry(train_entry, [dataset_id, "3d_fullres", "0", "-p", PLANS, "-device", "cpu"], capsys)
    assert code == 1 and "training case(s) missing" in err_text and "Traceback" not in err_text
    assert sorted(nnunet_env.results.rglob("*")) == results_before


def test_an_empty_preprocessed_folder_is_refused(tmp_path):
    data = tmp_path / "Dataset1_X" / "P_3d_fullres"
    data.mkdir(parents=True)
    with pytest.raises(SeganypetError, match="no preprocessed cases"):
        check_complete(data)


@pytest.mark.slow
def test_preprocessing_on_a_full_disk_is_one_line_and_publishes_nothing(nnunet_env, raw_dataset_in_env):
    from disk_full import MODE, left_in_full_folder, run_with_full_disk

    dataset_id, raw = raw_dataset_in_env
    shutil.rmtree(nnunet_env.preprocessed)
    code = "import sys; from seganypet_nnunet.run.plan_and_preprocess import plan_and_preprocess_entry as e; e()"
    argv = [sys.executable, "-c", code, "-d", str(dataset_id), "-pl", PLANNER, "--no_baseline", "-np", "1"]
    done = run_with_full_disk(argv, nnunet_env.preprocessed, env={"nnUNet_def_n_proc": "1"})
    lines = [x for x in done.stderr.splitlines() if "error:" in x]
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert len(lines) == 1 and "out of disk space" in lines[0] and str(nnunet_env.preprocessed) in lines[0], MODE
    left = [n for n in left_in_full_folder(nnunet_env.preprocessed)]
    assert all(not n.endswith(".b2nd") for n in left), left
    assert os.environ["nnUNet_preprocessed"] == str(nnunet_env.preprocessed)
