"""One synthetic PET(/CT) study: anatomy -> uptake -> lesions -> PSF -> noise, all on one world grid."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from seganypet_nnunet.synthetic.anatomy import make_grid, make_placement, paint, sample_patient, with_bladder_fill
from seganypet_nnunet.synthetic.config import LABELS, SyntheticConfig
from seganypet_nnunet.synthetic.geometry import Sampler
from seganypet_nnunet.synthetic.lesions import paint_lesions, sample_lesions
from seganypet_nnunet.synthetic.physics import add_noise, ct_image, gaussian_blur, split_fwhm
from seganypet_nnunet.synthetic.population import TONSIL_SUV, paint_population, paint_tonsils, sample_population
from seganypet_nnunet.synthetic.uptake import PROFILES, activity_map, sample_tissue_suv, texture_field


@dataclass
class SyntheticCase:
    """A generated study. All images share one grid (size, spacing, origin, direction).

    Attributes:
        pet: float32 SUV image (blurred, noisy).
        ct: int16 HU-like image, or None when ``with_ct`` is False.
        labels: uint8 label map (``LABELS``; lesions override organs).
        instances: uint16 lesion instance map (0 none, 1..K), nonzero exactly where labels == lesion.
        patient_id: patient identifier (same for all studies of one patient).
        truth: nominal values: seed, tracer, fwhm_mm, count_level, tissue_suv, organ_suv (mean of the unblurred
            noiseless SUV inside each label), lesions (per-instance records), geometry.
        suv_true: float32 unblurred, noiseless SUV image (for PSF / partial-volume checks).
    """

    pet: sitk.Image
    ct: sitk.Image | None
    labels: sitk.Image
    instances: sitk.Image
    patient_id: str
    truth: dict = field(default_factory=dict)
    suv_true: sitk.Image | None = None


def _rngs(seed: int, patient_seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """(patient rng, study rng): anatomy depends on the patient only; everything else on the study seed."""
    patient = np.random.default_rng(np.random.SeedSequence([int(patient_seed), 0x5EED]))
    study = np.random.default_rng(np.random.SeedSequence([int(seed), 0x57D1]))
    return patient, study


def _organ_means(labels: np.ndarray, suv: np.ndarray) -> dict[str, float]:
    sums = np.bincount(labels.ravel(), weights=suv.ravel(), minlength=len(LABELS))
    counts = np.bincount(labels.ravel(), minlength=len(LABELS))
    return {name: round(float(sums[i] / counts[i]), 4) for name, i in LABELS.items() if i and counts[i]}


def _oncologic(patient, config, profile, anatomy, sampler, tissue_suv, rng):
    """The ``oncologic`` population (population.py): tonsils painted, then its lesions; tissue_suv gains TONSIL."""
    tissue_suv["TONSIL"] = float(rng.uniform(*TONSIL_SUV[config.tracer]))
    paint_tonsils(anatomy, sampler, rng)
    scale = float(np.mean(sampler.placement.scale))
    specs = sample_population(patient, config, profile, scale, rng)
    return paint_population(specs, anatomy, sampler, rng)


def make_case(seed: int, config: SyntheticConfig | None = None, *, patient_seed: int | None = None) -> SyntheticCase:
    """Generate one deterministic synthetic study.

    Args:
        seed: study seed (uptake, lesions, noise, positioning, grid).
        config: generator settings; default ``SyntheticConfig()`` (small, FDG, no CT).
        patient_seed: seed of the anatomy; defaults to ``seed``. Two studies with one ``patient_seed`` and
            different ``seed`` are baseline / follow-up of one patient (same organs, new lesions and uptake).

    Returns:
        SyntheticCase whose images are on one grid of ``config.grid_shape_xyz`` voxels (x, y, z).
    """
    config = config or SyntheticConfig()
    patient_seed = seed if patient_seed is None else patient_seed
    if int(seed) < 0 or int(patient_seed) < 0:
        raise ValueError(f"make_case seeds must be >= 0, got seed={seed}, patient_seed={patient_seed}")
    rng_patient, rng = _rngs(seed, patient_seed)
    profile = PROFILES[config.tracer]
    patient = with_bladder_fill(sample_patient(rng_patient), float(rng.uniform(0.6, 1.25)))
    grid = make_grid(config, rng)
    sampler = Sampler(grid, make_placement(patient, grid, config.preset.body_scale, rng))
    anatomy = paint(patient, sampler)
    tissue_suv = sample_tissue_suv(profile, rng)
    if config.lesion_population == "oncologic":
        instances, lesion_suv, lesions = _oncologic(patient, config, profile, anatomy, sampler, tissue_suv, rng)
    else:
        specs = sample_lesions(patient, config, profile, rng)
        instances, lesion_suv, lesions = paint_lesions(specs, anatomy, sampler, rng)
    suv_true = activity_map(anatomy.tissue, tissue_suv, lesion_suv)
    suv_true *= texture_field(grid.shape_zyx, config.texture_cov, rng)
    fwhm = float(rng.uniform(*config.fwhm_mm))
    psf_fwhm, post_fwhm = split_fwhm(fwhm, config.noise_fwhm_mm, config.count_level is not None)
    pet = gaussian_blur(suv_true, grid.spacing, psf_fwhm)
    if config.count_level is not None:
        pet = add_noise(pet, grid.spacing, config.count_level, post_fwhm, rng)
    ct = grid.to_image(ct_image(anatomy.tissue, rng)) if config.with_ct else None
    truth = {
        "seed": int(seed),
        "patient_seed": int(patient_seed),
        "tracer": config.tracer,
        "size": config.size,
        "lesion_population": config.lesion_population,
        "fwhm_mm": round(fwhm, 4),
        "psf_fwhm_mm": round(psf_fwhm, 4),
        "post_filter_fwhm_mm": round(post_fwhm, 4),
        "count_level": config.count_level,
        "tissue_suv": {k: round(v, 4) for k, v in tissue_suv.items()},
        "organ_suv": _organ_means(anatomy.labels, suv_true),
        "lesions": lesions,
        "spacing": list(grid.spacing),
        "origin": list(grid.origin),
        "direction": list(grid.direction),
    }
    return SyntheticCase(
        pet=grid.to_image(pet.astype(np.float32)),
        ct=ct,
        labels=grid.to_image(anatomy.labels),
        instances=grid.to_image(instances),
        patient_id=f"SYN{int(patient_seed):06d}",
        truth=truth,
        suv_true=grid.to_image(suv_true),
    )
