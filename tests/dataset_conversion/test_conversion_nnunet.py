"""Stock ``nnUNetv2_plan_and_preprocess --verify_dataset_integrity`` accepts every converter's output (subprocess).

nnU-Net folders come from the shared ``nnunet_env`` fixture (tests/conftest.py); the default suite plans one 3-case
autoPET FDG dataset, the other converters are ``slow``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conversion_fixtures import (
    CaseBank,
    make_autopet_fdg,
    make_autopet_iv,
    make_autopet_organ,
    make_generic,
    make_hecktor,
)

from seganypet_nnunet.dataset_conversion.Dataset221_AutoPET_FDG import convert_autopet_fdg
from seganypet_nnunet.dataset_conversion.Dataset224_AutoPET_IV import convert_autopet_iv
from seganypet_nnunet.dataset_conversion.Dataset225_AutoPET_Organ import convert_autopet_organ
from seganypet_nnunet.dataset_conversion.Dataset226_HECKTOR import convert_hecktor
from seganypet_nnunet.dataset_conversion.generic_folder import convert_generic_folder


@pytest.fixture
def env(nnunet_env, monkeypatch) -> dict[str, str]:
    """Subprocess environment of the shared ``nnunet_env`` folders (raw/preprocessed/results, 1 process)."""
    # planning calls torch.set_num_threads(get_allowed_n_proc_DA()), which rejects 0 (nnU-Net 2.8.1), so 1 here
    monkeypatch.setenv("nnUNet_n_proc_DA", "1")
    environ = dict(os.environ)
    assert environ["nnUNet_raw"] == str(nnunet_env.raw)
    return environ


def _fdg(src: Path, dataset_id: int, cases: CaseBank) -> Path:
    make_autopet_fdg(src, cases, first_study_only=True)  # 3 cases of 3 patients: the smallest grouped-split dataset
    return convert_autopet_fdg(src, dataset_id)


def _iv(src: Path, dataset_id: int, cases: CaseBank) -> Path:
    make_autopet_iv(src, cases)
    return convert_autopet_iv(src, dataset_id, click_dir=src / "clicks")


def _organ(src: Path, dataset_id: int, cases: CaseBank) -> Path:
    make_autopet_organ(src / "organ", src / "fdg", cases)
    return convert_autopet_organ(src / "organ", src / "fdg", dataset_id, with_ct=True)


def _hecktor(src: Path, dataset_id: int, cases: CaseBank) -> Path:
    make_hecktor(src, cases)
    return convert_hecktor(src, dataset_id)


def _generic(src: Path, dataset_id: int, cases: CaseBank) -> Path:
    make_generic(src, cases)
    return convert_generic_folder(
        src / "data", src / "labels.json", dataset_id, "Generic", case_to_patient=src / "c2p.json"
    )


def _plan_and_verify(folder: Path, dataset_id: int, env: dict[str, str]) -> None:
    cmd = ["nnUNetv2_plan_and_preprocess", "-d", str(dataset_id), "-c", "3d_fullres", "--verify_dataset_integrity",
           "-np", "1"]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert folder.parent == Path(env["nnUNet_raw"])
    pre = Path(env["nnUNet_preprocessed"]) / folder.name
    assert (pre / "nnUNetPlans.json").is_file()
    if (folder / "splits_final.json").is_file():  # our grouped splits survive planning where the trainer reads them
        assert json.loads((pre / "splits_final.json").read_text()) == json.loads(
            (folder / "splits_final.json").read_text()
        )


def test_fdg_output_passes_stock_integrity_check(tmp_path, env, synthetic_cases):
    folder = _fdg(tmp_path / "src", 521, synthetic_cases)
    assert json.loads((folder / "dataset.json").read_text())["numTraining"] == 3
    _plan_and_verify(folder, 521, env)


@pytest.mark.slow
@pytest.mark.parametrize("convert, dataset_id", [(_iv, 524), (_organ, 525), (_hecktor, 526), (_generic, 527)])
def test_all_outputs_pass_stock_integrity_check(tmp_path, env, synthetic_cases, convert, dataset_id):
    _plan_and_verify(convert(tmp_path / "src", dataset_id, synthetic_cases), dataset_id, env)
