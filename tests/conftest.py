"""Shared pytest fixtures.

- ``nnunet_env``: fresh nnU-Net raw/preprocessed/results folders under ``tmp_path``, environment variables set
  (``nnUNet_def_n_proc=1``, ``nnUNet_n_proc_DA=0`` for the 2-core CI machine); returns ``NnUNetEnv``.
  CAUTION: nnU-Net 2.8.1's ExperimentPlanner.static_estimate_VRAM_usage calls
  ``torch.set_num_threads(nnUNet_n_proc_DA)``, which raises for 0; tests that PLAN must set it to "1".
- ``small_synthetic_raw``: ONE small synthetic dataset (id 901, 6 training cases from 4 patients + 2 test cases,
  64^3 voxels, <= 3 lesions per case) written once per session; returns its folder. Do not modify it: copy it.
- ``raw_dataset_in_env``: that dataset copied into ``nnunet_env.raw``; returns ``(901, folder)``.
- ``model``: ``(raw folder, model folder)`` of the shared tiny untrained model (``inference_data.shared_model``),
  nnU-Net variables set while the module runs; read-only. A module that needs something else defines its own.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

SMALL_DATASET_ID = 901
SMALL_DATASET_NAME = "SyntheticPETSmall"


@dataclass(frozen=True)
class NnUNetEnv:
    """The three nnU-Net folders of one test (already exported as environment variables)."""

    raw: Path
    preprocessed: Path
    results: Path


@pytest.fixture
def nnunet_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> NnUNetEnv:
    """Create nnUNet_raw/preprocessed/results under ``tmp_path`` and point nnU-Net's variables at them."""
    env = NnUNetEnv(tmp_path / "nnUNet_raw", tmp_path / "nnUNet_preprocessed", tmp_path / "nnUNet_results")
    for variable, folder in (
        ("nnUNet_raw", env.raw),
        ("nnUNet_preprocessed", env.preprocessed),
        ("nnUNet_results", env.results),
    ):
        folder.mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(variable, str(folder))
    monkeypatch.setenv("nnUNet_def_n_proc", "1")
    monkeypatch.setenv("nnUNet_n_proc_DA", "0")
    return env


@pytest.fixture(scope="session")
def small_synthetic_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder ``Dataset901_SyntheticPETSmall`` (read-only by convention) in a session-wide temporary raw root."""
    from seganypet_nnunet.synthetic import SyntheticConfig, make_dataset

    root = tmp_path_factory.mktemp("synthetic_raw")
    config = SyntheticConfig(size="small", max_lesions=3)
    return make_dataset(
        SMALL_DATASET_ID, SMALL_DATASET_NAME, num_train=6, num_test=2, config=config, seed=0, raw_root=root
    )


@pytest.fixture
def raw_dataset_in_env(nnunet_env: NnUNetEnv, small_synthetic_raw: Path) -> tuple[int, Path]:
    """Copy the session dataset into this test's ``nnUNet_raw``; returns (dataset id, copied folder)."""
    target = nnunet_env.raw / small_synthetic_raw.name
    shutil.copytree(small_synthetic_raw, target)
    return SMALL_DATASET_ID, target


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory):
    """The shared tiny model (module docstring); tests set its variables again with ``shared_model(None, mp)``."""
    from inference_data import shared_model

    with pytest.MonkeyPatch.context() as mp:
        yield shared_model(tmp_path_factory, mp)
