"""SegAnyPET planners and ``seganypet_plan_and_preprocess`` on the small synthetic dataset (real nnU-Net, no mocks)."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from seganypet_nnunet.model.config import MODEL_CONFIGS
from seganypet_nnunet.planners.seganypet_planner import token_level
from seganypet_nnunet.run.plan_and_preprocess import plan_and_preprocess, plan_and_preprocess_entry
from seganypet_nnunet.splits import patient_grouped_splits

OUR_KEYS = ("backbone_class", "promptable", "input_transforms")


@pytest.fixture(scope="module")
def tiny_planned(small_synthetic_raw: Path, tmp_path_factory: pytest.TempPathFactory):
    """Plans + preprocesses the small synthetic dataset ONCE with the tiny preset (module-wide nnU-Net folders)."""
    root = tmp_path_factory.mktemp("tiny_planned")
    with pytest.MonkeyPatch.context() as mp:
        for variable in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
            (root / variable).mkdir()
            mp.setenv(variable, str(root / variable))
        mp.setenv("nnUNet_def_n_proc", "1")
        mp.setenv("nnUNet_n_proc_DA", "0")
        raw = root / "nnUNet_raw" / small_synthetic_raw.name
        shutil.copytree(small_synthetic_raw, raw)
        dataset_id = int(raw.name[len("Dataset") : len("Dataset") + 3])
        result = plan_and_preprocess(
            [dataset_id], planner="SegAnyPETPlannerTiny", num_processes=1, fingerprint_processes=1
        )
        yield result, raw, root / "nnUNet_preprocessed" / raw.name


def _load(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())


def _fullres(plans: dict) -> dict:
    return plans["configurations"]["3d_fullres"]


def test_plans_name_our_network(tiny_planned) -> None:
    result, raw, _ = tiny_planned
    assert result["plans_identifier"] == "SegAnyPETPlansTiny"
    plans = _load(next(iter(result["datasets"].values()))["plans_file"])
    assert "2d" not in plans["configurations"]
    for name, cfg in plans["configurations"].items():
        if "architecture" not in cfg:  # 3d_cascade_fullres inherits 3d_fullres
            continue
        arch = cfg["architecture"]
        assert arch["network_class_name"] == "seganypet_nnunet.model.network.SegAnyPETNet"
        assert arch["arch_kwargs"]["backbone_class"] == "dynamic_network_architectures.architectures.unet.PlainConvUNet"
        assert arch["arch_kwargs"]["promptable"] == dataclasses.asdict(MODEL_CONFIGS["tiny"])
        assert cfg["data_identifier"] == f"SegAnyPETPlansTiny_{name}"


def test_network_builds_through_nnunet_and_patch_fits_token_grid(tiny_planned) -> None:
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    result, raw, _ = tiny_planned
    dataset_json = _load(raw / "dataset.json")
    plans_manager = PlansManager(next(iter(result["datasets"].values()))["plans_file"])
    cm = plans_manager.get_configuration("3d_fullres")
    n_in = len(dataset_json["channel_names"])
    n_out = plans_manager.get_label_manager(dataset_json).num_segmentation_heads
    net = nnUNetTrainer.build_network_architecture(plans_manager, cm, n_in, n_out, True)
    assert type(net).__name__ == "SegAnyPETNet"

    patch = list(cm.patch_size)
    strides = cm.network_arch_init_kwargs["strides"]
    total = [math.prod(s[axis] for s in strides) for axis in range(3)]
    assert all(p % t == 0 for p, t in zip(patch, total, strict=True))
    _, token_stride = token_level(strides, net.config.token_stride)
    grid = net.prompt_grid_shape(patch)
    assert list(grid) == [p // s for p, s in zip(patch, token_stride, strict=True)]
    assert math.prod(token_stride) >= net.config.token_stride**3

    with torch.no_grad():
        out = net(torch.rand(1, n_in, *patch))
    assert isinstance(out, list) and tuple(out[0].shape) == (1, n_out, *patch)


def test_pet_normalisation_and_baseline_from_same_fingerprint(tiny_planned) -> None:
    result, raw, preprocessed = tiny_planned
    assert result["baseline_plans_identifier"] == "nnUNetPlansTiny"
    files = next(iter(result["datasets"].values()))
    ours, base = _load(files["plans_file"]), _load(files["baseline_plans_file"])
    channels = _load(raw / "dataset.json")["channel_names"]
    assert list(channels.values())[0] == "PET"
    cfg, base_cfg = _fullres(ours), _fullres(base)
    assert cfg["normalization_schemes"][0] == "NoNormalization" and cfg["use_mask_for_norm"][0] is False
    assert cfg["architecture"]["arch_kwargs"]["input_transforms"][0] == "log1p_suv"
    assert base_cfg["normalization_schemes"][0] == "ZScoreNormalization"  # nnU-Net's own choice for "PET"

    fingerprint = _load(preprocessed / "dataset_fingerprint.json")
    for plans in (ours, base):
        assert (
            plans["foreground_intensity_properties_per_channel"]
            == fingerprint["foreground_intensity_properties_per_channel"]
        )
    assert ours["original_median_shape_after_transp"] == base["original_median_shape_after_transp"]
    for key in ("patch_size", "batch_size", "spacing"):
        assert cfg[key] == base_cfg[key], key
    backbone = {k: v for k, v in cfg["architecture"]["arch_kwargs"].items() if k not in OUR_KEYS}
    assert backbone == base_cfg["architecture"]["arch_kwargs"]
    assert base_cfg["architecture"]["network_class_name"] == cfg["architecture"]["arch_kwargs"]["backbone_class"]


def test_preprocessed_data_for_both_plans(tiny_planned) -> None:
    result, raw, preprocessed = tiny_planned
    num_training = _load(raw / "dataset.json")["numTraining"]
    files = next(iter(result["datasets"].values()))
    for plans_file in (files["plans_file"], files["baseline_plans_file"]):
        folder = preprocessed / _fullres(_load(plans_file))["data_identifier"]
        assert len(list(folder.glob("*.pkl"))) == num_training, folder
    assert len(list((preprocessed / "gt_segmentations").iterdir())) == num_training


def test_splits_grouped_by_patient(tiny_planned) -> None:
    result, raw, preprocessed = tiny_planned
    splits = _load(preprocessed / "splits_final.json")
    case_to_patient = _load(raw / "case_to_patient.json")
    train_cases = {p.name[: -len(".nii.gz")] for p in (raw / "labelsTr").glob("*.nii.gz")}
    patients = {case_to_patient[c] for c in train_cases}
    assert len(splits) == min(5, len(patients))
    assert sorted(c for fold in splits for c in fold["val"]) == sorted(train_cases)
    for fold in splits:
        assert fold["val"] and set(fold["train"]) | set(fold["val"]) == train_cases
        assert not {case_to_patient[c] for c in fold["train"]} & {case_to_patient[c] for c in fold["val"]}


def test_patient_grouped_splits_few_patients() -> None:
    cases = {"a_bl": "p1", "a_fu": "p1", "b": "p2", "c": "p3"}
    splits = patient_grouped_splits(sorted(cases), cases)
    assert len(splits) == 3 and all(fold["val"] for fold in splits)
    assert any(set(fold["val"]) == {"a_bl", "a_fu"} for fold in splits)
    with pytest.raises(ValueError, match="no patient"):
        patient_grouped_splits(["x"], cases)


def test_pet_ct_channels(nnunet_env) -> None:
    from seganypet_nnunet.synthetic import SyntheticConfig, make_dataset

    config = SyntheticConfig(with_ct=True, followup_fraction=0.0)
    make_dataset(902, "PetCt", num_train=2, num_test=0, config=config, seed=1)
    result = plan_and_preprocess([902], planner="SegAnyPETPlannerTiny", preprocess=False, fingerprint_processes=1)
    files = result["datasets"][902]
    cfg, base_cfg = _fullres(_load(files["plans_file"])), _fullres(_load(files["baseline_plans_file"]))
    assert cfg["normalization_schemes"] == ["NoNormalization", "CTNormalization"]
    assert cfg["architecture"]["arch_kwargs"]["input_transforms"] == ["log1p_suv", "identity"]
    assert base_cfg["normalization_schemes"][1] == "CTNormalization"
    assert not (nnunet_env.preprocessed / "Dataset902_PetCt" / cfg["data_identifier"]).exists()


def test_default_preset_on_whole_body_fingerprint(raw_dataset_in_env, nnunet_env, monkeypatch, capsys) -> None:
    """``--no_pp`` with the default preset on a fingerprint of whole-body size (synthetic ``whole_body`` grid)."""
    from seganypet_nnunet.synthetic import SyntheticConfig

    dataset_id, raw = raw_dataset_in_env
    whole_body = SyntheticConfig(size="whole_body")
    n = _load(raw / "dataset.json")["numTraining"]
    fingerprint = {  # array order (z, y, x) as nnU-Net stores it; intensities are irrelevant for the patch
        "spacings": [list(whole_body.grid_spacing[::-1])] * n,
        "shapes_after_crop": [list(whole_body.grid_shape_xyz[::-1])] * n,
        "foreground_intensity_properties_per_channel": {
            "0": {
                "max": 20.0,
                "mean": 2.0,
                "median": 1.5,
                "min": 0.0,
                "percentile_00_5": 0.1,
                "percentile_99_5": 15.0,
                "std": 2.0,
            }
        },
        "median_relative_size_after_cropping": 1.0,
    }
    folder = nnunet_env.preprocessed / raw.name
    folder.mkdir(parents=True)
    (folder / "dataset_fingerprint.json").write_text(json.dumps(fingerprint))
    monkeypatch.setattr(sys, "argv", ["seganypet_plan_and_preprocess", "-d", str(dataset_id), "--no_pp"])
    plan_and_preprocess_entry()
    assert "SegAnyPETPlans" in capsys.readouterr().out

    plans, base = _load(folder / "SegAnyPETPlans.json"), _load(folder / "nnUNetPlans.json")
    cfg = _fullres(plans)
    median = plans["original_median_shape_after_transp"]
    assert all(64 <= p <= m for p, m in zip(cfg["patch_size"], median, strict=True)), cfg["patch_size"]
    assert cfg["architecture"]["arch_kwargs"]["n_stages"] >= 5 and cfg["batch_size"] >= 2
    assert math.prod(cfg["patch_size"]) <= math.prod(_fullres(base)["patch_size"])
    assert not any(p.is_dir() for p in folder.iterdir())  # nothing preprocessed


def test_cli_help_and_errors(raw_dataset_in_env, monkeypatch, capsys) -> None:
    exe = shutil.which("seganypet_plan_and_preprocess")
    assert exe, "console script not installed"
    help_text = subprocess.run([exe, "-h"], capture_output=True, text=True, check=True).stdout
    for flag in ("-pl", "-np", "--no_pp", "--verify_dataset_integrity", "-gpu_memory_target", "--no_baseline"):
        assert flag in help_text

    for argv, expected in (
        (["-d", "901", "-pl", "NoSuchPlanner"], "SegAnyPETPlannerTiny"),
        (["-d", "998"], "dataset id 998 not found"),
    ):
        monkeypatch.setattr(sys, "argv", ["seganypet_plan_and_preprocess", *argv])
        with pytest.raises(SystemExit) as excinfo:
            plan_and_preprocess_entry()
        assert excinfo.value.code == 1  # errors.cli_entry: one line, exit 1
        error_line = capsys.readouterr().err.strip().splitlines()[-1]
        assert expected in error_line and "Traceback" not in error_line
