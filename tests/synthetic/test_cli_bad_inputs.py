"""seganypet_make_synthetic on bad flags: one line naming the flag, exit 1, nothing written (no escape from -o)."""

from __future__ import annotations

import pytest
from bad_files import assert_one_line_error, run_entry, snapshot

from seganypet_nnunet.synthetic.cli import make_synthetic_entry

CMD = "seganypet_make_synthetic"

BAD = {
    "name_escapes": (["-n", "x/../../escaped"], "-n 'x/../../escaped': may not contain a path separator"),
    "name_empty": (["-n", ""], "-n '': is empty"),
    "name_space": (["-n", "a b"], "-n 'a b'"),
    "id_0": (["-d", "0"], "-d 0: dataset id must be in 1..999"),
    "id_1000": (["-d", "1000"], "-d 1000: dataset id must be in 1..999"),
    "num_train_0": (["-num_train", "0"], "-num_train 0: must be >= 1"),
    "num_test_negative": (["-num_test", "-1"], "-num_test -1: must be >= 0"),
    "max_lesions_negative": (["-max_lesions", "-1"], "-max_lesions -1: must be >= 0"),
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_flag_one_line_nothing_written(tmp_path, capsys, kind):
    extra, expect = BAD[kind]
    argv = ["-d", "950", "--small", "-num_train", "2", "-num_test", "0", "-o", tmp_path / "out", *extra]
    before = snapshot(tmp_path)
    code, err = run_entry(make_synthetic_entry, argv, capsys)
    assert_one_line_error(code, err, CMD, expect)
    assert snapshot(tmp_path) == before


def test_output_is_a_file_and_id_clash(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    code, err = run_entry(make_synthetic_entry, ["-d", "950", "-o", tmp_path / "f"], capsys)
    assert_one_line_error(code, err, CMD, "f: -o is an existing file")
    (tmp_path / "out" / "Dataset950_Other").mkdir(parents=True)
    before = snapshot(tmp_path)
    code, err = run_entry(make_synthetic_entry, ["-d", "950", "--small", "-o", tmp_path / "out"], capsys)
    assert_one_line_error(code, err, CMD, "Dataset950_Other: dataset id 950 is already used")
    assert snapshot(tmp_path) == before
