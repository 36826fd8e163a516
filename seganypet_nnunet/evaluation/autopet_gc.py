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

from seganypet_nnunet import io_utils, validation
from seganypet_nnunet.errors import InputNotFoundError, SeganypetError, cli_entry
from seganypet_nnunet.evaluation import protocols as P
from seganypet_nnunet.evaluation.autopet_iv import read_clicks, run_click_steps
from seganypet_nnunet.evaluation.autopet_score import N_STEPS

OUTPUT_SUBFOLDER = Path("images") / "tumor-lesion-segmentation"
CLICKS_FILE = "lesion-clicks.json"
PET_NAMES = ("pet", "suv", "pt")


def find_gc_case(input_dir: str | Path) -> tuple[str, Path, Path | None, Path]:
    """(uuid, PET file, CT file or None, click file) of a grand-challenge input folder.

    Raises:
        InputNotFoundError: no input folder, no PET ``.mha`` or no ``lesion-clicks.json``.
        SeganypetError: several PET files.
    """
    input_dir = Path(input_dir)
    if not input_dir.is_dir():
        raise InputNotFoundError(f"{input_dir}: -i input folder not found")
    pets = sorted(p for p in (input_dir / "images" / "pet").glob("*.mha") if not p.name.startswith("."))
    if not pets:
        raise InputNotFoundError(f"{input_dir / 'images' / 'pet'}: no .mha PET file")
    if len(pets) != 1:
        raise SeganypetError(f"{input_dir / 'images' / 'pet'}: expected one .mha PET file, found {len(pets)}")
    uuid = pets[0].name[: -len(".mha")]
    cts = sorted((input_dir / "images" / "ct").glob("*.mha"))
    ct = next((c for c in cts if c.name == pets[0].name), cts[0] if len(cts) == 1 else None)
    clicks = input_dir / CLICKS_FILE
    if not clicks.is_file():
        raise InputNotFoundError(f"{clicks}: missing (the grand-challenge click file)")
    return uuid, pets[0], ct, clicks


def channel_images(channel_names: dict, pet: sitk.Image, ct: sitk.Image | None) -> list[sitk.Image]:
    """The model's input channels in order, from its dataset.json ``channel_names``; CT resampled onto the PET grid
    (linear, outside = -1024 HU) when its geometry differs.

    Raises:
        SeganypetError: a channel that is neither PET nor CT, or a CT channel without a CT image.
    """
    out = []
    for key in sorted(channel_names, key=int):
        name = str(channel_names[key]).lower()
        if name in PET_NAMES:
            out.append(pet)
        elif name == "ct":
            if ct is None:
                raise SeganypetError(f"the model's channel {key} is CT but the input has no images/ct/*.mha")
            same = ct.GetSize() == pet.GetSize() and all(
                np.allclose(getattr(ct, g)(), getattr(pet, g)()) for g in ("GetSpacing", "GetOrigin", "GetDirection")
            )
            out.append(ct if same else sitk.Resample(ct, pet, sitk.Transform(), sitk.sitkLinear, -1024.0))
        else:
            raise SeganypetError(f"model channel {key} is {channel_names[key]!r}; the input has only PET and CT")
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
    """Runs the autoPET IV protocol on one grand-challenge input folder; returns the output ``.mha`` path.

    Everything (input images, clicks, model folder, device, ``-o``) is checked before the output folder is made. The
    working copies of the images live in a hidden folder inside ``output_dir`` (removed on success, error and
    SIGTERM; after SIGKILL by the next run), never in ``/tmp``; errors name the user's files, not the copies.

    Raises:
        InputNotFoundError / SeganypetError: one line naming the file or flag.
    """
    from seganypet_nnunet.inference.predict import predict_automatic
    from seganypet_nnunet.inference.session import SegAnyPETSession

    if n_steps < 2:
        raise SeganypetError(f"n_steps {n_steps}: must be >= 2 (step 0 and at least one click pair)")
    uuid, pet_file, ct_file, clicks_file = find_gc_case(input_dir)
    output_dir = validation.check_output_folder(output_dir, {"-i": input_dir})
    validation.check_device(device)
    ds = P.model_dataset_json(model_folder)
    ending, value = ds.get("file_ending", ".nii.gz"), P.lesion_label(ds["labels"])
    pet = sitk.Cast(validation.read_checked_image(pet_file, "PET"), sitk.sitkFloat32)
    ct = None
    if ct_file is not None:
        ct = sitk.Cast(validation.read_checked_image(ct_file, "CT", require_signal=False), sitk.sitkFloat32)
    tumour, background = read_clicks(clicks_file, pet)
    channels = channel_images(ds["channel_names"], pet, ct)
    output_dir.mkdir(parents=True, exist_ok=True)
    io_utils.remove_stale(output_dir)
    work = Path(tempfile.mkdtemp(prefix=io_utils.temp_prefix("gc_work"), dir=output_dir))
    sources: dict[str, str] = {}
    try:
        files = []
        for c, img in enumerate(channels):
            files.append(work / "in" / f"case_{c:04d}{ending}")
            io_utils.write_image(img, files[-1])
            sources[str(files[-1])] = str(pet_file if img is pet else ct_file)
        predict_automatic(
            model_folder, work / "in", work / "auto", folds=folds, checkpoint=checkpoint, device=device, npp=0, nps=0
        )
        session = SegAnyPETSession.from_model_folder(model_folder, tuple(folds), checkpoint, device=device)
        session.set_image([str(f) for f in files])
        initial = P.automatic_mask(work / "auto", "case", ending, value, session.array_shape)
        masks = run_click_steps(P.SessionPrompter(session), initial, tumour, background, n_steps)
    except SeganypetError as err:
        raise type(err)(_user_names(str(err), sources, work, output_dir)) from None
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


def _user_names(message: str, sources: dict[str, str], work: Path, output_dir: Path) -> str:
    """``message`` with the working copies' paths replaced by the user's files, and any other path inside the hidden
    working folder by ``output_dir`` (e.g. a full disk: the folder the user chose)."""
    for copy, original in sources.items():
        message = message.replace(copy, original)
    for sub in (work / "in" / io_utils.TMP_DIR, work / "in", work / "auto", work):
        message = message.replace(str(sub), str(output_dir))
    return message


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


@cli_entry("seganypet_predict_autopet_gc")
def predict_autopet_gc_entry(argv: list[str] | None = None) -> None:
    """Console script ``seganypet_predict_autopet_gc``."""
    from seganypet_nnunet.cli_args import (
        add_model_arguments,
        add_model_folder_argument,
        parse_folds,
        require_model_choice,
        resolve_model_folder,
    )
    from seganypet_nnunet.errors import as_user_error

    p = argparse.ArgumentParser(description="autoPET IV grand-challenge layout: /input (PET, CT, clicks) → /output.")
    p.add_argument("-i", default="/input", help="[OPTIONAL] input folder. Default: /input")
    p.add_argument("-o", default="/output", help="[OPTIONAL] output folder. Default: /output")
    add_model_arguments(p, dataset_required=False, default_folds=["0"])
    add_model_folder_argument(p)
    p.add_argument("-device", default="cpu", help="[OPTIONAL] cpu (default), cuda or mps")
    p.add_argument("--save_steps", action="store_true", help="[OPTIONAL] also write OUT/steps/<uuid>_pred0..10.mha")
    p.add_argument("--verbose", action="store_true", help="[OPTIONAL] show tracebacks of errors")
    a = p.parse_args(argv)
    require_model_choice(p, a)
    with as_user_error("-f"):
        folds = parse_folds(a.f)
    if a.device not in ("cpu", "cuda", "mps"):
        raise SeganypetError(f"-device must be one of cpu, cuda, mps, got {a.device!r}")
    model = resolve_model_folder(a)
    out = predict_grand_challenge(
        a.i, a.o, model, folds=folds, checkpoint=a.chk, device=a.device, save_steps=a.save_steps
    )
    print(json.dumps({"output": str(out)}))


if __name__ == "__main__":
    predict_autopet_gc_entry()
