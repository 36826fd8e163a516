"""``seganypet_predict``: nnUNetv2_predict's flags and outputs; with ``--prompts`` the promptable path.

Automatic mode (no ``--prompts``) runs nnU-Net's own ``nnUNetPredictor`` after ``manual_initialization`` with our
network (no trainer lookup by name): same files as ``nnUNetv2_predict`` (CASE.nii.gz, dataset.json, plans.json,
predict_from_raw_data_args.json, and CASE.npz/.pkl with ``--save_probabilities``). Prompted mode runs
``SegAnyPETSession`` per case and named target and writes ``CASE.nii.gz`` (label map, ids 1..K in target order, later
targets win overlaps) + ``CASE.json`` (``{"labels": {"1": "name", ...}}``), or ``CASE__<target>.nii.gz`` per target.
Everything is validated before anything is written, and each run's files appear in OUT only when all succeeded.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

import torch

from seganypet_nnunet import io_utils
from seganypet_nnunet.inference.model_folder import load_model_folder


def input_cases(input_folder: str | Path, file_ending: str, n_channels: int) -> dict[str, list[str]]:
    """``{case: [channel files]}`` of an nnU-Net input folder (``CASE_XXXX<ending>``)."""
    from nnunetv2.utilities.utils import create_lists_from_splitted_dataset_folder

    folder = Path(input_folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"input folder {folder} does not exist")
    lists = create_lists_from_splitted_dataset_folder(str(folder), file_ending, num_processes=1)
    cases = {}
    for files in lists:
        case = Path(files[0]).name[: -len(file_ending) - 5]
        if len(files) != n_channels:
            raise ValueError(f"input case {case!r}: {len(files)} channel file(s), the model expects {n_channels}")
        cases[case] = files
    return cases


def _publish(staging: Path, output_folder: Path) -> None:
    """Move every staged file into ``output_folder`` (created if needed); called only after the whole run succeeded."""
    output_folder.mkdir(parents=True, exist_ok=True)
    for f in sorted(staging.iterdir()):
        os.replace(f, output_folder / f.name)


def predict_automatic(
    model_folder: str | Path,
    input_folder: str | Path,
    output_folder: str | Path,
    *,
    folds: Sequence[int | str] = (0,),
    checkpoint: str = "checkpoint_final.pth",
    device: str = "cpu",
    step_size: float = 0.5,
    disable_tta: bool = False,
    save_probabilities: bool = False,
    npp: int = 3,
    nps: int = 3,
    verbose: bool = False,
) -> None:
    """nnU-Net automatic prediction of every case in ``input_folder`` (folds ensembled, nnU-Net's outputs)."""
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    m = load_model_folder(model_folder, folds, checkpoint)
    predictor = nnUNetPredictor(
        tile_step_size=step_size,
        use_gaussian=True,
        use_mirroring=not disable_tta,
        perform_everything_on_device=device == "cuda",
        device=torch.device(device),
        verbose=verbose,
        verbose_preprocessing=verbose,
        allow_tqdm=verbose,
    )
    predictor.manual_initialization(
        m.network.to(torch.device(device)),
        m.plans_manager,
        m.configuration_manager,
        m.parameters,
        m.dataset_json,
        m.trainer_name,
        m.mirror_axes,
    )
    output_folder = Path(output_folder)
    output_folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_folder.name}.", dir=output_folder.parent))
    try:
        if npp == 0 and nps == 0:
            predictor.predict_from_files_sequential(str(input_folder), str(staging), save_probabilities, True, None)
        else:
            predictor.predict_from_files(
                str(input_folder),
                str(staging),
                save_probabilities=save_probabilities,
                num_processes_preprocessing=max(npp, 1),
                num_processes_segmentation_export=max(nps, 1),
            )
        _publish(staging, output_folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def predict_prompted(
    model_folder: str | Path,
    input_folder: str | Path,
    output_folder: str | Path,
    prompts_file: str | Path,
    *,
    folds: Sequence[int | str] = (0,),
    checkpoint: str = "checkpoint_final.pth",
    device: str = "cpu",
    per_target_files: bool = False,
) -> list[Path]:
    """Prompted segmentation of the cases named in ``prompts_file``; returns the files written.

    Raises:
        PromptFileError: malformed prompt file, unknown case, prompt outside its image (nothing is written).
    """
    from seganypet_nnunet.inference.session import SegAnyPETSession
    from seganypet_nnunet.prompts.prompt_file import load_prompt_file

    m = load_model_folder(model_folder, folds, checkpoint)
    ending = m.dataset_json["file_ending"]
    cases = input_cases(input_folder, ending, len(m.dataset_json["channel_names"]))
    prompts = load_prompt_file(prompts_file, cases)  # validates everything before any work
    session = SegAnyPETSession(m, device=device)
    output_folder = Path(output_folder)
    output_folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{output_folder.name}.", dir=output_folder.parent) as tmp:
        staging = Path(tmp)
        for case, targets in prompts.items():
            session.set_image(cases[case])
            for t in targets:
                session.new_target(t.name)
                if not t.boxes and not any(p.positive for p in t.points):
                    continue  # only negative clicks (e.g. an autoPET case without lesion): the target stays empty
                for b in t.boxes:
                    session.add_box(b.min, b.max, space=b.space)
                for p in sorted(t.points, key=lambda p: not p.positive):  # a target starts with a positive click
                    session.add_point(p.coord, positive=p.positive, space=p.space)
            names = [t.name for t in targets]
            if per_target_files:
                for name in names:
                    io_utils.write_image(session.mask_image(name), staging / f"{case}__{name}{ending}")
            else:
                labels, ids = session.label_map()
                ids = {k: v for k, v in ids.items() if v in names}
                io_utils.write_image(session.to_image(labels), staging / f"{case}{ending}")
                io_utils.write_json({"labels": {str(k): v for k, v in ids.items()}}, staging / f"{case}.json")
        written = [output_folder / f.name for f in sorted(staging.iterdir())]
        _publish(staging, output_folder)
    return written


def predict_entry() -> None:
    """``seganypet_predict``: nnUNetv2_predict's grammar; ``--prompts FILE`` switches to promptable inference."""
    import argparse

    from seganypet_nnunet.cli_args import (
        add_device_argument,
        add_model_arguments,
        device_from_args,
        model_folder,
        parse_folds,
    )

    p = argparse.ArgumentParser(description="SegAnyPET prediction (nnUNetv2_predict flags; --prompts for prompts)")
    p.add_argument("-i", required=True, help="[REQUIRED] input folder (CASE_0000.nii.gz ...)")
    p.add_argument("-o", required=True, help="[REQUIRED] output folder")
    add_model_arguments(p, dataset_required=True, default_folds=["0", "1", "2", "3", "4"])
    p.add_argument("--prompts", default=None, help="[OPTIONAL] prompt JSON (our schema or an autoPET IV click file)")
    p.add_argument("--per_target_files", action="store_true", help="[OPTIONAL] prompted: one file per target")
    add_device_argument(p)
    p.add_argument("--save_probabilities", action="store_true", help="[OPTIONAL] also write .npz/.pkl (automatic)")
    p.add_argument("-step_size", type=float, default=0.5, help="[OPTIONAL] sliding-window step. Default: 0.5")
    p.add_argument("--disable_tta", action="store_true", help="[OPTIONAL] no mirroring test-time augmentation")
    p.add_argument("-npp", type=int, default=3, help="[OPTIONAL] preprocessing processes. Default: 3")
    p.add_argument("-nps", type=int, default=3, help="[OPTIONAL] export processes. Default: 3")
    p.add_argument("--verbose", action="store_true", help="[OPTIONAL] talk more")
    a = p.parse_args()
    device = device_from_args(a).type  # nnUNetv2_predict's thread settings; one line if the device is missing
    folds = parse_folds(a.f)
    model = model_folder(a)
    if a.prompts:
        predict_prompted(
            model,
            a.i,
            a.o,
            a.prompts,
            folds=folds,
            checkpoint=a.chk,
            device=device,
            per_target_files=a.per_target_files,
        )
    else:
        predict_automatic(
            model,
            a.i,
            a.o,
            folds=folds,
            checkpoint=a.chk,
            device=device,
            step_size=a.step_size,
            disable_tta=a.disable_tta,
            save_probabilities=a.save_probabilities,
            npp=a.npp,
            nps=a.nps,
            verbose=a.verbose,
        )
