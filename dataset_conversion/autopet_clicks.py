"""autoPET IV click JSON → our prompt schema ``seganypet-prompts/1``.

autoPET IV ships clicks in two forms (``lab-midas/autoPETCTIV``, ``clicks`` folder)::

    {"tumor": [[i, j, k], ...], "background": [[i, j, k], ...]}                               # repository form
    {"version": {...}, "type": "Multiple points", "points": [{"point": [i, j, k], "name": "tumor"}]}  # grand-challenge

Their coordinates are voxel indices in nibabel array order of the PET/label grid. For a NIfTI file nibabel's data axes
are the file's voxel axes, which are exactly ITK's index order (i, j, k); so the values are kept unchanged as **original
voxel** coordinates (DESIGN.md), checked to lie in ``image`` by the one bounds rule (``prompts.bounds.inside_image``:
-0.5 <= c <= size - 0.5). ``tumor`` clicks become positive points, ``background`` clicks negative points of one target
named ``"lesion"``.

Schema written (read by ``seganypet_predict --prompts``)::

    {"schema": "seganypet-prompts/1", "cases": {"CASE": {"targets": [{"name": "lesion",
        "points": [{"coord": [i, j, k], "space": "voxel", "positive": true}, ...], "boxes": []}]}}}
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import SimpleITK as sitk

from seganypet_nnunet.dataset_conversion.common import ConversionError
from seganypet_nnunet.prompts.bounds import inside_image

CLICK_KINDS = {"tumor": True, "tumour": True, "lesion": True, "background": False}


def _point(coord, size: tuple[int, ...], path: Path, kind: str) -> dict:
    """Validate one (i, j, k) click against the image size (ITK order) and return a schema point."""
    if not isinstance(coord, (list, tuple)) or len(coord) != 3:
        raise ConversionError(f"{path}: {kind} click {coord!r} is not a list of 3 numbers")
    if not all(isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c) for c in coord):
        raise ConversionError(f"{path}: {kind} click {coord!r} is not a list of 3 finite numbers")
    if not inside_image(coord, size):
        raise ConversionError(f"{path}: {kind} click {list(coord)} lies outside the image (size i,j,k = {list(size)})")
    value = [int(c) if float(c).is_integer() else float(c) for c in coord]
    return {"coord": value, "space": "voxel", "positive": CLICK_KINDS[kind]}


def _clicks_from_json(data, path: Path) -> list[tuple[str, object]]:
    """(kind, coord) pairs from either autoPET IV form."""
    if isinstance(data, dict) and "points" in data:
        if not isinstance(data["points"], list):
            raise ConversionError(f"{path}: 'points' must be a list")
        pairs = []
        for entry in data["points"]:
            if not isinstance(entry, dict) or "point" not in entry or "name" not in entry:
                raise ConversionError(f"{path}: every entry of 'points' needs 'point' and 'name', got {entry!r}"[:200])
            pairs.append((str(entry["name"]).lower(), entry["point"]))
        return pairs
    if isinstance(data, dict) and set(data) & {"tumor", "background"}:
        pairs = []
        for kind, coords in data.items():
            if not isinstance(coords, list):
                raise ConversionError(f"{path}: {kind!r} must be a list of [i, j, k] clicks")
            pairs += [(str(kind).lower(), c) for c in coords]
        return pairs
    raise ConversionError(f"{path}: not an autoPET IV click file (expected 'tumor'/'background' lists or 'points')")


def parse_autopet_clicks(path: Path, image: sitk.Image | sitk.ImageFileReader) -> dict:
    """Parse an autoPET IV click JSON (either form) into one case entry of the prompt schema.

    Args:
        path: the click JSON.
        image: the PET (or label) image the clicks refer to; only its size (i, j, k) is used, to bound-check.
    Returns:
        ``{"targets": [{"name": "lesion", "points": [...], "boxes": []}]}``, points in original voxel space (i, j, k).
    Raises:
        ConversionError: unreadable/malformed JSON, unknown click name, or a click outside the image.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConversionError(f"{path}: unreadable click JSON ({err})") from None
    size = tuple(int(s) for s in image.GetSize())
    points = []
    for kind, coord in _clicks_from_json(data, path):
        if kind not in CLICK_KINDS:
            raise ConversionError(f"{path}: unknown click name {kind!r}; expected one of {sorted(CLICK_KINDS)}")
        points.append(_point(coord, size, path, kind))
    return {"targets": [{"name": "lesion", "points": points, "boxes": []}]}
