"""``seganypet_evaluate --reference_methods``: what a PET reader gets in seconds from the SAME first click the model
gets, scored per target next to the model (regions: ``prompts/pet_regions.py``).

Methods (each keeps the 26-connected component that holds its seed; local SUVmax = max within 15 mm of the click):

- ``suvmax41_click`` / ``suvmax50_click``: SUV >= 41 % / 50 % of the local SUVmax, grown from the click;
- ``suvmax41_hottest`` / ``suvmax50_hottest``: the same thresholds grown from the local-SUVmax voxel;
- ``suv2.5`` / ``suv4.0``: absolute SUV >= 2.5 / 4.0 grown from the click;
- ``percist_liver``: SUV >= 1.5 x liver mean + 2 x liver SD (PERCIST), grown from the click; the liver is the
  reference label named ``liver`` when the dataset has one, else a 3-cm sphere VOI centred at the case's entry of
  ``-liver_voi`` (a JSON ``{case: [x, y, z]}`` in world mm LPS); without either the method is ``None`` for that case;
- ``oracle_fraction``: the best Dice over fractions 0.05, 0.10, ..., 0.95 of the local SUVmax and both seeds, chosen
  per target WITH the reference (an upper bound for any fixed-fraction threshold, not a method a reader can run).

The image is the case's first channel, read as SUV (the converters write SUV; ``seganypet_dicom_to_suv``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import SimpleITK as sitk

from seganypet_nnunet.evaluation.metrics import dice
from seganypet_nnunet.prompts import pet_regions as R

#: the methods a reader can run, in table order (``oracle_fraction`` is reported after them)
METHODS = (
    "suvmax41_click",
    "suvmax41_hottest",
    "suvmax50_click",
    "suvmax50_hottest",
    "suv2.5",
    "suv4.0",
    "percist_liver",
)
ORACLE = "oracle_fraction"
ORACLE_FRACTIONS = tuple(round(0.05 * k, 2) for k in range(1, 20))
#: recorded as ``summary["settings"]["reference_methods"]``
SETTINGS = {
    "methods": list(METHODS),
    "oracle": f"{ORACLE}: best Dice over fractions {ORACLE_FRACTIONS[0]}..{ORACLE_FRACTIONS[-1]} of the local SUVmax "
    "and both seeds, chosen per target with the reference",
    "seed": "the model's first click of the target",
    "local_max_radius_mm": R.LOCAL_MAX_RADIUS_MM,
    "liver_voi_radius_mm": R.LIVER_VOI_RADIUS_MM,
    "connectivity": 26,
}


def liver_mask(
    ref_zyx: np.ndarray,
    labels: Mapping[str, int],
    image: sitk.Image,
    voi_world: Sequence[float] | None,
    spacing_zyx: Sequence[float],
) -> np.ndarray | None:
    """PERCIST's liver VOI for one case: the ``liver`` label if present, else a 3-cm sphere at ``voi_world``
    (world mm LPS (x, y, z)), else None. Bool (z, y, x)."""
    value = next((v for n, v in labels.items() if n.lower() == "liver" and isinstance(v, int)), None)
    if value is not None and (ref_zyx == value).any():
        return ref_zyx == value
    if voi_world is None:
        return None
    ijk = image.TransformPhysicalPointToContinuousIndex([float(c) for c in voi_world])
    return R.sphere_voi(ref_zyx.shape, ijk[::-1], spacing_zyx)


def reference_regions(
    suv_zyx: np.ndarray,
    seed_zyx: Sequence[float],
    spacing_zyx: Sequence[float],
    liver_threshold: float | None,
) -> dict[str, np.ndarray | None]:
    """Each method's bool (z, y, x) region from one click at array index ``seed_zyx`` (None: no liver VOI)."""
    out: dict[str, np.ndarray | None] = {}
    for pct in (41, 50):
        for hottest in (False, True):
            key = f"suvmax{pct}_{'hottest' if hottest else 'click'}"
            out[key] = R.fraction_region(suv_zyx, seed_zyx, spacing_zyx, pct / 100, from_hottest=hottest)
    for threshold in (2.5, 4.0):
        out[f"suv{threshold}"] = R.absolute_region(suv_zyx, seed_zyx, threshold)
    out["percist_liver"] = None if liver_threshold is None else R.absolute_region(suv_zyx, seed_zyx, liver_threshold)
    return out


def oracle_fraction(
    suv_zyx: np.ndarray, seed_zyx: Sequence[float], spacing_zyx: Sequence[float], ref_zyx: np.ndarray
) -> tuple[float, float, str]:
    """Best Dice over ``ORACLE_FRACTIONS`` of the local SUVmax, both seeds: ``(dice, fraction, "click"|"hottest")``."""
    peak = R.local_max(suv_zyx, seed_zyx, spacing_zyx)
    best = (0.0, ORACLE_FRACTIONS[0], "click")
    for fraction in ORACLE_FRACTIONS:
        candidate = suv_zyx >= fraction * peak.value
        for name, start in (("click", seed_zyx), ("hottest", peak.index)):
            score = dice(R.grow(candidate, start), ref_zyx)
            if score > best[0]:
                best = (score, fraction, name)
    return best


def score_reference_methods(
    suv_zyx: np.ndarray,
    seed_zyx: Sequence[float],
    spacing_zyx: Sequence[float],
    ref_zyx: np.ndarray,
    liver_threshold: float | None,
) -> dict:
    """Dice of every method (and the oracle) for one target clicked at array index ``seed_zyx`` (z, y, x).

    Returns:
        ``{method: dice or None, "oracle_fraction": dice, "oracle_choice": {"fraction", "seed"}}``.
    """
    regions = reference_regions(suv_zyx, seed_zyx, spacing_zyx, liver_threshold)
    out: dict = {k: None if m is None else dice(m, ref_zyx) for k, m in regions.items()}
    best, fraction, seed = oracle_fraction(suv_zyx, seed_zyx, spacing_zyx, ref_zyx)
    out[ORACLE] = best
    out["oracle_choice"] = {"fraction": fraction, "seed": seed}
    return out


def read_suv(image_file: Path) -> tuple[np.ndarray, sitk.Image]:
    """The case's first channel as a float32 (z, y, x) SUV array and its image (geometry)."""
    image = sitk.ReadImage(str(image_file))
    return sitk.GetArrayFromImage(image).astype(np.float32), image


def best_method(means: Mapping[str, float | None]) -> tuple[str | None, float | None]:
    """The best reader method (``METHODS``, the oracle excluded) of one structure's mean Dice values."""
    scored = [(v, k) for k in METHODS if (v := means.get(k)) is not None]
    if not scored:
        return None, None
    value, name = max(scored)
    return name, value


def case_scorer(
    image_file: Path,
    ref_zyx: np.ndarray,
    labels: Mapping[str, int],
    voi_world: Sequence[float] | None,
    spacing_zyx: Sequence[float],
):
    """``score(target_mask (z, y, x) bool, seed (z, y, x) array index) -> dict`` for one case (its SUV read once)."""
    suv, image = read_suv(image_file)
    liver = liver_mask(ref_zyx, labels, image, voi_world, spacing_zyx)
    threshold = None if liver is None else R.liver_threshold(suv, liver)

    def score(mask_zyx: np.ndarray, seed_zyx: Sequence[float]) -> dict:
        return score_reference_methods(suv, seed_zyx, spacing_zyx, mask_zyx, threshold)

    return score
