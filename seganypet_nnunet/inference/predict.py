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
from seganypet_nnunet.inference import split
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
    folds: Sequence[int | str] = (0,),
    checkpoint: str = "checkpoint_final.pth",
    device: str = "cpu",
    step_size: float = 0.5,
    disable_tta: bool = False,
    save_probabilities: bool = False,
    npp: int = 3,
    nps: int = 3,
    verbose: bool = False,
    num_parts: int = 1,
    part_id: int = 0,
    continue_prediction: bool = False,
    prev_stage_predictions: str | Path | None = None,
) -> None:
    """nnU-Net automatic prediction of the cases in ``input_folder`` (folds ensembled, nnU-Net's outputs).

    ``num_parts`` / ``part_id`` / ``continue_prediction`` / ``prev_stage_predictions``: nnUNetv2_predict's flags
    (``seganypet_nnunet.inference.split``).
    """
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    m = load_model_folder(model_folder, folds, checkpoint)
    ending = m.dataset_json["file_ending"]
    cases = split.select_part(
        input_cases(input_folder, ending, len(m.dataset_json["channel_names"])), num_parts, part_id
    )
    split.check_prev_stage(
        prev_stage_predictions, list(cases), ending, m.configuration_manager.previous_stage_name is not None
    )
    if continue_prediction:
        cases = split.pending(
            cases, output_folder, {c: split.automatic_outputs(c, ending, save_probabilities) for c in cases}
        )
    if not cases:
        return
    prev = None if prev_stage_predictions is None else str(prev_stage_predictions)
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
        lists, outputs = list(cases.values()), [str(staging / c) for c in cases]
        if npp == 0 and nps == 0:
            predictor.predict_from_files_sequential(lists, outputs, save_probabilities, True, prev)
        else:
            predictor.predict_from_files(
                lists,
                outputs,
                save_probabilities=save_probabilities,
                num_processes_preprocessing=max(npp, 1),
                num_processes_segmentation_export=max(nps, 1),
                folder_with_segs_from_prev_stage=prev,
            )
        _publish(staging, output_folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def predict_prompted(
    model_folder: str | Path,
    input_folder: str | Path,
    output_folder: str | Path,
    prompts_file: str | Path,
    folds: Sequence[int | str] = (0,),
    checkpoint: str = "checkpoint_final.pth",
    device: str = "cpu",
    per_target_files: bool = False,
    num_parts: int = 1,
    part_id: int = 0,
    continue_prediction: bool = False,
) -> list[Path]:
    """Prompted segmentation of the cases named in ``prompts_file``; returns the files written.

    ``num_parts`` / ``part_id`` / ``continue_prediction``: nnUNetv2_predict's flags over the prompt file's cases.

    Raises:
        PromptFileError: malformed prompt file, unknown case, prompt outside its image (nothing is written).
    """
    from seganypet_nnunet.inference.session import SegAnyPETSession
    from seganypet_nnunet.prompts.prompt_file import load_prompt_file

    m = load_model_folder(model_folder, folds, checkpoint)
    ending = m.dataset_json["file_ending"]
    cases = input_cases(input_folder, ending, len(m.dataset_json["channel_names"]))
    prompts = load_prompt_file(prompts_file, cases)  # validates everything before any work
    prompts = split.select_part(prompts, num_parts, part_id)
    if continue_prediction:
        names = {c: [t.name for t in ts] for c, ts in prompts.items()}
        outputs = {c: split.prompted_outputs(c, ending, names[c], per_target_files) for c in prompts}
        prompts = split.pending(prompts, output_folder, outputs)
    session = SegAnyPETSession(m, device=device)
    output_folder = Path(output_folder)
    output_folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{output_folder.name}.", dir=output_folder.parent) as tmp:
        staging = Path(tmp)
        for case, targets in prompts.items():
            session.set_image(cases[case])
            for t in targets:
                session.new_target(t.name)
                for b in t.boxes:
                    session.add_box(b.min, b.max, space=b.space)
                for p in t.points:
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

    from seganypet_nnunet.cli_args import add_model_arguments, model_folder, parse_folds

    p = argparse.ArgumentParser(description="SegAnyPET prediction (nnUNetv2_predict flags; --prompts for prompts)")
    p.add_argument("-i", required=True, help="[REQUIRED] input folder (CASE_0000.nii.gz ...)")
    p.add_argument("-o", required=True, help="[REQUIRED] output folder")
    add_model_arguments(p, dataset_required=True, default_folds=["0", "1", "2", "3", "4"])
    p.add_argument("--prompts", default=None, help="[OPTIONAL] prompt JSON (our schema or an autoPET IV click file)")
    p.add_argument("--per_target_files", action="store_true", help="[OPTIONAL] prompted: one file per target")
    p.add_argument("-device", default="cuda", choices=["cpu", "cuda", "mps"], help="[OPTIONAL] device. Default: cuda")
    p.add_argument("--save_probabilities", action="store_true", help="[OPTIONAL] also write .npz/.pkl (automatic)")
    p.add_argument("-step_size", type=float, default=0.5, help="[OPTIONAL] sliding-window step. Default: 0.5")
    p.add_argument("--disable_tta", action="store_true", help="[OPTIONAL] no mirroring test-time augmentation")
    p.add_argument("-npp", type=int, default=3, help="[OPTIONAL] preprocessing processes. Default: 3")
    p.add_argument("-nps", type=int, default=3, help="[OPTIONAL] export processes. Default: 3")
    p.add_argument("--verbose", action="store_true", help="[OPTIONAL] talk more")
    p.add_argument("-num_parts", type=int, default=1, help="[OPTIONAL] split the cases into this many parts")
    p.add_argument("-part_id", type=int, default=0, help="[OPTIONAL] which part (0..num_parts-1) this run does")
    p.add_argument("--continue_prediction", action="store_true", help="[OPTIONAL] skip cases with valid outputs")
    p.add_argument("-prev_stage_predictions", default=None, help="[OPTIONAL] previous stage folder (cascades)")
    a = p.parse_args()
    split.check_device(a.device)
    split.select_part({}, a.num_parts, a.part_id)  # flag errors before loading the model
    folds = parse_folds(a.f)
    if a.device == "cpu":  # as nnUNetv2_predict
        import multiprocessing

        torch.set_num_threads(multiprocessing.cpu_count())
    model = model_folder(a)
    if a.prompts:
        predict_prompted(
            model,
            a.i,
            a.o,
            a.prompts,
            folds,
            a.chk,
            a.device,
            a.per_target_files,
            num_parts=a.num_parts,
            part_id=a.part_id,
            continue_prediction=a.continue_prediction,
        )
    else:
        predict_automatic(
            model,
            a.i,
            a.o,
            folds,
            a.chk,
            a.device,
            a.step_size,
            a.disable_tta,
            a.save_probabilities,
            a.npp,
            a.nps,
            a.verbose,
            num_parts=a.num_parts,
            part_id=a.part_id,
            continue_prediction=a.continue_prediction,
            prev_stage_predictions=a.prev_stage_predictions,
        )
