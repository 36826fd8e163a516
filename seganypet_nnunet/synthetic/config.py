"""Configuration of the synthetic whole-body PET generator: label ids, size presets, the frozen ``SyntheticConfig``."""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Label ids written to ``labelsTr`` / ``dataset.json`` (DESIGN.md "Synthetic data labels").
LABELS: dict[str, int] = {
    "background": 0,
    "brain": 1,
    "heart": 2,
    "liver": 3,
    "spleen": 4,
    "kidney_left": 5,
    "kidney_right": 6,
    "bladder": 7,
    "lung_left": 8,
    "lung_right": 9,
    "aorta": 10,
    "lesion": 11,
}

#: autoPET (Siemens Biograph mCT) PET voxel spacing in mm, world axis order (x, y, z).
AUTOPET_SPACING: tuple[float, float, float] = (2.0364, 2.0364, 3.0)

SIZES = ("small", "whole_body")
TRACERS = ("fdg", "psma")
#: ``basic``: the original 5-40 mm population (lesions.py); ``oncologic``: the adult oncologic-PET population
#: (population.py: 5-80 mm, necrotic / heterogeneous cores, organ-touching sites, touching node clusters).
LESION_POPULATIONS = ("basic", "oncologic")


@dataclass(frozen=True)
class SizePreset:
    """Field of view and default grid of one ``size``.

    Attributes:
        fov_mm: field of view in world mm, axis order (x, y, z).
        default_spacing: voxel spacing in mm (x, y, z) used when ``SyntheticConfig.spacing`` is None.
        body_scale: isotropic scale of the adult reference anatomy (0.45 is a small child; 1.0 an adult).
    """

    fov_mm: tuple[float, float, float]
    default_spacing: tuple[float, float, float]
    body_scale: float


SIZE_PRESETS: dict[str, SizePreset] = {
    # 64 x 64 x 64 voxels: a child-sized body, vertex to upper thigh, for fast tests.
    "small": SizePreset(fov_mm=(256.0, 256.0, 448.0), default_spacing=(4.0, 4.0, 7.0), body_scale=0.45),
    # 128 x 128 x 250 voxels at 4 mm: an adult, vertex to mid-thigh.
    "whole_body": SizePreset(fov_mm=(512.0, 512.0, 1000.0), default_spacing=(4.0, 4.0, 4.0), body_scale=1.0),
}


@dataclass(frozen=True)
class SyntheticConfig:
    """How one synthetic PET study is generated.

    Attributes:
        size: ``"small"`` (about 64^3 voxels, child-sized) or ``"whole_body"`` (adult, 128 x 128 x 250 at 4 mm).
        spacing: voxel spacing in mm, world axis order (x, y, z); None uses the size preset
            (``AUTOPET_SPACING`` gives autoPET-like 2.04 x 2.04 x 3 mm).
        tracer: ``"fdg"`` or ``"psma"`` uptake profile.
        with_ct: also generate a CT-like image (HU) on the PET grid.
        max_lesions: upper bound of the number of lesions per case (drawn uniformly in 0..max_lesions).
        fwhm_mm: (min, max) of the isotropic Gaussian PSF FWHM in mm, drawn per case.
        count_level: noise level: expected counts per voxel per unit SUV after post-smoothing, so a voxel of
            mean SUV m has noise variance m / count_level. None disables noise. The default gives liver CoV of
            about 10-15 %.
        noise_fwhm_mm: part of the total FWHM (mm) applied after the noise (post-reconstruction filter that
            correlates the noise, as OSEM + post-filter does); the PSF part is sqrt(fwhm^2 - noise_fwhm^2),
            so the total resolution equals the drawn ``fwhm_mm``.
        texture_cov: coefficient of variation of the low-frequency multiplicative uptake texture.
        oblique: write a non-identity direction cosine matrix (grid rotated by a few degrees).
        lesion_diameter_mm: (min, max) lesion diameter in mm.
        followup_fraction: fraction of patients in a dataset that get a second (follow-up) study.
        lesion_population: ``"basic"`` (default, lesions.py) or ``"oncologic"`` (population.py; also paints the
            palatine tonsils, a head-and-neck hard negative).
    """

    size: str = "small"
    spacing: tuple[float, float, float] | None = None
    tracer: str = "fdg"
    with_ct: bool = False
    max_lesions: int = 4
    fwhm_mm: tuple[float, float] = (5.0, 7.0)
    count_level: float | None = 30.0
    noise_fwhm_mm: float = 4.0
    texture_cov: float = 0.05
    oblique: bool = False
    lesion_diameter_mm: tuple[float, float] = (5.0, 40.0)
    followup_fraction: float = 0.5
    lesion_population: str = "basic"

    def __post_init__(self) -> None:
        if self.size not in SIZES:
            raise ValueError(f"SyntheticConfig.size must be one of {SIZES}, got {self.size!r}")
        if self.tracer not in TRACERS:
            raise ValueError(f"SyntheticConfig.tracer must be one of {TRACERS}, got {self.tracer!r}")
        if self.lesion_population not in LESION_POPULATIONS:
            raise ValueError(
                f"SyntheticConfig.lesion_population must be one of {LESION_POPULATIONS}, got {self.lesion_population!r}"
            )
        if self.spacing is not None and (len(self.spacing) != 3 or min(self.spacing) <= 0):
            raise ValueError(f"SyntheticConfig.spacing must be three positive mm values (x, y, z), got {self.spacing}")
        if self.max_lesions < 0:
            raise ValueError(f"SyntheticConfig.max_lesions must be >= 0, got {self.max_lesions}")
        lo, hi = self.fwhm_mm
        if not 0 < lo <= hi:
            raise ValueError(f"SyntheticConfig.fwhm_mm must be (min, max) with 0 < min <= max, got {self.fwhm_mm}")
        if self.count_level is not None and self.count_level <= 0:
            raise ValueError(f"SyntheticConfig.count_level must be positive or None, got {self.count_level}")
        if not 0 <= self.followup_fraction <= 1:
            raise ValueError(f"SyntheticConfig.followup_fraction must be in [0, 1], got {self.followup_fraction}")

    @property
    def preset(self) -> SizePreset:
        """The ``SizePreset`` of ``size``."""
        return SIZE_PRESETS[self.size]

    @property
    def grid_spacing(self) -> tuple[float, float, float]:
        """Voxel spacing in mm (x, y, z) actually used."""
        return tuple(float(s) for s in (self.spacing or self.preset.default_spacing))

    @property
    def grid_shape_xyz(self) -> tuple[int, int, int]:
        """Grid size in voxels, ITK order (x, y, z): the preset field of view divided by the spacing."""
        pairs = zip(self.preset.fov_mm, self.grid_spacing, strict=True)
        return tuple(max(8, int(math.ceil(f / s - 1e-6))) for f, s in pairs)


#: Named presets of ``seganypet_make_synthetic -preset``: keyword overrides of ``SyntheticConfig``.
#: ``adult`` is the adult whole-body study with the oncologic lesion population (docs/synthetic.md); pair it with
#: ``--spacing 2.0364 2.0364 3`` (autoPET's Biograph mCT grid) or the default 4 mm isotropic grid.
PRESETS: dict[str, dict] = {
    "small": {"size": "small"},
    "whole_body": {"size": "whole_body"},
    "adult": {
        "size": "whole_body",
        "lesion_population": "oncologic",
        "max_lesions": 8,
        "lesion_diameter_mm": (5.0, 80.0),
    },
}
