"""``seganypet_predict_autopet_gc``: a trained model wrapped in the autoPET IV grand-challenge I/O layout (one case).

Input (grand-challenge Task 1)::

    INPUT/images/pet/<uuid>.mha    PET in SUV (required, exactly one file)
    INPUT/images/ct/<uuid>.mha     CT (used when the model has a CT channel; resampled onto the PET grid if needed)
    INPUT/lesion-clicks.json       autoPET IV clicks, either form, original voxel (i, j, k) of the PET

Output: ``OUTPUT/images/tumor-lesion-segmentation/<uuid>.mha`` (uint8 0/1, PET geometry): the prediction after ALL
click pairs of the protocol (autopet_iv.py: step 0 automatic, step k = tumour click k + background click k). With
``--save_steps`` also ``OUTPUT/steps/<uuid>_pred0.mha ... _pred10.mha``, which ``seganypet_score_autopet`` scores.
Channels are matched by the model's dataset.json names: ``PET``/``SUV``/``PT`` → the PET file, ``CT`` → the CT file.
``write_grand_challenge_input`` builds this input layout from a case of ours (local tests of a container).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np
import SimpleITK as sitk

from seganypet_nnunet import io_utils
from seganypet_nnunet.evaluation import protocols as P
from seganypet_nnunet.evaluation.autopet_iv import read_clicks, run_click_steps
from seganypet_nnunet.evaluation.autopet_score import N_STEPS

OUTPUT_SUBFOLDER = Path("images") / "tumor-lesion-segmentation"
CLICKS_FILE = "lesion-clicks.json"
PET_NAMES = ("pet", "suv", "pt")


def find_gc_case(input_dir: str | Path) -> tuple[str, Path, Path | None, Path]:
    """(uuid, PET file, CT file or None, click file) of a grand-challenge input folder.

    Raises:
        FileNotFoundError: no PET ``.mha`` (or several), or no ``lesion-clicks.json``.
    """
    input_dir = Path(input_dir)
    pets = sorted((input_dir / "images" / "pet").glob("*.mha"))
    if len(pets) != 1:
        raise FileNotFoundError(f"{input_dir / 'images' / 'pet'}: expected one .mha PET file, found {len(pets)}")
    uuid = pets[0].name[: -len(".mha")]
    cts = sorted((input_dir / "images" / "ct").glob("*.mha"))
    ct = next((c for c in cts if c.name == pets[0].name), cts[0] if len(cts) == 1 else None)
    clicks = input_dir / CLICKS_FILE
    if not clicks.is_file():
        raise FileNotFoundError(f"{input_dir}: missing {CLICKS_FILE}")
    return uuid, pets[0], ct, clicks


def channel_images(channel_names: dict, pet: sitk.Image, ct: sitk.Image | None) -> list[sitk.Image]:
    """The model's input channels in order, from its dataset.json ``channel_names``; CT resampled onto the PET grid
    (linear, outside = -1024 HU) when its geometry differs.

    Raises:
        ValueError: a channel that is neither PET nor CT, or a CT channel without a CT image.
    """
    out = []
    for key in sorted(channel_names, key=int):
        name = str(channel_names[key]).lower()
        if name in PET_NAMES:
            out.append(pet)
        elif name == "ct":
            if ct is None:
                raise ValueError(f"the model's channel {key} is CT but the input has no images/ct/*.mha")
            same = ct.GetSize() == pet.GetSize() and all(
                np.allclose(getattr(ct, g)(), getattr(pet, g)()) for g in ("GetSpacing", "GetOrigin", "GetDirection")
            )
            out.append(ct if same else sitk.Resample(ct, pet, sitk.Transform(), sitk.sitkLinear, -1024.0))
        else:
            raise ValueError(f"model channel {key} is {channel_names[key]!r}; the grand-challenge input has PET and CT")
    return out


def predict_grand_challenge(
    input_dir: str | Path,
    output_dir: str | Path,
    model_folder: str | Path,
    *,
    folds: Sequence[int | str] = (0,),
    checkpoint: str = "checkpoint_final.pth",
    device: str = "cpu",
    n_steps: int = N_STEPS,
    save_steps: bool = False,
) -> Path:
    """Runs the autoPET IV protocol on one grand-challenge input folder; returns the output ``.mha`` path."""
    from seganypet_nnunet.inference.predict import predict_automatic
    from seganypet_nnunet.inference.session import SegAnyPETSession

    uuid, pet_file, ct_file, clicks_file = find_gc_case(input_dir)
    ds = P.model_dataset_json(model_folder)
    ending, value = ds.get("file_ending", ".nii.gz"), P.lesion_label(ds["labels"])
    pet = sitk.ReadImage(str(pet_file), sitk.sitkFloat32)
    ct = sitk.ReadImage(str(ct_file), sitk.sitkFloat32) if ct_file is not None else None
    tumour, background = read_clicks(clicks_file, pet)
    work = Path(tempfile.mkdtemp(prefix=".seganypet_gc."))
    try:
        files = []
        for c, img in enumerate(channel_images(ds["channel_names"], pet, ct)):
            files.append(work / "in" / f"case_{c:04d}{ending}")
            io_utils.write_image(img, files[-1])
        predict_automatic(
            model_folder, work / "in", work / "auto", folds=folds, checkpoint=checkpoint, device=device, npp=0, nps=0
        )
        session = SegAnyPETSession.from_model_folder(model_folder, tuple(folds), checkpoint, device=device)
        session.set_image([str(f) for f in files])
        initial = P.automatic_mask(work / "auto", "case", ending, value, session.array_shape)
        masks = run_click_steps(P.SessionPrompter(session), initial, tumour, background, n_steps)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def as_image(mask: np.ndarray) -> sitk.Image:
        img = sitk.GetImageFromArray(mask.astype(np.uint8))
        img.CopyInformation(pet)
        return img

    if save_steps:
        for k, mask in enumerate(masks):
            io_utils.write_image(as_image(mask), Path(output_dir) / "steps" / f"{uuid}_pred{k}.mha")
    return io_utils.write_image(as_image(masks[-1]), Path(output_dir) / OUTPUT_SUBFOLDER / f"{uuid}.mha")


def write_grand_challenge_input(
    pet_file: str | Path, ct_file: str | Path | None, clicks: dict, input_dir: str | Path, uuid: str
) -> Path:
    """Writes one case in the grand-challenge input layout (PET/CT as ``.mha``, clicks in the ``points`` form).

    Args:
        pet_file / ct_file: images SimpleITK can read (the CT already on the PET grid, or not).
        clicks: ``{"tumor": [[i, j, k], ...], "background": [...]}``, original voxel (i, j, k) of the PET.
        input_dir: folder to create (the container's ``/input``).
        uuid: the case's file stem.
    """
    input_dir = Path(input_dir)
    io_utils.write_image(sitk.ReadImage(str(pet_file)), input_dir / "images" / "pet" / f"{uuid}.mha")
    if ct_file is not None:
        io_utils.write_image(sitk.ReadImage(str(ct_file)), input_dir / "images" / "ct" / f"{uuid}.mha")
    points = [{"point": list(p), "name": kind} for kind in ("tumor", "background") for p in clicks.get(kind, [])]
    doc = {"version": {"major": 1, "minor": 0}, "type": "Multiple points", "points": points}
    io_utils.write_json(doc, input_dir / CLICKS_FILE)
    return input_dir


def predict_autopet_gc_entry() -> None:
    """Console script ``seganypet_predict_autopet_gc``."""
    from seganypet_nnunet.cli_args import (
        add_model_arguments,
        add_model_folder_argument,
        model_folder,
        parse_folds,
        require_model_choice,
    )

    p = argparse.ArgumentParser(description="autoPET IV grand-challenge layout: /input (PET, CT, clicks) → /output.")
    p.add_argument("-i", default="/input", help="[OPTIONAL] input folder. Default: /input")
    p.add_argument("-o", default="/output", help="[OPTIONAL] output folder. Default: /output")
    add_model_arguments(p, dataset_required=False, default_folds=["0"])
    add_model_folder_argument(p)
    p.add_argument("-device", default="cpu", help="[OPTIONAL] cpu (default), cuda or mps")
    p.add_argument("--save_steps", action="store_true", help="[OPTIONAL] also write OUT/steps/<uuid>_pred0..10.mha")
    a = p.parse_args()
    require_model_choice(p, a)
    folds = parse_folds(a.f)
    model = a.m or model_folder(a)
    out = predict_grand_challenge(
        a.i, a.o, model, folds=folds, checkpoint=a.chk, device=a.device, save_steps=a.save_steps
    )
    print(json.dumps({"output": str(out)}))


if __name__ == "__main__":
    predict_autopet_gc_entry()
