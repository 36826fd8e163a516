"""The oncologic lesion population of the ``adult`` preset: what a PET reader clicks on in FDG and PSMA studies.

Where each distribution comes from (docs/synthetic.md has the table):
- **Sites** (``SITE_WEIGHTS``): FDG follows the autoPET FDG cohort (TCIA FDG-PET-CT-Lesions: melanoma, lymphoma,
  NSCLC), whose lesions are mostly lymph nodes, lung, liver and bone, plus head-and-neck cancer (the HECKTOR cohorts:
  primary at the tonsil, cervical nodes). PSMA follows prostate cancer staging (autoPET III/IV PSMA cohort): prostate
  bed next to the bladder, pelvic / retroperitoneal nodes and bone marrow dominate, viscera are rare. The weights are
  our design choice, set to those qualitative patterns, not measured frequencies.
- **Diameters**: log-normal, median 18 mm (a 3 mL sphere), sigma 0.6, clipped to ``config.lesion_diameter_mm``
  (5-80 mm in the ``adult`` preset: from the smallest lesion a 2-4 mm PET grid resolves to bulky nodes / masses; 80 mm
  is 268 mL). About 60 % of lesions fall below 10 mL and 5-10 % above 50 mL, so each of the bench's size classes
  (< 10, 10-50, > 50 mL) is populated, with small lesions the majority as in autoPET's SEG components. Design choice.
- **Necrosis**: probability 0 below 20 mm, rising linearly to 0.6 from 44 mm (large NSCLC, head-and-neck nodes and
  sarcomas are often ring-shaped); the cold core is a concentric ellipsoid of 45-70 % of the lesion radii at
  NECROSIS uptake (0.3-0.6 x muscle), so the innermost voxel of the lesion (where autoPET IV places the first tumour
  click) lies in the cold core while the rim is hot. Design choice after the issue's real case (core SUV 0.85 in a
  lesion of SUVmax 19.5).
- **Heterogeneity**: half of the solid lesions >= 12 mm get a smooth multiplicative texture of CoV 15-35 %.
- **Uptake**: lesion SUVmean from ``uptake.sample_lesion_suv`` (FDG median 5.5, PSMA 9; autoPET IV fingerprint lesion
  voxels: median 4.7, mean 7.1); tonsils (painted only here) FDG 2.0-4.5 (Wang et al. 2007: 3.45 +- 1.4), PSMA 1-3
  (assumed).
- **Touching**: liver lesions are half inside, half on the surface; bladder-neighbourhood lesions sit against the
  bladder wall; head-and-neck primaries touch a tonsil below the brain; lymph-node clusters are 2-5 nodes, each placed
  against an earlier one (centre distance 0.78 x the radii sum), so touching nodes are separate instances.

Positions are in the body frame (geometry.py: adult LPS mm, vertex at the origin); diameters in world mm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from seganypet_nnunet.synthetic.anatomy import Anatomy, Organ, Patient, Tissue
from seganypet_nnunet.synthetic.config import LABELS, SyntheticConfig
from seganypet_nnunet.synthetic.geometry import Capsule, Ellipsoid, Sampler, Shape, rasterize, rotation_matrix
from seganypet_nnunet.synthetic.lesions import NODE_STATIONS
from seganypet_nnunet.synthetic.uptake import TracerProfile, sample_lesion_suv

SITE_WEIGHTS: dict[str, dict[str, float]] = {
    "fdg": {
        "node_cluster": 0.30,
        "lung": 0.15,
        "liver": 0.15,
        "bone_marrow": 0.10,
        "head_neck": 0.12,
        "bladder_wall": 0.05,
        "spleen": 0.05,
        "soft_tissue": 0.08,
    },
    "psma": {"bladder_wall": 0.25, "node_cluster": 0.30, "bone_marrow": 0.35, "liver": 0.05, "lung": 0.05},
}
NODE_STATIONS_BY_TRACER = {
    "fdg": tuple(NODE_STATIONS),
    "psma": ("iliac_l", "iliac_r", "para_aortic", "inguinal_l", "inguinal_r", "mediastinal"),
}
DIAMETER_MEDIAN_MM, DIAMETER_SIGMA = 18.0, 0.6
NODE_MEDIAN_MM, NODE_SIGMA = 14.0, 0.45
LESION_FREE_FRACTION = 0.1  # share of studies without lesions (autoPET also has negative controls)
TONSIL_SUV = {"fdg": (2.0, 4.5), "psma": (1.0, 3.0)}
#: Palatine tonsils in the body frame (mm): below the brain, medial to the parotids.
TONSILS = tuple(Ellipsoid((side * 18.0, -22.0, -188.0), (8.0, 10.0, 13.0)) for side in (-1, 1))


@dataclass(frozen=True)
class OncoLesion:
    """One lesion before voxelisation: body-frame centre (mm), world diameter (mm), SUV and its character."""

    center: tuple[float, float, float]
    diameter_mm: float
    suv: float
    site: str
    necrotic: bool
    heterogeneous: bool
    cluster: int | None = None
    axis_spread: float = 0.25  # per-axis radius factors in 1 +- axis_spread


def necrosis_probability(diameter_mm: float) -> float:
    """0 below 20 mm, linear to 0.6 at 44 mm and above."""
    return float(np.clip((diameter_mm - 20.0) / 40.0, 0.0, 0.6))


def _diameter(rng: np.random.Generator, median: float, sigma: float, lo: float, hi: float) -> float:
    return float(np.clip(median * np.exp(rng.normal(0.0, sigma)), lo, hi))


def _organ(patient: Patient, name: str) -> Organ:
    return next(o for o in patient.organs if o.name == name)


def _surface_point(e: Ellipsoid, rng: np.random.Generator, push_mm: float) -> np.ndarray:
    """A point on ellipsoid ``e``'s surface moved ``push_mm`` outward along the normal (body frame mm)."""
    u = rng.standard_normal(3)
    u /= np.linalg.norm(u)
    rot = np.asarray(e.rotation).reshape(3, 3)
    radii = np.asarray(e.radii)
    normal = rot @ (u / radii)
    return np.asarray(e.center) + rot @ (u * radii) + push_mm * normal / np.linalg.norm(normal)


def _inside_point(e: Ellipsoid, rng: np.random.Generator, depth: float = 0.6) -> np.ndarray:
    u = rng.standard_normal(3)
    u *= rng.uniform(0, depth) / np.linalg.norm(u)
    return np.asarray(e.center) + np.asarray(e.rotation).reshape(3, 3) @ (u * np.asarray(e.radii))


def _marrow_point(patient: Patient, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    bone = str(rng.choice(["spine", "spine", "ilium", "femur"]))
    prim = _organ(patient, bone).shape.primitives[0] if bone != "femur" else None
    if bone == "femur":
        femurs = [o for o in patient.organs if o.name == "femur"]
        prim = femurs[int(rng.integers(len(femurs)))].shape.primitives[0]
    if isinstance(prim, Capsule):
        t = rng.uniform(0.05, 0.95) if bone == "spine" else rng.uniform(0.0, 0.3)
        return np.asarray(prim.p0) + t * (np.asarray(prim.p1) - np.asarray(prim.p0)), f"marrow_{bone}"
    return _inside_point(prim, rng, 0.5), f"marrow_{bone}"


def _single(site: str, patient: Patient, d: float, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Body-frame centre and site name of one lesion of diameter ``d`` (mm) at ``site``."""
    r = 0.5 * d
    if site in ("liver", "spleen"):
        e = _organ(patient, site).shape.primitives[0]
        if rng.random() < 0.5:
            return _inside_point(e, rng), f"{site}_inside"
        return _surface_point(e, rng, push_mm=rng.uniform(-0.6, 0.3) * r), f"{site}_surface"
    if site == "lung":
        lung = _organ(patient, str(rng.choice(["lung_left", "lung_right"])))
        return _inside_point(lung.shape.primitives[0], rng), site
    if site == "bone_marrow":
        return _marrow_point(patient, rng)
    if site == "bladder_wall":  # prostate bed / pelvic side wall: against the bladder, posterior-inferior-lateral
        e = _organ(patient, "bladder").shape.primitives[0]
        for _ in range(20):
            p = _surface_point(e, rng, push_mm=0.7 * r)
            if p[1] > e.center[1] - 10 or p[2] < e.center[2]:
                return p, site
        return p, site
    if site == "head_neck":  # primary touching a palatine tonsil, just below the brain
        return _surface_point(TONSILS[int(rng.integers(2))], rng, push_mm=0.5 * r), "head_neck_tonsil"
    return np.array([rng.uniform(-110, 110), rng.uniform(-60, 80), rng.uniform(-820, -320)]), "soft_tissue"


def _cluster(
    station: str, n: int, lo: float, hi: float, scale: float, cluster_id: int, profile, rng: np.random.Generator
) -> list[OncoLesion]:
    """``n`` touching nodes: each node is placed against a random earlier node (centres 0.78 x radii sum apart)."""
    median = _diameter(rng, NODE_MEDIAN_MM, NODE_SIGMA, max(lo, 6.0), min(hi, 40.0))
    centers: list[np.ndarray] = [np.asarray(NODE_STATIONS[station], float) + rng.normal(0, 8, 3)]
    diameters = [median]
    for _ in range(n - 1):
        d = _diameter(rng, median, 0.25, max(lo, 6.0), min(hi, 40.0))
        j = int(rng.integers(len(centers)))
        u = rng.standard_normal(3)
        centers.append(centers[j] + u / np.linalg.norm(u) * 0.78 * 0.5 * (d + diameters[j]) / scale)
        diameters.append(d)
    suv = sample_lesion_suv(profile, rng)
    out = []
    for c, d in zip(centers, diameters, strict=True):
        necrotic = bool(rng.random() < necrosis_probability(d))
        node_suv = suv * float(rng.uniform(0.8, 1.25))
        out.append(OncoLesion(tuple(c), d, node_suv, f"node_{station}", necrotic, False, cluster_id, 0.1))
    return out


def sample_population(
    patient: Patient, config: SyntheticConfig, profile: TracerProfile, scale: float, rng: np.random.Generator
) -> list[OncoLesion]:
    """Draw the lesions of one study (module docstring); ``scale`` is the mean body-frame -> world scale."""
    if config.max_lesions == 0 or rng.random() < LESION_FREE_FRACTION:
        return []
    count = int(rng.integers(1, config.max_lesions + 1))
    lo, hi = config.lesion_diameter_mm
    weights = SITE_WEIGHTS[config.tracer]
    sites, probs = list(weights), np.asarray(list(weights.values()))
    out: list[OncoLesion] = []
    clusters = 0
    while len(out) < count:
        site = str(rng.choice(sites, p=probs / probs.sum()))
        if site == "node_cluster":
            station = str(rng.choice(NODE_STATIONS_BY_TRACER[config.tracer]))
            n = min(int(rng.integers(2, 6)), max(count - len(out), 2))
            out += _cluster(station, n, lo, hi, scale, clusters, profile, rng)
            clusters += 1
            continue
        median = 25.0 if site == "head_neck" else DIAMETER_MEDIAN_MM
        d = _diameter(rng, median, DIAMETER_SIGMA, lo, hi)
        center, name = _single(site, patient, d, rng)
        necrotic = bool(rng.random() < necrosis_probability(d))
        hetero = bool(not necrotic and d >= 12 and rng.random() < 0.5)
        out.append(OncoLesion(tuple(center), d, sample_lesion_suv(profile, rng), name, necrotic, hetero))
    return out


def paint_tonsils(anatomy: Anatomy, sampler: Sampler, rng: np.random.Generator) -> None:
    """Paint both palatine tonsils (tissue ``TONSIL``, no label: background) inside the body, in place."""
    for e in TONSILS:
        hit = rasterize(Shape.random((e,), 1.0, rng), sampler)
        if hit is not None:
            crop, inside, _ = hit
            anatomy.tissue[crop][inside & anatomy.body[crop]] = Tissue.TONSIL


def _texture(shape: tuple[int, ...], cov: float, rng: np.random.Generator) -> np.ndarray:
    coarse = rng.standard_normal((4, 4, 4))
    field = ndimage.zoom(coarse, [max(s, 1) / 4 for s in shape], order=1, mode="nearest", grid_mode=True)
    field = field[: shape[0], : shape[1], : shape[2]]
    field = (field - field.mean()) / max(field.std(), 1e-6)
    return np.maximum(1.0 + cov * field, 0.4).astype(np.float32)


def paint_population(
    lesions: list[OncoLesion], anatomy: Anatomy, sampler: Sampler, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Voxelise ``lesions`` into ``anatomy`` (labels and tissue, in place), as ``lesions.paint_lesions`` does.

    Returns:
        (instances uint16, lesion_suv float32, records), arrays (z, y, x); lesion_suv is 0 outside lesions and in
        necrotic cores (which take NECROSIS uptake); records as ``lesions.paint_lesions`` plus ``kind``, ``cluster``,
        ``touches`` (names of labelled structures face-adjacent to the lesion) and, for necrotic lesions,
        ``innermost_in_core`` (the lesion's distance-transform maximum lies in the cold core).
    """
    shape = anatomy.labels.shape
    instances = np.zeros(shape, np.uint16)
    lesion_suv = np.zeros(shape, np.float32)
    scale = np.asarray(sampler.placement.scale)
    organ_labels = anatomy.labels.copy()
    painted: list[OncoLesion] = []
    for spec in lesions:
        radii = 0.5 * spec.diameter_mm * rng.uniform(1 - spec.axis_spread, 1 + spec.axis_spread, 3) / scale
        rot = tuple(rotation_matrix(rng.uniform(-180, 180, 3)).ravel())
        deform = (0.1 if spec.cluster is None else 0.04) * float(radii.min())
        lesion = Shape.random((Ellipsoid(spec.center, tuple(radii), rot),), deform, rng)
        hit = rasterize(lesion, sampler)
        if hit is None:
            continue
        crop, inside, level = hit
        inside &= anatomy.body[crop]
        if not inside.any():
            continue
        ident = len(painted) + 1
        depth = np.clip(-level / max(float(radii.min()) * 0.5, 1e-3), 0.0, 1.0)
        values = spec.suv * (0.8 + 0.4 * depth)
        if spec.heterogeneous:
            values = values * _texture(inside.shape, float(rng.uniform(0.15, 0.35)), rng)
        instances[crop][inside] = ident
        lesion_suv[crop][inside] = values[inside].astype(np.float32)
        anatomy.tissue[crop][inside] = Tissue.LESION
        if spec.necrotic:
            fraction = float(rng.uniform(0.45, 0.7))
            core = Shape((Ellipsoid(spec.center, tuple(radii * fraction), rot),), deform * 0.5, lesion.field)
            core_hit = rasterize(core, sampler)
            if core_hit is not None:
                ccrop, cin, _ = core_hit
                cin &= instances[ccrop] == ident
                anatomy.tissue[ccrop][cin] = Tissue.NECROSIS
                lesion_suv[ccrop][cin] = 0.0
        painted.append(spec)
    return _finalise(instances, lesion_suv, anatomy, organ_labels, painted, sampler)


def _finalise(instances, lesion_suv, anatomy, organ_labels, painted, sampler) -> tuple[np.ndarray, np.ndarray, list]:
    """Relabel surviving instances 1..K, set label ``lesion``, build records (module docstring of paint_population)."""
    present = np.unique(instances)
    present = present[present > 0]
    lut = np.zeros(len(painted) + 1, np.uint16)
    lut[present] = np.arange(1, len(present) + 1, dtype=np.uint16)
    instances = lut[instances]
    anatomy.labels[instances > 0] = LABELS["lesion"]
    names = {v: k for k, v in LABELS.items()}
    voxel_ml = float(np.prod(sampler.grid.spacing)) / 1000.0
    records = []
    for new_id, box in enumerate(ndimage.find_objects(instances), start=1):
        spec = painted[int(present[new_id - 1]) - 1]
        box = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box)
        mask = instances[box] == new_id
        ring = ndimage.binary_dilation(mask) & ~mask
        touching = sorted({names[int(v)] for v in np.unique(organ_labels[box][ring & (instances[box] == 0)]) if v})
        center = sampler.placement.body_to_world(np.asarray([spec.center]))[0]
        kind = "necrotic" if spec.necrotic else "heterogeneous" if spec.heterogeneous else "solid"
        record = {
            "id": new_id,
            "site": spec.site,
            "kind": kind,
            "cluster": spec.cluster,
            "touches": touching,
            "center_world_mm": [round(float(c), 2) for c in center],
            "diameter_mm": round(spec.diameter_mm, 2),
            "suv_mean": round(spec.suv, 3),
            "necrotic": spec.necrotic,
            "volume_ml": round(float(mask.sum()) * voxel_ml, 3),
        }
        if spec.necrotic:
            edt = ndimage.distance_transform_edt(np.pad(mask, 1), sampling=tuple(reversed(sampler.grid.spacing)))
            inner = np.unravel_index(int(np.argmax(edt)), edt.shape)
            voxel = tuple(b.start + i - 1 for b, i in zip(box, inner, strict=True))
            record["innermost_zyx"] = [int(v) for v in voxel]
            record["innermost_in_core"] = bool(anatomy.tissue[voxel] == Tissue.NECROSIS)
        records.append(record)
    return instances, lesion_suv, records
