"""Reading the low-quality case marks: the list file, the dataset.json map, and unknown names."""

from __future__ import annotations

import json

import pytest

from seganypet_nnunet.errors import SeganypetError
from seganypet_nnunet.label_quality import LOW_QUALITY_FILE, low_quality_cases

CASES = ("A_BL", "B_BL", "C_FU1")


def _read(folder, dataset_json=None):
    return low_quality_cases(
        dataset_json=dataset_json or {}, dataset_json_source="ds/dataset.json", list_folders=[folder], case_ids=CASES
    )


def test_list_file_and_map_both_mark_cases(tmp_path):
    assert _read(tmp_path) == frozenset()
    (tmp_path / LOW_QUALITY_FILE).write_text(json.dumps(["A_BL"]))
    assert _read(tmp_path) == {"A_BL"}
    assert _read(tmp_path, {"label_quality": {"C_FU1": "low", "B_BL": "high"}}) == {"A_BL", "C_FU1"}


def test_first_folder_holding_the_list_wins(tmp_path):
    first, second = tmp_path / "pre", tmp_path / "raw"
    first.mkdir(), second.mkdir()
    (second / LOW_QUALITY_FILE).write_text(json.dumps(["B_BL"]))
    found = low_quality_cases(dataset_json={}, dataset_json_source="d", list_folders=[first, second], case_ids=CASES)
    assert found == {"B_BL"}


def test_unknown_or_conflicting_names_are_one_line_errors(tmp_path):
    (tmp_path / LOW_QUALITY_FILE).write_text(json.dumps(["A_BL", "NOPE"]))
    with pytest.raises(SeganypetError, match=rf"{LOW_QUALITY_FILE}: case 'NOPE' matches no training case"):
        _read(tmp_path)
    (tmp_path / LOW_QUALITY_FILE).write_text(json.dumps(["A_BL"]))
    with pytest.raises(SeganypetError, match=r"ds/dataset.json: case 'ZZ' matches no training case"):
        _read(tmp_path, {"label_quality": {"ZZ": "low"}})
    with pytest.raises(SeganypetError, match="'high' here but listed as low quality"):
        _read(tmp_path, {"label_quality": {"A_BL": "high"}})
    with pytest.raises(SeganypetError, match="expected 'low' or 'high'"):
        _read(tmp_path, {"label_quality": {"B_BL": "bad"}})
    (tmp_path / LOW_QUALITY_FILE).write_text(json.dumps({"A_BL": 1}))
    with pytest.raises(SeganypetError, match="expected a JSON list"):
        _read(tmp_path)
