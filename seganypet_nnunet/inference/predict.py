"""``seganypet_predict``: nnUNetv2_predict's flags and outputs; with ``--prompts`` the promptable path.

Automatic mode (no ``--prompts``) runs nnU-Net's own ``nnUNetPredictor`` after ``manual_initialization`` with our
network (no trainer lookup by name): same files as ``nnUNetv2_predict`` (CASE.nii.gz, dataset.json, plans.json,
predict_from_raw_data_args.json, and CASE.npz/.pkl with ``--save_probabilities``). Prompted mode runs
``SegAnyPETSession`` per case and named target and writes ``CASE.nii.gz`` (label map, ids 1..K in target order, later
targets win overlaps) + ``CASE.json`` (``{"labels": {"1": "name", ...}}``), or ``CASE__<target>.nii.gz`` per target.
Everything is validated before anything is written (images: readable, 3D, not truncated, finite, not all zero, the
model's channels; prompts; -o), and each run's files appear in OUT only when all succeeded. Runs stage into a hidden
sibling of OUT (``.OUT.seganypet-<pid>.*``, removed on failure, on SIGTERM and, after ``kill -9``, by the next run)
and publish under a lock, so two runs into one OUT never mix one run's label map with another's JSON; a label map
published without a JSON removes a stale ``CASE.json``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from seganypet_nnunet import io_utils
from seganypet_nnunet.errors import SeganypetError, as_user_error, cli_entry
from seganypet_nnunet.inference import split
from seganypet_nnunet.inference.model_folder import load_model_folder
from seganypet_nnunet.validation import check_device, check_output_folder, scan_input_folder


def input_cases(input_folder: str | Path, file_ending: str, n_channels: int) -> dict[str, list[str]]:
    """``{case: [channel files]}`` of an nnU-Net input folder (``CASE_XXXX<ending>``), every image checked.

    Raises:
        SeganypetError: see ``validation.scan_input_folder`` (one line naming the file).
    """
    return scan_input_folder(input_folder, file_ending, n_channels)


@contextlib.contextmanager
def staging_folder(output_folder: Path) -> Iterator[Path]:
    """A hidden, pid-tagged staging folder beside ``output_folder``; always removed afterwards (stale ones too).

    Errors raised inside name ``output_folder`` instead of the staging folder."""
    output_folder.parent.mkdir(parents=True, exist_ok=True)
    io_utils.remove_stale(output_folder.parent)
    staging = Path(tempfile.mkdtemp(prefix=io_utils.temp_prefix(output_folder.name), dir=output_folder.parent))
    try:
        yield staging
    except SeganypetError as err:  # name the user's output folder, never the hidden staging copy
        message = str(err).replace(str(staging / io_utils.TMP_DIR), str(output_folder))
        raise type(err)(message.replace(str(staging), str(output_folder))) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _staged_bytes(staging: Path) -> int:
    """Bytes the staged files need: for NIfTI label maps the uncompressed size their header states (an upper bound of
    what a short write could not store), else their size."""
    from seganypet_nnunet.validation import nifti_data_end

    total = 0
    for f in staging.iterdir():
        end = nifti_data_end(f) if f.is_file() else None
        total += end if end is not None else (f.stat().st_size if f.is_file() else 0)
    return total


def _output_bytes(cases: dict[str, list[str]], save_probabilities: bool = False, n_labels: int = 2) -> int:
    """Upper bound of the bytes automatic prediction writes: an uncompressed uint8 map per case (+ float16
    probabilities per label with ``save_probabilities``) and 64 KiB of JSON."""
    import SimpleITK as sitk

    total = 1 << 16
    for files in cases.values():
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(files[0]))
        reader.ReadImageInformation()
        voxels = int(np.prod(reader.GetSize()))
        total += voxels * (1 + (2 * n_labels if save_probabilities else 0)) + 352
    return total


def _publish(staging: Path, output_folder: Path, file_ending: str) -> None:
    """Move every staged file into ``output_folder`` (created if needed) under an exclusive lock; called only after the
    whole run succeeded, and only once every staged file reads back complete (``io_utils.verify_written``: a full
    disk is one ``OutOfSpaceError`` line naming ``output_folder``, and nothing is published). Per case the JSON goes
    in before the label map; a label map without a JSON removes a stale ``CASE.json`` of an earlier prompted run."""
    with io_utils.space_errors(output_folder, _staged_bytes(staging)):
        for f in staging.iterdir():
            if f.is_file():
                io_utils.verify_written(f)
        output_folder.mkdir(parents=True, exist_ok=True)
    lock = output_folder.parent / f".{output_folder.name}.seganypet-lock"
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            files = sorted(staging.iterdir(), key=lambda f: (not f.name.endswith(".json"), f.name))
            names = {f.name for f in files}
            for f in files:
                if f.name.endswith(file_ending) and "__" not in f.name:
                    stale = f.name[: -len(file_ending)] + ".json"
                    if stale not in names:
                        (output_folder / stale).unlink(missing_ok=True)
                os.replace(f, output_folder / f.name)
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


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
    trust_checkpoint: bool = False,
    num_parts: int = 1,
    part_id: int = 0,
    continue_prediction: bool = False,
    prev_stage_predictions: str | Path | None = None,
) -> None:
    """nnU-Net automatic prediction of the cases in ``input_folder`` (folds ensembled, nnU-Net's outputs).

    ``num_parts`` / ``part_id`` / ``continue_prediction`` / ``prev_stage_predictions``: nnUNetv2_predict's flags
    (``seganypet_nnunet.inference.split``).

    Raises:
        SeganypetError / CheckpointError: a bad input, setting or checkpoint (before any prediction).
    """
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    if not (isinstance(step_size, (int, float)) and 0 < step_size <= 1):
        raise SeganypetError(f"-step_size {step_size}: must be in (0, 1] (fraction of the patch size)")
    for flag, value in (("-npp", npp), ("-nps", nps)):
        if not isinstance(value, int) or value < 0:
            raise SeganypetError(f"{flag} {value}: must be a whole number >= 0 (0 = in this process)")
    output_folder = check_output_folder(output_folder, {"-i": input_folder})
    check_device(device)
    m = load_model_folder(model_folder, folds, checkpoint, trusted=trust_checkpoint)
    if getattr(m.network, "prompt_only", False):
        raise SeganypetError(
            f"{model_folder}: {type(m.network).__name__} is prompt-only (no automatic mode); pass --prompts FILE"
        )
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
    needed = _output_bytes(cases, save_probabilities, len(m.dataset_json["labels"]))
    with io_utils.space_errors(output_folder, needed), staging_folder(output_folder) as staging:
        inputs = [cases[c] for c in cases]
        outputs = [str(staging / c) for c in cases]
        if npp == 0 and nps == 0:
            predictor.predict_from_files_sequential(inputs, outputs, save_probabilities, True, prev)
        else:
            predictor.predict_from_files(
                inputs,
                outputs,
                save_probabilities=save_probabilities,
                num_processes_preprocessing=max(npp, 1),
                num_processes_segmentation_export=max(nps, 1),
                folder_with_segs_from_prev_stage=prev,
            )
        _publish(staging, output_folder, ending)


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
    trust_checkpoint: bool = False,
    num_parts: int = 1,
    part_id: int = 0,
    continue_prediction: bool = False,
) -> list[Path]:
    """Prompted segmentation of the cases named in ``prompts_file``; returns the files written.

    ``num_parts`` / ``part_id`` / ``continue_prediction``: nnUNetv2_predict's flags over the prompt file's cases.

    Raises:
        PromptFileError: malformed prompt file, unknown case, prompt outside its image, more points than the model
            accepts, a target with only negative points (nothing is written).
        SeganypetError / CheckpointError: a bad input image, setting or checkpoint (before any prediction).
    """
    from seganypet_nnunet.inference.session import SegAnyPETSession
    from seganypet_nnunet.prompts.prompt_file import check_point_count, load_prompt_file

    output_folder = check_output_folder(output_folder, {"-i": input_folder})
    check_device(device)
    m = load_model_folder(model_folder, folds, checkpoint, trusted=trust_checkpoint)
    ending = m.dataset_json["file_ending"]
    cases = input_cases(input_folder, ending, len(m.dataset_json["channel_names"]))
    prompts = load_prompt_file(prompts_file, cases)  # validates everything before any work
    max_points = getattr(getattr(m.network, "config", None), "max_points", None)
    if max_points is not None:
        check_point_count(prompts, int(max_points), str(prompts_file))
    prompts = split.select_part(prompts, num_parts, part_id)
    if continue_prediction:
        names = {c: [t.name for t in ts] for c, ts in prompts.items()}
        outputs = {c: split.prompted_outputs(c, ending, names[c], per_target_files) for c in prompts}
        prompts = split.pending(prompts, output_folder, outputs)
    session = SegAnyPETSession(m, device=device)
    with io_utils.space_errors(output_folder), staging_folder(output_folder) as staging:
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
        _publish(staging, output_folder, ending)
    return written


@cli_entry("seganypet_predict")
def predict_entry(argv: list[str] | None = None) -> None:
    """``seganypet_predict``: nnUNetv2_predict's grammar; ``--prompts FILE`` switches to promptable inference."""
    import argparse

    from seganypet_nnunet.cli_args import (
        add_device_argument,
        add_model_arguments,
        add_model_folder_argument,
        add_trust_checkpoint_argument,
        device_from_args,
        parse_folds,
        require_model_choice,
        resolve_model_folder,
    )

    p = argparse.ArgumentParser(description="SegAnyPET prediction (nnUNetv2_predict flags; --prompts for prompts)")
    p.add_argument("-i", required=True, help="[REQUIRED] input folder (CASE_0000.nii.gz ...)")
    p.add_argument("-o", required=True, help="[REQUIRED] output folder")
    add_model_arguments(p, dataset_required=False, default_folds=["0", "1", "2", "3", "4"])
    add_model_folder_argument(p)
    p.add_argument("--prompts", default=None, help="[OPTIONAL] prompt JSON (our schema or an autoPET IV click file)")
    p.add_argument("--per_target_files", action="store_true", help="[OPTIONAL] prompted: one file per target")
    add_device_argument(p)
    p.add_argument("--save_probabilities", action="store_true", help="[OPTIONAL] also write .npz/.pkl (automatic)")
    p.add_argument("-step_size", type=float, default=0.5, help="[OPTIONAL] sliding-window step. Default: 0.5")
    p.add_argument("--disable_tta", action="store_true", help="[OPTIONAL] no mirroring test-time augmentation")
    p.add_argument("-npp", type=int, default=3, help="[OPTIONAL] preprocessing processes. Default: 3")
    p.add_argument("-nps", type=int, default=3, help="[OPTIONAL] export processes. Default: 3")
    p.add_argument("--verbose", action="store_true", help="[OPTIONAL] talk more; tracebacks for errors")
    add_trust_checkpoint_argument(p)
    p.add_argument("-num_parts", type=int, default=1, help="[OPTIONAL] split the cases into this many parts")
    p.add_argument("-part_id", type=int, default=0, help="[OPTIONAL] which part (0..num_parts-1) this run does")
    p.add_argument("--continue_prediction", action="store_true", help="[OPTIONAL] skip cases with valid outputs")
    p.add_argument("-prev_stage_predictions", default=None, help="[OPTIONAL] previous stage folder (cascades)")
    a = p.parse_args(argv)
    require_model_choice(p, a)
    with as_user_error("-f"):
        folds = parse_folds(a.f)
    split.select_part({}, a.num_parts, a.part_id)  # flag errors before loading the model
    check_output_folder(a.o, {"-i": a.i})
    device = device_from_args(a).type  # nnUNetv2_predict's thread settings; one line if the device is missing
    if a.prompts and not Path(a.prompts).is_file():
        from seganypet_nnunet.prompts.prompt_file import PromptFileError

        problem = "is a folder, expected a prompt JSON file" if Path(a.prompts).is_dir() else "file not found"
        raise PromptFileError(f"{a.prompts}: --prompts {problem}")
    model = resolve_model_folder(a)
    common = dict(
        folds=folds,
        checkpoint=a.chk,
        device=device,
        trust_checkpoint=a.trust_checkpoint,
        num_parts=a.num_parts,
        part_id=a.part_id,
        continue_prediction=a.continue_prediction,
    )
    if a.prompts:
        predict_prompted(model, a.i, a.o, a.prompts, per_target_files=a.per_target_files, **common)
    else:
        predict_automatic(
            model,
            a.i,
            a.o,
            step_size=a.step_size,
            disable_tta=a.disable_tta,
            save_probabilities=a.save_probabilities,
            npp=a.npp,
            nps=a.nps,
            verbose=a.verbose,
            prev_stage_predictions=a.prev_stage_predictions,
            **common,
        )
