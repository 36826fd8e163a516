"""Tracer uptake: SUV per tissue for FDG and PSMA, lesion SUVs, low-frequency texture.

Ranges are published normal-organ SUVs (FDG about 60 min p.i., SUVbw; 68Ga-PSMA-11).
Each case draws one SUV per tissue uniformly (log-uniformly for the wide urine ranges) from its profile.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from seganypet_nnunet.synthetic.anatomy import Tissue


@dataclass(frozen=True)
class TracerProfile:
    """SUV ranges of one tracer.

    Attributes:
        ranges: tissue name -> (low, high) SUV; ``BRAIN_WM`` and ``NECROSIS`` are ratios to GM and muscle.
        log_uniform: tissue names drawn log-uniformly (urine: wide, skewed ranges).
        hot_myocardium: probability that FDG myocardium is non-suppressed (drawn from ``myocardium_hot``).
        myocardium_hot: (low, high) SUV of non-suppressed myocardium.
        lesion_median / lesion_sigma / lesion_range: log-normal lesion SUV (median, sigma of log), clipped.
    """

    ranges: dict[str, tuple[float, float]]
    log_uniform: tuple[str, ...]
    hot_myocardium: float
    myocardium_hot: tuple[float, float]
    lesion_median: float
    lesion_sigma: float
    lesion_range: tuple[float, float]


FDG = TracerProfile(
    ranges={
        "FAT": (0.25, 0.45),
        "MUSCLE": (0.6, 0.95),
        "BONE": (0.4, 0.7),
        "MARROW": (1.0, 1.8),
        "BRAIN_GM": (8.0, 11.0),
        "BRAIN_WM": (0.3, 0.4),
        "MYOCARDIUM": (1.5, 3.0),
        "BLOOD": (1.5, 2.0),
        "LIVER": (1.9, 2.5),
        "SPLEEN": (1.6, 2.1),
        "KIDNEY_CORTEX": (2.0, 3.5),
        "KIDNEY_PELVIS": (5.0, 30.0),
        "BLADDER": (8.0, 40.0),
        "LUNG": (0.4, 0.7),
        "SALIVARY": (2.0, 3.5),
        "NECROSIS": (0.3, 0.6),
    },
    log_uniform=("KIDNEY_PELVIS", "BLADDER"),
    hot_myocardium=0.5,
    myocardium_hot=(4.0, 12.0),
    lesion_median=5.5,
    lesion_sigma=0.55,
    lesion_range=(2.0, 20.0),
)

PSMA = TracerProfile(
    ranges={
        "FAT": (0.1, 0.3),
        "MUSCLE": (0.3, 0.6),
        "BONE": (0.3, 0.6),
        "MARROW": (0.6, 1.2),
        "BRAIN_GM": (0.2, 0.5),
        "BRAIN_WM": (0.6, 0.8),
        "MYOCARDIUM": (1.2, 2.0),
        "BLOOD": (1.2, 2.0),
        "LIVER": (4.0, 7.0),
        "SPLEEN": (5.0, 9.0),
        "KIDNEY_CORTEX": (30.0, 50.0),
        "KIDNEY_PELVIS": (20.0, 60.0),
        "BLADDER": (20.0, 80.0),
        "LUNG": (0.3, 0.5),
        "SALIVARY": (11.0, 17.0),
        "NECROSIS": (0.3, 0.6),
    },
    log_uniform=("KIDNEY_PELVIS", "BLADDER"),
    hot_myocardium=0.0,
    myocardium_hot=(1.2, 2.0),
    lesion_median=9.0,
    lesion_sigma=0.6,
    lesion_range=(3.0, 40.0),
)

PROFILES: dict[str, TracerProfile] = {"fdg": FDG, "psma": PSMA}


def sample_tissue_suv(profile: TracerProfile, rng: np.random.Generator) -> dict[str, float]:
    """One SUV per tissue name (absolute values; ratios resolved). AIR, LESION get 0 (lesions are painted apart)."""
    suv = {"AIR": 0.0, "LESION": 0.0}
    for name, (lo, hi) in profile.ranges.items():
        suv[name] = float(
            np.exp(rng.uniform(np.log(lo), np.log(hi))) if name in profile.log_uniform else rng.uniform(lo, hi)
        )
    if rng.random() < profile.hot_myocardium:
        suv["MYOCARDIUM"] = float(rng.uniform(*profile.myocardium_hot))
    suv["BRAIN_WM"] *= suv["BRAIN_GM"]
    suv["NECROSIS"] *= suv["MUSCLE"]
    return suv


def sample_lesion_suv(profile: TracerProfile, rng: np.random.Generator) -> float:
    """Lesion SUVmean: log-normal (median ``lesion_median``) clipped to ``lesion_range``."""
    value = profile.lesion_median * np.exp(rng.normal(0.0, profile.lesion_sigma))
    return float(np.clip(value, *profile.lesion_range))


def activity_map(tissue: np.ndarray, tissue_suv: dict[str, float], lesion_suv: np.ndarray) -> np.ndarray:
    """Noiseless, unblurred SUV (float32, array order (z, y, x)) from tissue ids and per-voxel lesion SUV.

    Args:
        tissue: uint8 ``Tissue`` ids, shape (z, y, x).
        tissue_suv: SUV per ``Tissue`` name.
        lesion_suv: float32 (z, y, x); voxels > 0 are lesion tissue and take this value.
    """
    table = np.zeros(256, np.float32)
    for t in Tissue:
        table[int(t)] = tissue_suv.get(t.name, 0.0)
    suv = table[tissue]
    lesion = lesion_suv > 0
    suv[lesion] = lesion_suv[lesion]
    return suv


def texture_field(shape_zyx: tuple[int, int, int], cov: float, rng: np.random.Generator) -> np.ndarray:
    """Multiplicative low-frequency texture ``1 + cov * g`` (float32, shape (z, y, x)); g smooth, unit std.

    The random field is drawn on a grid 6 times coarser than the image and linearly upsampled (about 3 cm
    correlation length at 4 mm voxels). Clipped at 0.5 so uptake never changes sign.
    """
    if cov <= 0:
        return np.ones(shape_zyx, np.float32)
    coarse_shape = tuple(max(3, s // 6 + 2) for s in shape_zyx)
    coarse = ndimage.gaussian_filter(rng.standard_normal(coarse_shape), 1.0)
    coarse = (coarse - coarse.mean()) / max(coarse.std(), 1e-6)
    zoom = [s / c for s, c in zip(shape_zyx, coarse_shape, strict=True)]
    field = ndimage.zoom(coarse.astype(np.float32), zoom, order=1, mode="nearest", grid_mode=True)
    field = field[: shape_zyx[0], : shape_zyx[1], : shape_zyx[2]]
    return np.maximum(1.0 + cov * field, 0.5).astype(np.float32)
