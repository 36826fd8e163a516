"""seganypet_import_checkpoint: released-format files -> nnU-Net model folder -> session (world / voxel clicks).

The "released" files are written from our own ``SamMed3DNet`` state_dict (random weights, fixed seed) in the two
layouts SAM-Med3D / SegAnyPET ship: ``{"model_state_dict": sd}`` and a raw state_dict with DDP's ``module.`` prefix.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from seganypet_nnunet.checkpoint_io import CheckpointError, load_checkpoint
from seganypet_nnunet.run.import_checkpoint import import_checkpoint, load_pretrained_weights, read_released_state_dict


@pytest.fixture(scope="module")
def released_state_dict() -> dict[str, torch.Tensor]:
    """One random SamMed3DNet state_dict per module (building the 100M-parameter net costs ~1 s)."""
    from seganypet_nnunet.model.sam_med3d import SamMed3DNet

    torch.manual_seed(0)
    return SamMed3DNet().state_dict()


def _results_entries(env) -> list[str]:
    return sorted(str(p.relative_to(env.results)) for p in Path(env.results).rglob("*"))


def test_reads_both_released_layouts(tmp_path, released_state_dict):
    wrapped, raw = tmp_path / "wrapped.pth", tmp_path / "raw.pth"
    torch.save({"model_state_dict": released_state_dict, "epoch": 7}, wrapped)
    torch.save({f"module.{k}": v for k, v in released_state_dict.items()}, raw)
    sd_wrapped, layout_wrapped = read_released_state_dict(wrapped)
    sd_raw, layout_raw = read_released_state_dict(raw)
    assert (layout_wrapped, layout_raw) == ("model_state_dict", "state_dict")
    assert list(sd_wrapped) == list(sd_raw) == list(released_state_dict)
    assert all(torch.equal(sd_raw[k], v) for k, v in released_state_dict.items())


def test_pretrained_weights_strict_into_network(tmp_path, released_state_dict):
    from seganypet_nnunet.model.sam_med3d import SamMed3DNet

    path = tmp_path / "released.pth"
    torch.save({"model_state_dict": released_state_dict}, path)
    torch.manual_seed(1)
    net = SamMed3DNet()
    assert load_pretrained_weights(net, path) == "model_state_dict"
    assert all(torch.equal(net.state_dict()[k], v) for k, v in released_state_dict.items())
    bad = dict(released_state_dict)
    bad.pop("mask_decoder.iou_token.weight")
    torch.save(bad, path)
    with pytest.raises(CheckpointError, match=r"1 missing keys \[mask_decoder\.iou_token\.weight\]"):
        load_pretrained_weights(net, path)


@pytest.mark.slow
def test_import_then_session_world_and_voxel_clicks(nnunet_env, raw_dataset_in_env, monkeypatch, released_state_dict):
    from seganypet_nnunet.inference.session import SegAnyPETSession

    monkeypatch.setenv("nnUNet_n_proc_DA", "1")  # planning (see conftest)
    dataset_id, raw = raw_dataset_in_env
    released = nnunet_env.raw.parent / "seganypet_test.pth"
    torch.save({"model_state_dict": released_state_dict}, released)
    folder = import_checkpoint(released, dataset_id, name="SegAnyPETv2")
    assert folder.name == "SegAnyPETv2__SamMed3DPlans__3d_fullres"
    assert sorted(p.name for p in folder.iterdir()) == ["dataset.json", "fold_all", "plans.json"]
    ckpt = load_checkpoint(folder / "fold_all" / "checkpoint_final.pth")  # weights_only=True
    assert ckpt["trainer_name"] == "nnUNetTrainer" and ckpt["init_args"]["configuration"] == "3d_fullres"
    assert all(torch.equal(ckpt["network_weights"][k], v) for k, v in released_state_dict.items())
    all_plans = json.loads((folder / "plans.json").read_text())
    assert list(all_plans["configurations"]) == ["3d_fullres"] and all_plans["transpose_forward"] == [0, 1, 2]
    plans = all_plans["configurations"]["3d_fullres"]
    assert plans["spacing"] == [1.5, 1.5, 1.5] and plans["patch_size"] == [128, 128, 128]
    assert plans["normalization_schemes"] == ["NoNormalization"]
    assert plans["architecture"]["network_class_name"] == "seganypet_nnunet.model.sam_med3d.network.SamMed3DNet"
    with pytest.raises(FileExistsError):
        import_checkpoint(released, dataset_id, name="SegAnyPETv2")

    session = SegAnyPETSession.from_model_folder(folder, folds=("all",), max_crops=2)
    image = raw / "imagesTs" / sorted(os.listdir(raw / "imagesTs"))[0]
    session.set_image(str(image))
    ref = sitk.ReadImage(str(image))
    centre_ijk = [s // 2 for s in ref.GetSize()]
    world = ref.TransformContinuousIndexToPhysicalPoint([float(c) for c in centre_ijk])
    session.new_target("liver")
    one = session.add_point(world, positive=True, space="world")
    assert one.shape == sitk.GetArrayFromImage(ref).shape and one.dtype == np.uint8
    session.add_point([c + 2 for c in centre_ijk], positive=False, space="voxel")
    several = session.add_point([c - 2 for c in centre_ijk], positive=True, space="voxel")
    assert several.shape == one.shape
    assert session.undo_steps == 3  # one step per click (public API)
    session.new_target("lesion_1")  # a second target on the same crop reuses its cached image embedding
    other = session.add_point(centre_ijk, space="voxel")
    labels, names = session.label_map()
    assert names == {1: "liver", 2: "lesion_1"} and labels.shape == other.shape

    from seganypet_nnunet.errors import SeganypetError
    from seganypet_nnunet.inference.predict import predict_automatic

    out = nnunet_env.raw.parent / "auto_out"
    with pytest.raises(SeganypetError, match="prompt-only .* pass --prompts"):
        predict_automatic(folder, raw / "imagesTs", out, folds=("all",), device="cpu", npp=0, nps=0)
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncated", "missing_key", "wrong_shape"])
def test_bad_file_clear_error_nothing_written(nnunet_env, raw_dataset_in_env, released_state_dict, damage):
    dataset_id, _ = raw_dataset_in_env
    path = nnunet_env.raw.parent / f"{damage}.pth"
    if damage == "truncated":
        torch.save({"model_state_dict": released_state_dict}, path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
        expected = "truncated or corrupt"
    elif damage == "missing_key":
        sd = {k: v for k, v in released_state_dict.items() if k != "image_encoder.blocks.3.attn.rel_pos_h"}
        torch.save({"model_state_dict": sd}, path)
        expected = r"1 missing keys \[image_encoder\.blocks\.3\.attn\.rel_pos_h\]; 0 unexpected keys"
    else:
        sd = dict(released_state_dict)
        sd["image_encoder.blocks.0.attn.rel_pos_d"] = torch.zeros(15, 64)  # a global block's table in a windowed one
        torch.save(sd, path)
        expected = r"1 shape mismatches \(file != model\) \[image_encoder\.blocks\.0\.attn\.rel_pos_d \(15, 64\) != "
    before = _results_entries(nnunet_env)
    with pytest.raises(CheckpointError, match=expected) as info:
        import_checkpoint(path, dataset_id)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert _results_entries(nnunet_env) == before
    assert not (nnunet_env.preprocessed / raw_dataset_in_env[1].name).exists()  # nothing planned either


@pytest.mark.parametrize("prefix", [False, True])
def test_upstream_training_checkpoint_reads_without_trust(tmp_path, released_state_dict, prefix):
    """The dict upstream training saves (optimizer, scheduler, numpy scalars, Namespace), plain or with DDP's
    ``module.`` prefixes inside ``model_state_dict``: only the weights are taken, no --trust_checkpoint needed."""
    from released_files import upstream_training_checkpoint

    path = upstream_training_checkpoint(tmp_path / "up.pth", released_state_dict, module_prefix=prefix)
    sd, layout = read_released_state_dict(path)
    assert layout == "model_state_dict" and list(sd) == list(released_state_dict)
    assert all(torch.equal(sd[k], v) for k, v in released_state_dict.items())


def test_malicious_released_file_never_runs(tmp_path, released_state_dict):
    from bad_files import _RunsCode

    marker = tmp_path / "CODE_RAN"
    path = tmp_path / "evil.pth"
    torch.save({"model_state_dict": {"a": torch.zeros(1)}, "args": _RunsCode(marker)}, path)
    with pytest.raises(CheckpointError, match=r"evil.pth: refused to load.*globals io\.open"):
        read_released_state_dict(path)
    assert not marker.exists()


def test_entry_user_errors_one_line_nothing_created(tmp_path, capsys, nnunet_env, released_state_dict):
    """Every user error of seganypet_import_checkpoint is one line, exit 1, and nothing is created."""
    from bad_files import assert_one_line_error, malicious_checkpoint, run_entry

    from seganypet_nnunet.run.import_checkpoint import import_checkpoint_entry

    good = tmp_path / "good.pth"
    torch.save({"model_state_dict": {"a": torch.zeros(1)}}, good)
    evil = malicious_checkpoint(tmp_path / "evil.pth", tmp_path / "CODE_RAN")
    out = tmp_path / "zero_shot"
    cases = [
        (["--checkpoint", good, "-d", "987"], "-d 987: no such dataset"),
        (["--checkpoint", tmp_path, "-o", out], "is a directory, not a checkpoint file"),
        (["--checkpoint", tmp_path / "nope.pth", "-o", out], "nope.pth: file not found"),
        (["--checkpoint", evil, "-o", out], "evil.pth: refused to load"),
        (["--checkpoint", good, "-o", out], "good.pth: not a SAM-Med3D vit_b_ori file (1 keys)"),
        (["--checkpoint", good], "give exactly one of -d DATASET"),
        (["--checkpoint", good, "-o", out, "-d", "1"], "give exactly one of -d DATASET"),
        (["--checkpoint", good, "-o", good], "exists and is not a folder"),
        (["--checkpoint", good, "-o", out, "-pl", "SegAnyPETPlanner"], "-pl SegAnyPETPlanner: unknown planner preset"),
    ]
    for argv, expect in cases:
        code, err = run_entry(import_checkpoint_entry, argv, capsys)
        assert_one_line_error(code, err, "seganypet_import_checkpoint", expect)
    assert not out.exists() and not (tmp_path / "CODE_RAN").exists()
    assert list(nnunet_env.results.iterdir()) == [] and list(nnunet_env.preprocessed.iterdir()) == []


def test_name_that_would_escape_nnunet_results_is_refused(tmp_path, nnunet_env, released_state_dict):
    from seganypet_nnunet.errors import SeganypetError

    released = tmp_path / "released.pth"
    torch.save({"model_state_dict": released_state_dict}, released)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(SeganypetError, match="--name"):
        import_checkpoint(released, 990, name="../../../../escaped")
    assert _results_entries(nnunet_env) == [] and sorted(p.name for p in tmp_path.iterdir()) == before
