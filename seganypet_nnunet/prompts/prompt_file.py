"""Prompt JSON files: our schema ``seganypet-prompts/1`` and autoPET IV click JSON (via the converter's parser).

Schema::

    {"schema": "seganypet-prompts/1", "cases": {"CASE": {"targets": [{"name": "lesion",
        "points": [{"coord": [c0, c1, c2], "space": "voxel" | "world", "positive": true}],
        "boxes": [{"min": [...], "max": [...], "space": "voxel" | "world"}]}]}}}

``voxel`` = original voxel ITK index (i, j, k); ``world`` = mm LPS (x, y, z). ``load_prompt_file`` validates everything
it can without images; ``check_inside`` bounds-checks against each case's image geometry. Errors are ``PromptFileError``
with one line naming the file, case and field.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from seganypet_nnunet.errors import SeganypetError, reraise_as
from seganypet_nnunet.inference.coordinates import geometry_reference, inside_image, to_voxel
from seganypet_nnunet.validation import check_path_name, read_header

SCHEMA = "seganypet-prompts/1"
SPACES = ("voxel", "world")
#: A target name becomes part of an output file name (``CASE__<target>.nii.gz``).
TARGET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.+-]{0,63}$")
#: Prompt files are small; a bigger one is refused before parsing.
MAX_FILE_BYTES = 16 * 1024 * 1024


class PromptFileError(SeganypetError):
    """A prompt file is malformed or does not fit the input images (one line: file, case, field, problem)."""


@dataclass(frozen=True)
class PointPrompt:
    """One click; ``coord`` in ``space`` (voxel: original ITK index (i, j, k); world: mm LPS (x, y, z))."""

    coord: tuple[float, float, float]
    space: str
    positive: bool = True


@dataclass(frozen=True)
class BoxPrompt:
    """Axis-aligned box by inclusive corners in ``space`` (voxel (i, j, k) or world mm LPS (x, y, z))."""

    min: tuple[float, float, float]
    max: tuple[float, float, float]
    space: str


@dataclass
class TargetPrompts:
    """The prompts of one named target."""

    name: str
    points: list[PointPrompt] = field(default_factory=list)
    boxes: list[BoxPrompt] = field(default_factory=list)


def _coord(value, where: str) -> tuple[float, float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise PromptFileError(f"{where}: must be a list of 3 numbers, got {value!r}"[:300])
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        raise PromptFileError(f"{where}: must hold 3 finite numbers, got {value!r}"[:300])
    return tuple(float(v) for v in value)


def _space(entry: dict, where: str) -> str:
    space = entry.get("space", "voxel")
    if space not in SPACES:
        raise PromptFileError(f"{where}.space: must be one of {list(SPACES)}, got {space!r}")
    return space


def _require(entry, key: str, where: str):
    if not isinstance(entry, dict) or key not in entry:
        raise PromptFileError(f"{where}: missing field {key!r}")
    return entry[key]


def _list_field(entry: dict, key: str, where: str) -> list:
    value = entry.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list):
        raise PromptFileError(f"{where}.{key}: must be a list, got {type(value).__name__}")
    return value


def _parse_target(t, where: str, allow_negative_only: bool = False) -> TargetPrompts:
    name = _require(t, "name", where)
    with reraise_as(PromptFileError):
        check_path_name(name, field=f"{where}.name")
    if not isinstance(name, str) or not TARGET_NAME.match(name):
        raise PromptFileError(
            f"{where}.name: must be usable in a file name (letters, digits, space, '_', '.', '+', '-'; starting with a "
            f"letter or digit; at most 64 characters), got {name!r}"[:300]
        )
    points, boxes = [], []
    for i, p in enumerate(_list_field(t, "points", where)):
        w = f"{where}.points[{i}]"
        if not isinstance(p, dict):
            raise PromptFileError(f"{w}: must be an object with 'coord', got {type(p).__name__}")
        positive = p.get("positive", True)
        if not isinstance(positive, bool):
            raise PromptFileError(f"{w}.positive: must be true or false, got {positive!r}")
        points.append(PointPrompt(_coord(_require(p, "coord", w), f"{w}.coord"), _space(p, w), positive))
    for i, b in enumerate(_list_field(t, "boxes", where)):
        w = f"{where}.boxes[{i}]"
        if not isinstance(b, dict):
            raise PromptFileError(f"{w}: must be an object with 'min' and 'max', got {type(b).__name__}")
        lo, hi = _coord(_require(b, "min", w), f"{w}.min"), _coord(_require(b, "max", w), f"{w}.max")
        if any(a > c for a, c in zip(lo, hi, strict=True)):
            raise PromptFileError(f"{w}: min {list(lo)} exceeds max {list(hi)}")
        if _space(b, w) == "world" and any(a == c for a, c in zip(lo, hi, strict=True)):
            raise PromptFileError(f"{w}: zero-volume box (min {list(lo)} equals max {list(hi)} on an axis, world mm)")
        boxes.append(BoxPrompt(lo, hi, _space(b, w)))
    if not points and not boxes:
        raise PromptFileError(f"{where}: target {name!r} has no points and no boxes")
    if not boxes and not any(p.positive for p in points) and not allow_negative_only:
        raise PromptFileError(f"{where}: target {name!r} has only negative points (add a positive point or a box)")
    return TargetPrompts(name, points, boxes)


def check_point_count(prompts: dict[str, list[TargetPrompts]], max_points: int, source: str) -> None:
    """Every target has at most ``max_points`` points (the model's ``max_points``; more would only be dropped)."""
    for case, targets in prompts.items():
        for t in targets:
            if len(t.points) > max_points:
                raise PromptFileError(
                    f"{source}: case {case!r} target {t.name!r}: {len(t.points)} points, the model accepts at most "
                    f"{max_points}"
                )


def parse_prompt_document(
    doc, source: str = "<prompts>", *, allow_negative_only: bool = False
) -> dict[str, list[TargetPrompts]]:
    """Validated ``{case: [TargetPrompts, ...]}`` from a schema document (dict).

    A target with only negative points is an error in our schema; ``allow_negative_only`` accepts it for autoPET IV
    click files, where a case without lesion has only background clicks (its target is then written empty).
    """
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise PromptFileError(f"{source}: field 'schema' must be {SCHEMA!r}")
    cases = doc.get("cases")
    if not isinstance(cases, dict) or not cases:
        raise PromptFileError(f"{source}: field 'cases' must be a non-empty object")
    out = {}
    for case, entry in cases.items():
        targets = _require(entry, "targets", f"{source}: case {case!r}")
        if not isinstance(targets, list) or not targets:
            raise PromptFileError(f"{source}: case {case!r}: field 'targets' must be a non-empty list")
        parsed = [
            _parse_target(t, f"{source}: case {case!r} targets[{i}]", allow_negative_only)
            for i, t in enumerate(targets)
        ]
        names = [t.name for t in parsed]
        if len(set(names)) != len(names):
            raise PromptFileError(f"{source}: case {case!r}: duplicate target names {names}")
        out[str(case)] = parsed
    return out


def is_autopet_click_json(doc) -> bool:
    """True for either autoPET IV click form ({"tumor": ..., "background": ...} or grand-challenge "points")."""
    return (
        isinstance(doc, dict)
        and "schema" not in doc
        and (bool({"tumor", "background"} & set(doc)) or doc.get("type") == "Multiple points")
    )


def load_prompt_file(path: str | Path, case_images: dict[str, list[str]]) -> dict[str, list[TargetPrompts]]:
    """Reads and validates a prompt file against the input cases (names, fields, prompts inside the images).

    Args:
        path: our schema, or one autoPET IV click JSON (applies to the single input case, or to the case whose name
            the file name starts with, e.g. ``CASE_clicks.json``).
        case_images: ``{case: [channel files]}`` of the input folder.
    Raises:
        PromptFileError: unreadable JSON, malformed field, unknown case, prompt outside the image.
    """
    path = Path(path)
    if path.is_dir():
        raise PromptFileError(f"{path}: is a folder, expected a prompt JSON file")
    if not path.is_file():
        raise PromptFileError(f"{path}: prompt file not found")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise PromptFileError(f"{path}: prompt file larger than {MAX_FILE_BYTES // 2**20} MiB")
    try:
        doc = json.loads(path.read_text(), object_pairs_hook=_unique_keys)
    except _DuplicateKey as err:
        raise PromptFileError(f"{path}: {err}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise PromptFileError(f"{path}: unreadable prompt JSON ({err})") from None
    except RecursionError:
        raise PromptFileError(f"{path}: prompt JSON is nested too deeply") from None
    autopet = is_autopet_click_json(doc)
    if autopet:
        from seganypet_nnunet.dataset_conversion.autopet_clicks import parse_autopet_clicks

        case = _autopet_case(path, case_images)
        info = _image_info(case_images[case][0])
        try:
            doc = {"schema": SCHEMA, "cases": {case: parse_autopet_clicks(path, info)}}
        except ValueError as err:  # ConversionError is a ValueError subclass or not: re-raise as ours
            raise PromptFileError(f"{path}: case {case!r}: {err}") from None
    prompts = parse_prompt_document(doc, str(path), allow_negative_only=autopet)
    for case, targets in prompts.items():
        if case not in case_images:
            raise PromptFileError(f"{path}: case {case!r} does not exist in the input folder")
        check_inside(targets, _image_info(case_images[case][0]), f"{path}: case {case!r}")
    return prompts


class _DuplicateKey(Exception):
    """A JSON object with one key twice (``json`` would keep the last silently, e.g. dropping a case)."""


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    keys = [k for k, _ in pairs]
    seen = set()
    for k in keys:
        if k in seen:
            raise _DuplicateKey(f"key {k!r} appears twice in one object (a case or field given twice)")
        seen.add(k)
    return dict(pairs)


def _autopet_case(path: Path, case_images: dict[str, list[str]]) -> str:
    matches = [c for c in case_images if path.name.startswith(c)]
    if len(case_images) == 1:
        return next(iter(case_images))
    if len(matches) == 1:
        return matches[0]
    raise PromptFileError(f"{path}: autoPET click file matches no single input case (name it CASE_clicks.json)")


def _image_info(file: str) -> sitk.ImageFileReader:
    with reraise_as(PromptFileError):
        return read_header(file)


def check_inside(targets: list[TargetPrompts], info, where: str) -> None:
    """Every point and box corner must lie inside the image (``coordinates.inside_image``: [-0.5, size - 0.5]).

    ``info`` is a sitk.Image or a sitk.ImageFileReader after ReadImageInformation (geometry only).
    """
    ref = geometry_reference(info)
    size = np.array(info.GetSize(), float)

    def inside(coord, space: str) -> bool:
        return bool(inside_image(to_voxel(coord, space, ref), size))

    for t in targets:
        for i, p in enumerate(t.points):
            if not inside(p.coord, p.space):
                raise PromptFileError(
                    f"{where} target {t.name!r} points[{i}].coord {list(p.coord)} ({p.space}) "
                    f"lies outside the image (size i,j,k = {size.astype(int).tolist()})"
                )
        for i, b in enumerate(t.boxes):
            for key in ("min", "max"):
                if not inside(getattr(b, key), b.space):
                    raise PromptFileError(
                        f"{where} target {t.name!r} boxes[{i}].{key} ({b.space}) lies outside "
                        f"the image (size i,j,k = {size.astype(int).tolist()})"
                    )
