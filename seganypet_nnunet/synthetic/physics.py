"""Image formation: Gaussian PSF (partial-volume effect), Poisson-like noise, post-filter; CT-like HU image.

The total resolution is one isotropic Gaussian of the drawn FWHM (mm, spacing-aware): a PSF part is applied before
the noise and the post-filter part (``SyntheticConfig.noise_fwhm_mm``) after it, so the noise is spatially
correlated as in OSEM + post-filter reconstructions, and FWHM_psf^2 + FWHM_post^2 = FWHM^2.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from seganypet_nnunet.synthetic.anatomy import Tissue

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))  # 2.3548

#: Mean HU per tissue of the CT-like image.
CT_HU: dict[str, float] = {
    "AIR": -1000,
    "FAT": -100,
    "MUSCLE": 45,
    "BONE": 700,
    "MARROW": 250,
    "BRAIN_GM": 38,
    "BRAIN_WM": 28,
    "MYOCARDIUM": 45,
    "BLOOD": 40,
    "LIVER": 58,
    "SPLEEN": 48,
    "KIDNEY_CORTEX": 35,
    "KIDNEY_PELVIS": 10,
    "BLADDER": 8,
    "LUNG": -830,
    "SALIVARY": 40,
    "LESION": 45,
    "NECROSIS": 20,
    "TONSIL": 45,
}
CT_NOISE_HU = 12.0


def gaussian_blur(array_zyx: np.ndarray, spacing_xyz: tuple[float, float, float], fwhm_mm: float) -> np.ndarray:
    """Isotropic Gaussian blur of FWHM ``fwhm_mm`` (mm) on a grid of spacing (x, y, z) mm; array order (z, y, x).

    An isotropic Gaussian is rotation invariant, so oblique grids are blurred correctly per grid axis.
    """
    if fwhm_mm <= 0:
        return array_zyx.astype(np.float32, copy=True)
    sigma_vox = [fwhm_mm / FWHM_PER_SIGMA / s for s in reversed(spacing_xyz)]
    return ndimage.gaussian_filter(array_zyx.astype(np.float32), sigma_vox, mode="nearest", truncate=3.5)


def _kernel_energy(spacing_xyz: tuple[float, float, float], fwhm_mm: float) -> float:
    """Sum of squared weights of the discrete post-filter kernel (variance reduction factor of white noise)."""
    energy = 1.0
    for s in spacing_xyz:
        impulse = np.zeros(129)
        impulse[64] = 1.0
        kernel = ndimage.gaussian_filter1d(impulse, fwhm_mm / FWHM_PER_SIGMA / s, truncate=3.5) if fwhm_mm else impulse
        energy *= float(np.sum(kernel**2))
    return energy


def split_fwhm(fwhm_mm: float, noise_fwhm_mm: float, noisy: bool) -> tuple[float, float]:
    """(PSF FWHM, post-filter FWHM) in mm whose quadrature sum is ``fwhm_mm``; no post-filter without noise."""
    post = min(noise_fwhm_mm, fwhm_mm) if noisy else 0.0
    return math.sqrt(max(fwhm_mm**2 - post**2, 0.0)), post


def add_noise(
    blurred_zyx: np.ndarray,
    spacing_xyz: tuple[float, float, float],
    count_level: float,
    post_fwhm_mm: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Poisson noise then the post-filter; output variance = mean / ``count_level`` (SUV units), float32 (z, y, x).

    Counts are drawn as Poisson(mean * k) / k with k = count_level * kernel energy, so that after the post-filter
    (which divides the white-noise variance by 1 / energy) a voxel of mean SUV m has variance m / count_level.
    """
    k = count_level * _kernel_energy(spacing_xyz, post_fwhm_mm)
    counts = rng.poisson(np.maximum(blurred_zyx, 0.0).astype(np.float64) * k)
    return gaussian_blur((counts / k).astype(np.float32), spacing_xyz, post_fwhm_mm)


def ct_image(tissue_zyx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """CT-like int16 HU image (z, y, x) from tissue ids: per-tissue HU plus Gaussian noise of 12 HU."""
    table = np.zeros(256, np.float32)
    for t in Tissue:
        table[int(t)] = CT_HU[t.name]
    hu = table[tissue_zyx] + CT_NOISE_HU * rng.standard_normal(tissue_zyx.shape, dtype=np.float32)
    return np.clip(np.rint(hu), -1024, 3071).astype(np.int16)
