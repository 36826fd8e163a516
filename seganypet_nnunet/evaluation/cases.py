"""Evaluation cases: finding them in nnU-Net raw layout, checking every input before any work, reading a case, and
splitting its reference into targets (structures; lesions per instance). Arrays are (z, y, x), original geometry."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import cc3d
import numpy as np

from seganypet_nnunet import validation
from seganypet_nnunet.errors import InputNotFoundError, SeganypetError
from seganypet_nnunet.evaluation import summary as S


@dataclass(frozen=True)
class EvalCase:
    """One case in nnU-Net raw layout: ``images/CASE_0000<ending>`` (+``_0001``...), ``labels/CASE<ending>``."""

    case_id: str
    image_files: tuple[Path, ...]
    label_file: Path
    instance_file: Path | None = None


@dataclass(frozen=True, eq=False)
class EvalTarget:
    """One evaluation target: ``mask`` is a (z, y, x) bool array in the original geometry."""

    name: str
    structure: str
    label: int
    kind: str  # "class" | "instance"
    mask: np.ndarray


def find_cases(
    images_dir: Path,
    labels_dir: Path,
    instances_dir: Path | None = None,
    n_channels: int = 1,
    file_ending: str = ".nii.gz",
) -> list[EvalCase]:
    """Cases of an nnU-Net raw images folder, each with its reference (and instance map if a folder is given).

    Raises:
        FileNotFoundError: a folder is missing, it holds no cases, or a case lacks a channel/reference/instance file.
    """
    images_dir, labels_dir = Path(images_dir), Path(labels_dir)
    for folder in (images_dir, labels_dir, instances_dir):
        if folder is not None and not Path(folder).is_dir():
            raise InputNotFoundError(f"{folder}: folder not found")
    pattern = re.compile(r"^(.+)_(\d{4})" + re.escape(file_ending) + "$")
    ids = sorted({m.group(1) for f in images_dir.iterdir() if (m := pattern.match(f.name))})
    if not ids:
        raise InputNotFoundError(f"{images_dir}: no images named CASE_0000{file_ending}")
    cases = []
    for cid in ids:
        files = tuple(images_dir / f"{cid}_{c:04d}{file_ending}" for c in range(n_channels))
        for f in files:
            if not f.is_file():
                raise InputNotFoundError(f"{f}: case {cid}: missing image channel")
        label = labels_dir / f"{cid}{file_ending}"
        if not label.is_file():
            raise InputNotFoundError(f"{label}: case {cid}: missing reference")
        inst = None
        if instances_dir is not None:
            inst = Path(instances_dir) / f"{cid}{file_ending}"
            if not inst.is_file():
                raise InputNotFoundError(f"{inst}: case {cid}: missing instance map")
        cases.append(EvalCase(cid, files, label, inst))
    return cases


def structure_labels(labels: Mapping[str, int | Sequence[int]], target_names: Sequence[str] | None) -> dict[str, int]:
    """Foreground structures of a dataset.json ``labels`` dict (background/ignore dropped), optionally restricted.

    Raises:
        ValueError: a region label (list of values) among the evaluated ones, or an unknown name in ``target_names``.
    """
    out = {n: v for n, v in labels.items() if n not in ("background", "ignore")}
    if target_names:
        unknown = [n for n in target_names if n not in out]
        if unknown:
            raise SeganypetError(
                f"-targets: unknown structure name(s) {unknown}; dataset.json labels are {sorted(out)}"
            )
        out = {n: out[n] for n in target_names}
    for name, value in out.items():
        if not isinstance(value, int):
            raise SeganypetError(f"dataset.json label {name!r}: region labels {value} are not supported; use -targets")
    return out


def case_targets(
    ref: np.ndarray,
    instances: np.ndarray | None,
    structures: Mapping[str, int],
    lesion_names: Sequence[str],
) -> list[EvalTarget]:
    """Targets of one case: each present structure; lesion structures split per instance (map, else 26-conn CC).

    Args:
        ref: (z, y, x) integer reference label map.
        instances: (z, y, x) instance map (0 none, 1..K) or None.
        structures: structure name → label value.
        lesion_names: structure names (case-insensitive) split into instances.
    """
    lesion_set = {n.lower() for n in lesion_names}
    targets = []
    for name, value in structures.items():
        mask = ref == value
        if not mask.any():
            continue
        if name.lower() not in lesion_set:
            targets.append(EvalTarget(name, name, value, "class", mask))
            continue
        comps = instances * mask if instances is not None else cc3d.connected_components(mask, connectivity=26)
        for k in (int(v) for v in np.unique(comps) if v != 0):
            targets.append(EvalTarget(f"{name}_{k}", name, value, "instance", comps == k))
    return targets


def read_case(case: EvalCase) -> tuple[np.ndarray, np.ndarray | None, tuple[float, float, float]]:
    image = case.image_files[0]
    ref, spacing_zyx = S.read_label_array(case.label_file, f"case {case.case_id} reference", reference=image)
    inst = None
    if case.instance_file is not None:
        inst, _ = S.read_label_array(case.instance_file, f"case {case.case_id} instances", reference=image)
        if inst.shape != ref.shape:
            raise ValueError(
                f"case {case.case_id}: instance map {case.instance_file} shape {inst.shape} != reference {ref.shape}"
            )
    return ref, inst, spacing_zyx


def check_cases(
    cases: Sequence[EvalCase],
    labels: Mapping[str, int | Sequence[int]],
    pred_folders: Mapping[str, Path | None] | None = None,
    file_ending: str = ".nii.gz",
) -> None:
    """Every input checked before any work (one line naming the file): images readable, 3D, finite, not all zero, on
    one grid; reference and instance maps on the image's grid (physical space, not only the shape) with integer
    values (references: dataset.json labels); prediction folders (``{flag: folder}``) hold each case on that grid."""
    allowed = [v for v in labels.values() if isinstance(v, int)]
    for flag, folder in (pred_folders or {}).items():
        if folder is not None and not Path(folder).is_dir():
            raise InputNotFoundError(f"{folder}: {flag} folder not found")
    for case in cases:
        first = None
        for f in case.image_files:
            image = validation.read_checked_image(f)
            if first is None:
                first = (image, f)
            else:
                validation.check_same_grid(first[0], image, first[1], f)
        ref = validation.check_label_file(case.label_file, allowed, first[0], first[1])
        if case.instance_file is not None:
            inst = validation.read_header(case.instance_file, "instance map")
            validation.check_same_grid(ref, inst, case.label_file, case.instance_file)
        for folder in (pred_folders or {}).values():
            if folder is not None:
                validation.check_label_file(
                    Path(folder) / f"{case.case_id}{file_ending}", allowed, ref, case.label_file
                )
