"""seganypet_evaluate --protocol sam_med3d: GT-box-centred pinned crop, random error-region clicks, labelled summary."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from seganypet_nnunet.evaluation.sam_med3d_protocol import gt_box_centre


def test_gt_box_centre_is_the_bounding_box_centre_not_the_centroid():
    mask = np.zeros((10, 12, 14), bool)
    mask[2:5, 3, 4] = True
    mask[2, 3, 4:13] = True  # an L: centroid and box centre differ
    assert gt_box_centre(mask).tolist() == [3.0, 3.0, 8.0]


@pytest.mark.slow
def test_sam_med3d_protocol_cli_on_imported_weights(nnunet_env, raw_dataset_in_env, monkeypatch, tmp_path):
    from seganypet_nnunet.evaluation.interactive import case_targets, find_cases
    from seganypet_nnunet.evaluation.sam_med3d_protocol import OracleCropSession, run_target_sam_med3d
    from seganypet_nnunet.inference import coordinates as C
    from seganypet_nnunet.inference.follow import centred_box
    from seganypet_nnunet.inference.model_folder import load_model_folder
    from seganypet_nnunet.model.sam_med3d import SamMed3DNet
    from seganypet_nnunet.run.import_checkpoint import import_checkpoint

    monkeypatch.setenv("nnUNet_n_proc_DA", "1")
    dataset_id, raw = raw_dataset_in_env
    torch.manual_seed(0)
    released = tmp_path / "released.pth"
    torch.save(SamMed3DNet().state_dict(), released)
    folder = import_checkpoint(released, dataset_id)
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    case = sorted(p.name[: -len("_0000.nii.gz")] for p in (raw / "imagesTs").iterdir())[0]
    shutil.copy(raw / "imagesTs" / f"{case}_0000.nii.gz", images)
    shutil.copy(raw / "labelsTs" / f"{case}.nii.gz", labels)

    out = tmp_path / "eval"
    cmd = ["seganypet_evaluate", "-i", str(images), "-ref", str(labels), "-o", str(out), "-m", str(folder)]
    cmd += [
        "-f",
        "all",
        "-targets",
        "liver",
        "-n_clicks",
        "2",
        "--protocol",
        "sam_med3d",
        "-seed",
        "3",
        "-device",
        "cpu",
    ]
    proc = subprocess.run(cmd, env=dict(os.environ), capture_output=True, text=True)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert not (out / "summary.json").exists()  # ours was not asked for
    summary = json.loads((out / "summary_sam_med3d.json").read_text())
    assert summary["settings"]["protocol"].startswith("sam_med3d (SAM-Med3D/SegAnyPET oracle protocol")
    clicks = summary["cases"][case]["targets"]["liver"]["clicks"]
    ref = sitk.GetArrayFromImage(sitk.ReadImage(str(labels / f"{case}.nii.gz")))
    liver = json.loads((folder / "dataset.json").read_text())["labels"]["liver"]
    first = clicks[0]
    assert first["clicked"] and first["positive"] and ref[tuple(int(c) for c in first["coord_ijk"][::-1])] == liver
    assert summary["mean"]["per_structure"]["liver"]["n_targets"] == 1

    session = OracleCropSession(load_model_folder(folder, ("all",)))  # the crop stays on the GT box centre
    (ev_case,) = find_cases(images, labels)
    session.set_image([str(f) for f in ev_case.image_files])
    (target,) = case_targets(ref, None, {"liver": liver}, ())
    run_target_sam_med3d(session, target, (1.0, 1.0, 1.0), 2, 2.0, np.random.default_rng(0))
    centre = C.array_to_preprocessed(gt_box_centre(target.mask), session.geometry)
    shape = session.geometry.preprocessed_shape  # SamMed3DNet: centred, zero-padded where it leaves the image
    assert session._targets["liver"].crop == centred_box(centre, session.patch, shape, clamp=False)
