"""autoPET IV-style click JSONs for cases that have none (synthetic test sets): 10 tumour + 10 background clicks.

Follows the challenge's simulator in spirit (reference/pet_data_and_tools.md §1.2); arrays are (z, y, x), clicks are
written in original voxel (i, j, k) = reversed array index, the autoPET JSON convention for NIfTI files.
- Tumour clicks: lesion components (26-connectivity) largest first; click i < number of components sits at that
  component's interior-most voxel (EDT maximum in mm; ties to the tied voxel nearest their centroid). The budget
  left over is filled with random BORDER voxels (a face neighbour outside the lesion) of the components, cycling
  largest first, as the challenge fills with boundary clicks. A lesion-free case gets no tumour click.
- Background clicks: "hot spots" = voxels above the ``hot_percentile`` (99.75) of the body (PET > 0) uptake, outside
  the lesions dilated by one voxel; their components (26-connectivity) largest first, each clicked at its EDT maximum.
  The budget left over is filled with random body voxels outside the dilated lesions.
Random choices use the given ``np.random.Generator``, so a seed fixes the file.
"""

from __future__ import annotations

from typing import Sequence

import cc3d
import numpy as np
from scipy import ndimage

N_CLICKS = 10
HOT_PERCENTILE = 99.75


def _components_largest_first(mask: np.ndarray) -> list[np.ndarray]:
    labels = cc3d.connected_components(mask, connectivity=26)
    counts = np.bincount(labels.ravel())[1:]
    order = np.argsort(-counts, kind="stable")
    return [labels == (i + 1) for i in order]


def _innermost(component: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    dist = ndimage.distance_transform_edt(np.pad(component, 1), sampling=spacing)[1:-1, 1:-1, 1:-1]
    tied = np.argwhere(dist == dist.max())
    return tied[int(np.argmin(((tied - tied.mean(axis=0)) ** 2).sum(axis=1)))]


def _ijk(zyx: np.ndarray) -> list[int]:
    return [int(c) for c in zyx[::-1]]


def simulate_autopet_clicks(
    lesions: np.ndarray,
    pet: np.ndarray,
    spacing_zyx: Sequence[float],
    rng: np.random.Generator,
    *,
    n_tumour: int = N_CLICKS,
    n_background: int = N_CLICKS,
    hot_percentile: float = HOT_PERCENTILE,
) -> dict[str, list[list[int]]]:
    """Tumour and background clicks of one case (module docstring).

    Args:
        lesions: (z, y, x) bool lesion mask.
        pet: (z, y, x) PET (SUV), same shape.
        spacing_zyx: voxel size in mm, (z, y, x).
        rng: seeded generator for the fill-in clicks.
        n_tumour / n_background: click budgets.
        hot_percentile: body-uptake percentile above which a voxel is a background hot spot.

    Returns:
        ``{"tumor": [[i, j, k], ...], "background": [[i, j, k], ...]}`` (the autoPET IV repository form).
    """
    lesions, pet = np.asarray(lesions, bool), np.asarray(pet, float)
    if lesions.shape != pet.shape or lesions.ndim != 3:
        raise ValueError(f"simulate_autopet_clicks: lesions {lesions.shape} and pet {pet.shape} must be equal 3D")
    tumour: list[list[int]] = []
    comps = _components_largest_first(lesions) if lesions.any() else []
    for comp in comps[:n_tumour]:
        tumour.append(_ijk(_innermost(comp, spacing_zyx)))
    k = 0
    while comps and len(tumour) < n_tumour:
        comp = comps[k % len(comps)]
        border = np.argwhere(comp & ~ndimage.binary_erosion(comp, border_value=0))
        tumour.append(_ijk(border[rng.integers(len(border))]))
        k += 1
    body = pet > 0
    outside = body & ~ndimage.binary_dilation(lesions, structure=np.ones((3, 3, 3), bool))
    background: list[list[int]] = []
    if outside.any():
        hot = outside & (pet > np.percentile(pet[body], hot_percentile))
        for comp in (_components_largest_first(hot) if hot.any() else [])[:n_background]:
            background.append(_ijk(_innermost(comp, spacing_zyx)))
        candidates = np.argwhere(outside)
        while len(background) < n_background:
            background.append(_ijk(candidates[rng.integers(len(candidates))]))
    return {"tumor": tumour, "background": background}
