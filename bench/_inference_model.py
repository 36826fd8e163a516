"""Shared by the inference benchmarks: a synthetic whole-body dataset and an untrained model folder (said so)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def untrained_whole_body_model(
    dataset_id: int, planner_name: str, num_train: int = 2, num_test: int = 1, size: str = "whole_body"
) -> tuple[Path, Path]:
    """Set nnU-Net env vars to a temp root, generate the data, plan it, write an UNTRAINED model folder."""
    root = Path(tempfile.mkdtemp(prefix="seganypet_bench_"))
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        (root / name).mkdir()
        os.environ[name] = str(root / name)
    os.environ.setdefault("nnUNet_def_n_proc", "1")
    from seganypet_nnunet.inference.model_folder import plan_and_write_untrained
    from seganypet_nnunet.planners import PLANNERS
    from seganypet_nnunet.synthetic import SyntheticConfig
    from seganypet_nnunet.synthetic.dataset import make_dataset

    raw = make_dataset(
        dataset_id, "BenchPET", num_train, num_test, SyntheticConfig(size=size), raw_root=root / "nnUNet_raw"
    )
    planner = PLANNERS[planner_name][0]
    model = root / "nnUNet_results" / raw.name / f"SegAnyPETTrainer__{planner.default_plans_name}__3d_fullres"
    plan_and_write_untrained(dataset_id, planner, "3d_fullres", model)
    return raw, model
