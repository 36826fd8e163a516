"""Patient anatomy: a randomly varied adult reference layout, placed on the image grid and voxelised.

The layout lives in the **body frame** (geometry.py): (x, y, z) LPS mm of an adult, vertex at the origin, feet
towards -z. Per patient every organ is scaled per axis, shifted, rotated by a few degrees and deformed by a smooth
random field; the whole body is scaled (girth, height, ``SizePreset.body_scale``), rotated and translated into world.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from seganypet_nnunet.synthetic.config import LABELS, SyntheticConfig
from seganypet_nnunet.synthetic.geometry import (
    Capsule,
    Ellipsoid,
    Grid,
    Placement,
    Profile,
    Sampler,
    Shape,
    rasterize,
    rotation_matrix,
)


class Tissue(IntEnum):
    """Tissue classes of the activity / CT model (finer than the labels; unlabeled tissues are background)."""

    AIR = 0
    FAT = 1
    MUSCLE = 2
    BONE = 3
    MARROW = 4
    BRAIN_GM = 5
    BRAIN_WM = 6
    MYOCARDIUM = 7
    BLOOD = 8
    LIVER = 9
    SPLEEN = 10
    KIDNEY_CORTEX = 11
    KIDNEY_PELVIS = 12
    BLADDER = 13
    LUNG = 14
    SALIVARY = 15
    LESION = 16
    NECROSIS = 17
    TONSIL = 18  # palatine tonsils: painted only with the oncologic lesion population (population.py)


@dataclass(frozen=True, eq=False)
class Organ:
    """One structure in paint order; ``inner`` (e.g. heart cavity, kidney pelvis) is painted inside it."""

    name: str
    shape: Shape
    tissue: Tissue
    label: int = 0
    inner: Shape | None = None
    inner_tissue: Tissue = Tissue.AIR


@dataclass(frozen=True, eq=False)
class Patient:
    """Anatomy of one patient in the body frame (independent of grid and study)."""

    body: Shape
    organs: tuple[Organ, ...]
    fat_mm: float
    girth: tuple[float, float]
    height: float


@dataclass(frozen=True, eq=False)
class Anatomy:
    """Voxelised anatomy on the grid; arrays have shape (z, y, x) (array order)."""

    tissue: np.ndarray  # uint8 Tissue ids
    labels: np.ndarray  # uint8 LABELS ids (lesions not yet painted)
    body: np.ndarray  # bool, inside the body contour


def _eye() -> tuple[float, ...]:
    return tuple(np.eye(3).ravel())


def _vary(prims: tuple, anchor: np.ndarray, scale: np.ndarray, rot: np.ndarray, shift: np.ndarray) -> tuple:
    """Scale/rotate primitives about ``anchor`` (body mm) and shift them; shapes (3,) and (3, 3)."""

    def move(p: np.ndarray) -> tuple[float, float, float]:
        return tuple(anchor + shift + rot @ ((np.asarray(p) - anchor) * scale))

    out = []
    for p in prims:
        if isinstance(p, Ellipsoid):
            r0 = np.asarray(p.rotation).reshape(3, 3)
            out.append(Ellipsoid(move(p.center), tuple(np.asarray(p.radii) * scale), tuple((rot @ r0).ravel())))
        else:
            out.append(Capsule(move(p.p0), move(p.p1), p.radius * float(np.mean(scale))))
    return tuple(out)


def _organ(
    rng: np.random.Generator,
    name: str,
    prims: tuple,
    tissue: Tissue,
    deform: float,
    var: float = 0.12,
    inner: tuple | None = None,
    inner_tissue: Tissue = Tissue.AIR,
    scale: np.ndarray | None = None,
) -> Organ:
    """Randomly varied organ: per-axis scale ~ 1 +- ``var``, shift ~ 6 mm, rotation ~ 6 degrees."""
    anchor = np.mean([p.center if isinstance(p, Ellipsoid) else p.p0 for p in prims], axis=0)
    scale = rng.uniform(1 - var, 1 + var, 3) if scale is None else scale
    rot = rotation_matrix(rng.normal(0, 6, 3))
    shift = rng.normal(0, 6, 3)
    shape = Shape.random(_vary(prims, anchor, scale, rot, shift), deform, rng)
    inner_shape = None
    if inner is not None:
        inner_shape = Shape(_vary(inner, anchor, scale, rot, shift), deform * 0.5, shape.field)
    return Organ(name, shape, tissue, LABELS.get(name, 0), inner_shape, inner_tissue)


def _bones(rng: np.random.Generator) -> list[Organ]:
    spine = (Capsule((0, 72, -235), (0, 68, -850), 17.0),)
    marrow = (Capsule((0, 72, -235), (0, 68, -850), 11.0),)
    organs = [_organ(rng, "spine", spine, Tissue.BONE, 1.5, 0.05, marrow, Tissue.MARROW)]
    for side in (-1, 1):
        femur = (Capsule((side * 92, 15, -840), (side * 100, 15, -1200), 14.0),)
        femur_m = (Capsule((side * 92, 15, -840), (side * 100, 15, -1200), 8.0),)
        ilium = (Ellipsoid((side * 95, 35, -770), (22, 50, 55), tuple(rotation_matrix((0, 0, side * 25)).ravel())),)
        ilium_m = (Ellipsoid((side * 95, 35, -770), (15, 43, 48), tuple(rotation_matrix((0, 0, side * 25)).ravel())),)
        organs.append(_organ(rng, "femur", femur, Tissue.BONE, 1.0, 0.05, femur_m, Tissue.MARROW))
        organs.append(_organ(rng, "ilium", ilium, Tissue.BONE, 3.0, 0.08, ilium_m, Tissue.MARROW))
    return organs


def _glands(rng: np.random.Generator) -> list[Organ]:
    organs = []
    for side in (-1, 1):
        organs.append(_organ(rng, "parotid", (Ellipsoid((side * 55, 10, -175), (14, 20, 24)),), Tissue.SALIVARY, 2.0))
        organs.append(
            _organ(rng, "submandibular", (Ellipsoid((side * 35, -38, -205), (11, 12, 11)),), Tissue.SALIVARY, 1.5)
        )
    return organs


def _thorax(rng: np.random.Generator) -> tuple[list[Organ], list[Organ]]:
    """(lungs and aorta, heart): the heart is painted after the abdomen so the liver dome never covers it."""
    heart_rot = tuple(rotation_matrix((-20, 15, 35)).ravel())
    heart = (Ellipsoid((25, -30, -490), (62, 50, 56), heart_rot),)
    cavity = (Ellipsoid((25, -30, -490), (50, 38, 44), heart_rot),)
    aorta = (
        Capsule((12, -18, -470), (8, -10, -385), 13.0),
        Capsule((8, -10, -385), (15, 35, -390), 12.0),
        Capsule((15, 35, -390), (12, 45, -560), 12.0),
        Capsule((12, 45, -560), (5, 40, -750), 11.0),
    )
    return [
        _organ(rng, "lung_left", (Ellipsoid((85, 15, -445), (60, 85, 125)),), Tissue.LUNG, 6.0),
        _organ(rng, "lung_right", (Ellipsoid((-85, 15, -435), (66, 88, 118)),), Tissue.LUNG, 6.0),
        _organ(rng, "aorta", aorta, Tissue.BLOOD, 1.0, 0.08),
    ], [_organ(rng, "heart", heart, Tissue.MYOCARDIUM, 3.0, 0.1, cavity, Tissue.BLOOD)]


def _abdomen(rng: np.random.Generator, bladder_fill: float) -> list[Organ]:
    liver = (
        Ellipsoid((-65, 0, -585), (95, 85, 82), tuple(rotation_matrix((0, 10, -10)).ravel())),
        Ellipsoid((20, -35, -590), (65, 42, 42), tuple(rotation_matrix((0, -15, 10)).ravel())),
    )
    spleen = (Ellipsoid((100, 50, -585), (30, 52, 58), tuple(rotation_matrix((0, 15, -30)).ravel())),)
    organs = [_organ(rng, "liver", liver, Tissue.LIVER, 7.0), _organ(rng, "spleen", spleen, Tissue.SPLEEN, 4.0)]
    for name, side, z in (("kidney_left", 1, -665), ("kidney_right", -1, -685)):
        rot = tuple(rotation_matrix((0, side * 12, side * 10)).ravel())
        kidney = (Ellipsoid((side * 75, 62, z), (28, 30, 55), rot),)
        pelvis = (Ellipsoid((side * 66, 60, z), (9, 11, 22), rot),)
        organs.append(_organ(rng, name, kidney, Tissue.KIDNEY_CORTEX, 2.5, 0.1, pelvis, Tissue.KIDNEY_PELVIS))
    bladder = (Ellipsoid((0, -25, -870), (45, 40, 38)),)
    organs.append(_organ(rng, "bladder", bladder, Tissue.BLADDER, 4.0, scale=np.full(3, bladder_fill)))
    return organs


def _head(rng: np.random.Generator) -> list[Organ]:
    skull = (Ellipsoid((0, 5, -100), (73, 90, 76)),)
    brain = (Ellipsoid((0, 5, -100), (65, 82, 68)),)
    white = (Ellipsoid((0, 5, -100), (36, 45, 37)),)
    scale = rng.uniform(0.92, 1.08, 3)
    return [
        _organ(rng, "skull", skull, Tissue.BONE, 2.0, scale=scale),
        _organ(rng, "brain", brain, Tissue.BRAIN_GM, 2.0, inner=white, inner_tissue=Tissue.BRAIN_WM, scale=scale),
    ]


def _body(rng: np.random.Generator) -> Shape:
    trunk = Profile(
        z_knots=(-870, -800, -700, -600, -450, -330, -290, -250),
        rx_knots=(168, 172, 155, 150, 165, 172, 150, 58),
        ry_knots=(100, 108, 106, 108, 112, 105, 88, 58),
        y_center=12.0,
    )
    parts = (
        Ellipsoid((0, 5, -112), (78, 98, 114)),
        Capsule((0, 8, -200), (0, 12, -270), 56.0),
        trunk,
        Capsule((-88, 12, -830), (-98, 15, -1250), 82.0),
        Capsule((88, 12, -830), (98, 15, -1250), 82.0),
    )
    return Shape.random(parts, 4.0, rng)


def sample_patient(rng: np.random.Generator) -> Patient:
    """Draw one patient's anatomy (body frame) from ``rng``; the bladder fill is a study property, see paint."""
    body = _body(rng)
    lungs_aorta, heart = _thorax(rng)
    organs = _bones(rng) + _glands(rng) + lungs_aorta + _abdomen(rng, 1.0) + heart + _head(rng)
    girth = float(rng.uniform(0.88, 1.15))
    return Patient(
        body,
        tuple(organs),
        float(rng.uniform(6, 25) * girth),
        (girth, girth * rng.uniform(0.94, 1.06)),
        float(rng.uniform(0.93, 1.07)),
    )


def with_bladder_fill(patient: Patient, fill: float) -> Patient:
    """Copy of ``patient`` whose bladder is scaled by ``fill`` about its centre (a study property)."""
    organs = []
    for organ in patient.organs:
        if organ.name == "bladder":
            e = organ.shape.primitives[0]
            e = Ellipsoid(e.center, tuple(np.asarray(e.radii) * fill), e.rotation)
            organ = Organ(organ.name, Shape((e,), organ.shape.deform_mm, organ.shape.field), organ.tissue, organ.label)
        organs.append(organ)
    return Patient(patient.body, tuple(organs), patient.fat_mm, patient.girth, patient.height)


def make_grid(config: SyntheticConfig, rng: np.random.Generator) -> Grid:
    """Image grid centred near world (0, 0, -fov_z / 2); oblique configs get a rotation of 3-8 degrees per axis."""
    shape = np.asarray(config.grid_shape_xyz)
    spacing = np.asarray(config.grid_spacing)
    direction = np.eye(3)
    if config.oblique:
        direction = rotation_matrix(rng.uniform(3, 8, 3) * rng.choice([-1, 1], 3))
    center = np.array([rng.uniform(-20, 20), rng.uniform(-20, 20), -0.5 * shape[2] * spacing[2]])
    origin = center - direction @ (spacing * (shape - 1) / 2)
    return Grid(
        tuple(int(s) for s in shape),
        tuple(float(s) for s in spacing),
        tuple(float(o) for o in origin),
        tuple(float(d) for d in direction.ravel()),
    )


def make_placement(patient: Patient, grid: Grid, body_scale: float, rng: np.random.Generator) -> Placement:
    """Place the vertex just below the top of the field of view, centred in x/y, with a small random tilt."""
    extent = np.asarray(grid.shape_xyz) * np.asarray(grid.spacing)
    center = np.asarray(grid.origin) + grid.index_to_world @ ((np.asarray(grid.shape_xyz) - 1) / 2)
    top = center[2] + extent[2] / 2 - rng.uniform(0.03, 0.06) * extent[2]
    translation = (center[0] + rng.normal(0, 5), center[1] + rng.normal(0, 5), top)
    scale = body_scale * np.array([patient.girth[0], patient.girth[1], patient.height])
    rotation = rotation_matrix((rng.normal(0, 1.5), rng.normal(0, 1.0), rng.normal(0, 3.0)))
    return Placement(tuple(rotation.ravel()), tuple(float(s) for s in scale), tuple(float(t) for t in translation))


def paint(patient: Patient, sampler: Sampler) -> Anatomy:
    """Voxelise the patient: body (muscle + subcutaneous fat), then organs in order, each clipped to the body."""
    shape = sampler.grid.shape_zyx
    tissue = np.zeros(shape, np.uint8)
    labels = np.zeros(shape, np.uint8)
    body = np.zeros(shape, bool)
    hit = rasterize(patient.body, sampler)
    if hit is not None:
        crop, inside, level = hit
        body[crop] = inside
        tissue[crop][inside] = Tissue.MUSCLE
        tissue[crop][inside & (level > -patient.fat_mm)] = Tissue.FAT
    for organ in patient.organs:
        _paint_organ(organ, sampler, tissue, labels, body)
    return Anatomy(tissue, labels, body)


def _paint_organ(organ: Organ, sampler: Sampler, tissue: np.ndarray, labels: np.ndarray, body: np.ndarray) -> None:
    hit = rasterize(organ.shape, sampler)
    if hit is None:
        return
    crop, inside, _ = hit
    inside &= body[crop]
    tissue[crop][inside] = organ.tissue
    if organ.label:
        labels[crop][inside] = organ.label
    if organ.inner is not None:
        inner = rasterize(organ.inner, sampler)
        if inner is not None:
            icrop, iinside, _ = inner
            tissue[icrop][iinside & body[icrop]] = organ.inner_tissue
