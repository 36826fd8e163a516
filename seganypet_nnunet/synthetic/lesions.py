"""Lesions: sites (organs, bone, soft tissue, lymph-node stations with clusters), shapes, SUV, painting.

Lesions are deformed ellipsoids of 5-40 mm diameter (world mm), anywhere in the body including inside organs;
they override organ labels (label ``lesion``) and get consecutive instance ids 1..K in paint order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seganypet_nnunet.synthetic.anatomy import Anatomy, Patient, Tissue
from seganypet_nnunet.synthetic.config import LABELS, SyntheticConfig
from seganypet_nnunet.synthetic.geometry import Ellipsoid, Sampler, Shape, rasterize, rotation_matrix
from seganypet_nnunet.synthetic.uptake import TracerProfile, sample_lesion_suv

#: Lymph-node stations in the body frame (mm): cervical, axillary, mediastinal, hilar, para-aortic, iliac, inguinal.
NODE_STATIONS: dict[str, tuple[float, float, float]] = {
    "cervical_l": (42, -5, -235),
    "cervical_r": (-42, -5, -235),
    "axillary_l": (135, 15, -340),
    "axillary_r": (-135, 15, -340),
    "mediastinal": (5, 0, -410),
    "hilar_l": (40, 15, -440),
    "hilar_r": (-40, 15, -440),
    "para_aortic": (-22, 40, -660),
    "iliac_l": (65, 30, -790),
    "iliac_r": (-65, 30, -790),
    "inguinal_l": (88, -55, -880),
    "inguinal_r": (-88, -55, -880),
}
ORGAN_SITES = ("liver", "lung_left", "lung_right", "spleen", "spine", "ilium", "soft_tissue")
NODE_PROBABILITY = 0.4
NECROSIS_PROBABILITY = 0.4


@dataclass(frozen=True)
class LesionSpec:
    """One lesion before voxelisation: body-frame centre (mm), world diameter (mm), SUV, site."""

    center: tuple[float, float, float]
    diameter_mm: float
    suv: float
    site: str
    necrotic: bool


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(max(hi, lo)))))


def _point_in(patient: Patient, site: str, rng: np.random.Generator) -> np.ndarray:
    """Random body-frame point inside the first primitive of the named organ (or the trunk for soft tissue)."""
    if site == "soft_tissue":
        return np.array([rng.uniform(-110, 110), rng.uniform(-60, 80), rng.uniform(-820, -320)])
    organ = next(o for o in patient.organs if o.name == site)
    prim = organ.shape.primitives[0]
    if not isinstance(prim, Ellipsoid):  # capsule (spine): a point on the axis
        t = rng.uniform(0.1, 0.9)
        return np.asarray(prim.p0) + t * (np.asarray(prim.p1) - np.asarray(prim.p0))
    u = rng.standard_normal(3)
    u *= rng.uniform(0, 0.75) / np.linalg.norm(u)
    rot = np.asarray(prim.rotation).reshape(3, 3)
    return np.asarray(prim.center) + rot @ (u * np.asarray(prim.radii))


def sample_lesions(
    patient: Patient, config: SyntheticConfig, profile: TracerProfile, rng: np.random.Generator
) -> list[LesionSpec]:
    """Draw 0..``config.max_lesions`` lesions: single organ/bone/soft-tissue lesions and lymph-node clusters."""
    count = int(rng.integers(0, config.max_lesions + 1))
    lo, hi = config.lesion_diameter_mm
    specs: list[LesionSpec] = []
    while len(specs) < count:
        if rng.random() < NODE_PROBABILITY:
            station = str(rng.choice(list(NODE_STATIONS)))
            size = min(int(rng.integers(1, 5)), count - len(specs))
            base = np.asarray(NODE_STATIONS[station], float)
            for _ in range(size):
                d = _log_uniform(rng, max(lo, 6.0), min(hi, 25.0))
                specs.append(
                    LesionSpec(
                        tuple(base + rng.normal(0, 12, 3)), d, sample_lesion_suv(profile, rng), f"node_{station}", False
                    )
                )
        else:
            site = str(rng.choice(ORGAN_SITES))
            d = _log_uniform(rng, lo, hi)
            necrotic = d > 20 and rng.random() < NECROSIS_PROBABILITY
            specs.append(
                LesionSpec(
                    tuple(_point_in(patient, site, rng)), d, sample_lesion_suv(profile, rng), site, bool(necrotic)
                )
            )
    return specs


def _lesion_shape(spec: LesionSpec, body_scale: np.ndarray, rng: np.random.Generator) -> tuple[Shape, Shape]:
    """(lesion shape, necrotic-core shape) in the body frame; world radii divided by the placement scale."""
    radii = 0.5 * spec.diameter_mm * rng.uniform(0.75, 1.25, 3) / body_scale
    rot = tuple(rotation_matrix(rng.uniform(-180, 180, 3)).ravel())
    shape = Shape.random((Ellipsoid(spec.center, tuple(radii), rot),), 0.1 * float(radii.min()), rng)
    core = Shape((Ellipsoid(spec.center, tuple(radii * 0.45), rot),), shape.deform_mm * 0.5, shape.field)
    return shape, core


def paint_lesions(
    specs: list[LesionSpec], anatomy: Anatomy, sampler: Sampler, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Voxelise lesions into ``anatomy`` (labels and tissue, in place).

    Returns:
        (instances uint16, lesion_suv float32, records): arrays of shape (z, y, x); lesion_suv holds each lesion
        voxel's SUV (hotter towards the centre: 0.8-1.2 x SUVmean), 0 elsewhere and in necrotic cores; records
        describe the lesions that kept at least one voxel, with their final instance id.
    """
    shape = anatomy.labels.shape
    instances = np.zeros(shape, np.uint16)
    lesion_suv = np.zeros(shape, np.float32)
    scale = np.asarray(sampler.placement.scale)
    painted = []
    for spec in specs:
        lesion, core = _lesion_shape(spec, scale, rng)
        hit = rasterize(lesion, sampler)
        if hit is None:
            continue
        crop, inside, level = hit
        inside &= anatomy.body[crop]
        depth = np.clip(-level / max(float(lesion.primitives[0].radii[0]) * 0.5, 1e-3), 0.0, 1.0)
        instances[crop][inside] = len(painted) + 1
        lesion_suv[crop][inside] = (spec.suv * (0.8 + 0.4 * depth[inside])).astype(np.float32)
        anatomy.tissue[crop][inside] = Tissue.LESION
        if spec.necrotic:
            _paint_core(core, sampler, anatomy, instances == len(painted) + 1, lesion_suv)
        painted.append(spec)
    return _finalise(instances, lesion_suv, anatomy, painted, sampler)


def _paint_core(
    core: Shape, sampler: Sampler, anatomy: Anatomy, lesion_mask: np.ndarray, lesion_suv: np.ndarray
) -> None:
    hit = rasterize(core, sampler)
    if hit is None:
        return
    crop, inside, _ = hit
    inside &= lesion_mask[crop]
    anatomy.tissue[crop][inside] = Tissue.NECROSIS
    lesion_suv[crop][inside] = 0.0


def _finalise(
    instances: np.ndarray, lesion_suv: np.ndarray, anatomy: Anatomy, painted: list[LesionSpec], sampler: Sampler
) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Relabel surviving instances 1..K (later lesions may cover earlier ones), set label ``lesion``, build records."""
    present = np.unique(instances)
    present = present[present > 0]
    lut = np.zeros(len(painted) + 1, np.uint16)
    lut[present] = np.arange(1, len(present) + 1, dtype=np.uint16)
    instances = lut[instances]
    anatomy.labels[instances > 0] = LABELS["lesion"]
    volume_ml = float(np.prod(sampler.grid.spacing)) / 1000.0
    counts = np.bincount(instances.ravel(), minlength=len(present) + 1)
    records = []
    for new_id, old_id in enumerate(present, start=1):
        spec = painted[int(old_id) - 1]
        center = sampler.placement.body_to_world(np.asarray([spec.center]))[0]
        records.append(
            {
                "id": new_id,
                "site": spec.site,
                "center_world_mm": [round(float(c), 2) for c in center],
                "diameter_mm": round(spec.diameter_mm, 2),
                "suv_mean": round(spec.suv, 3),
                "necrotic": spec.necrotic,
                "volume_ml": round(float(counts[new_id]) * volume_ml, 3),
            }
        )
    return instances, lesion_suv, records
