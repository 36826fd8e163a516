"""Which training cases carry low-quality labels (read by the CPCL trainers, written by ``seganypet_make_synthetic``).

Two equivalent ways to mark cases, both next to / in the dataset's ``dataset.json``:

- a file ``low_quality_cases.json`` beside ``dataset.json``: a JSON list of case identifiers, e.g.
  ``["SYN000_BL", "SYN003_FU1"]``;
- a ``label_quality`` map inside ``dataset.json``: case identifier -> ``"low"`` or ``"high"`` (unlisted cases are
  high quality), e.g. ``"label_quality": {"SYN000_BL": "low"}``.

Both may be used together; a case is low quality if either marks it so, and a case marked ``"high"`` in the map but
listed in the file is an error. A name that matches no training case is an error naming the file and the case.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path

from seganypet_nnunet.errors import SeganypetError

LOW_QUALITY_FILE = "low_quality_cases.json"
LABEL_QUALITY_KEY = "label_quality"
QUALITIES = ("low", "high")


def _read_list(path: Path) -> list[str]:
    try:
        names = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise SeganypetError(f"{path}: cannot read the low-quality case list ({err})") from None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise SeganypetError(f"{path}: expected a JSON list of case identifiers (strings)")
    return names


def _map_entries(label_quality: object, source: str) -> dict[str, str]:
    if not isinstance(label_quality, dict):
        raise SeganypetError(f"{source}: '{LABEL_QUALITY_KEY}' must map case identifiers to 'low' or 'high'")
    for case, quality in label_quality.items():
        if quality not in QUALITIES:
            raise SeganypetError(f"{source}: {LABEL_QUALITY_KEY}[{case!r}] is {quality!r}, expected 'low' or 'high'")
    return dict(label_quality)


def low_quality_cases(
    *, dataset_json: dict, dataset_json_source: str, list_folders: Collection[Path], case_ids: Collection[str]
) -> frozenset[str]:
    """The low-quality case identifiers of one dataset (module docstring for the two forms).

    Args:
        dataset_json: the dataset's ``dataset.json`` content.
        dataset_json_source: its path, for error messages.
        list_folders: folders searched in order for ``low_quality_cases.json``; the first one holding it is read.
        case_ids: identifiers of every training case; any other name is an error.

    Returns:
        the low-quality identifiers (empty when neither form is present).

    Raises:
        SeganypetError: unreadable list, bad ``label_quality`` values, an unknown case, or a case marked both ways.
    """
    known = set(case_ids)
    low: dict[str, str] = {}
    listed: set[str] = set()
    for folder in list_folders:
        path = Path(folder) / LOW_QUALITY_FILE
        if path.is_file():
            for name in _read_list(path):
                low.setdefault(name, str(path))
                listed.add(name)
            break
    entries = _map_entries(dataset_json.get(LABEL_QUALITY_KEY, {}), dataset_json_source)
    for name, quality in entries.items():
        if quality == "low":
            low.setdefault(name, dataset_json_source)
        elif name in listed:
            raise SeganypetError(f"{dataset_json_source}: case {name!r} is 'high' here but listed as low quality")
    for name, source in low.items():
        if name not in known:
            raise SeganypetError(f"{source}: case {name!r} matches no training case")
    unknown_high = sorted(n for n, q in entries.items() if q == "high" and n not in known)
    if unknown_high:
        raise SeganypetError(f"{dataset_json_source}: case {unknown_high[0]!r} matches no training case")
    return frozenset(low)
