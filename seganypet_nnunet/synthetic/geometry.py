"""Image grid, patient placement and deformable shape primitives of the synthetic phantom.

Two frames are used here:
- **world** (DESIGN.md): (x, y, z) LPS in mm, the physical space of the written images;
- **body frame**: (x, y, z) LPS in mm of the unscaled adult reference patient, origin at the vertex of the head,
  z <= 0 towards the feet. ``Placement`` maps body frame -> world (scale, rotation, translation).

Shapes are level functions in the body frame (negative inside, roughly in mm) plus a low-frequency random
perturbation, so organs are smoothly deformed ellipsoids/capsules rather than plain ones. They are rasterised only
inside their bounding box on the target grid, so cost scales with organ size, not image size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

FIELD_NODES = 5  # coarse random nodes per axis of a shape's perturbation field
FIELD_CLIP = 2.5  # perturbation field values are clipped to +-FIELD_CLIP (unit standard deviation)


@dataclass(frozen=True)
class Grid:
    """The common voxel grid of PET, CT, labels and instances.

    Attributes:
        shape_xyz: voxels per axis, ITK order (x, y, z); numpy arrays on this grid have shape ``shape_zyx``.
        spacing: mm per voxel (x, y, z).
        origin: world mm of voxel (0, 0, 0).
        direction: 3 x 3 direction cosines, row-major as SimpleITK stores them (columns = grid axes in world).
    """

    shape_xyz: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...]

    @property
    def shape_zyx(self) -> tuple[int, int, int]:
        """Array (numpy) shape (z, y, x)."""
        return tuple(reversed(self.shape_xyz))

    @property
    def index_to_world(self) -> np.ndarray:
        """3 x 3 matrix M with world = origin + M @ (i, j, k), (i, j, k) an original-voxel index."""
        return np.asarray(self.direction, dtype=float).reshape(3, 3) @ np.diag(self.spacing)

    def to_image(self, array_zyx: np.ndarray) -> sitk.Image:
        """Wrap an array of shape (z, y, x) in a SimpleITK image with this grid's geometry."""
        image = sitk.GetImageFromArray(array_zyx)
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(self.direction)
        return image


def rotation_matrix(angles_deg: np.ndarray) -> np.ndarray:
    """Rotation matrix (3 x 3) of intrinsic rotations about x, y, z by ``angles_deg`` (degrees)."""
    ax, ay, az = np.deg2rad(np.asarray(angles_deg, dtype=float))
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


@dataclass(frozen=True)
class Placement:
    """Body frame -> world: ``world = rotation @ (scale * body) + translation`` (all mm, (x, y, z))."""

    rotation: tuple[float, ...]  # 9 values, row-major
    scale: tuple[float, float, float]
    translation: tuple[float, float, float]

    def body_to_world(self, points_body: np.ndarray) -> np.ndarray:
        """Map points (N, 3) from the body frame to world mm (N, 3)."""
        rot = np.asarray(self.rotation).reshape(3, 3)
        return (np.asarray(points_body) * np.asarray(self.scale)) @ rot.T + np.asarray(self.translation)


class Sampler:
    """Body-frame coordinates of grid voxels, for crops given as body-frame bounding boxes."""

    def __init__(self, grid: Grid, placement: Placement) -> None:
        rot = np.asarray(placement.rotation).reshape(3, 3)
        to_body = np.diag(1.0 / np.asarray(placement.scale)) @ rot.T
        self.grid = grid
        self.placement = placement
        #: body = linear @ (i, j, k) + offset for an original-voxel index (i, j, k).
        self.linear = to_body @ grid.index_to_world
        self.offset = to_body @ (np.asarray(grid.origin) - np.asarray(placement.translation))

    def crop(self, lo: np.ndarray, hi: np.ndarray) -> tuple[slice, slice, slice] | None:
        """Array slices (z, y, x) covering the body-frame box [lo, hi] (mm); None if outside the grid."""
        corners = np.array(np.meshgrid(*zip(lo, hi, strict=True), indexing="ij")).reshape(3, -1)
        index = np.linalg.solve(self.linear, corners - self.offset[:, None])
        start = np.maximum(np.floor(index.min(axis=1)).astype(int), 0)
        stop = np.minimum(np.ceil(index.max(axis=1)).astype(int) + 1, self.grid.shape_xyz)
        if np.any(stop <= start):
            return None
        return tuple(slice(int(a), int(b)) for a, b in zip(start[::-1], stop[::-1], strict=True))

    def coords(self, crop: tuple[slice, slice, slice]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Body-frame (x, y, z) mm of every voxel in ``crop``; three float32 arrays of the crop's (z, y, x) shape."""
        k, j, i = (np.arange(s.start, s.stop, dtype=np.float32) for s in crop)
        i, j, k = i[None, None, :], j[None, :, None], k[:, None, None]
        lin = self.linear.astype(np.float32)
        off = self.offset.astype(np.float32)
        return tuple(lin[m, 0] * i + lin[m, 1] * j + lin[m, 2] * k + off[m] for m in range(3))


@dataclass(frozen=True)
class Ellipsoid:
    """Ellipsoid in the body frame: centre (mm), semi-axes ``radii`` (mm), ``rotation`` (3 x 3 row-major)."""

    center: tuple[float, float, float]
    radii: tuple[float, float, float]
    rotation: tuple[float, ...] = (1, 0, 0, 0, 1, 0, 0, 0, 1)

    def level(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Approximate signed distance (mm, negative inside) at body-frame points."""
        rot = np.asarray(self.rotation, dtype=np.float32).reshape(3, 3)
        d = (x - self.center[0], y - self.center[1], z - self.center[2])
        u2 = sum(((rot[0, a] * d[0] + rot[1, a] * d[1] + rot[2, a] * d[2]) / self.radii[a]) ** 2 for a in range(3))
        return (np.sqrt(u2) - 1.0) * min(self.radii)

    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        """Body-frame axis-aligned bounding box (lo, hi) in mm."""
        rot = np.asarray(self.rotation).reshape(3, 3)
        half = np.sqrt((rot**2) @ np.asarray(self.radii) ** 2)
        return np.asarray(self.center) - half, np.asarray(self.center) + half


@dataclass(frozen=True)
class Capsule:
    """Segment ``p0``-``p1`` (body-frame mm) thickened by ``radius`` (mm)."""

    p0: tuple[float, float, float]
    p1: tuple[float, float, float]
    radius: float

    def level(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Signed distance (mm, negative inside)."""
        a, b = np.asarray(self.p0, np.float32), np.asarray(self.p1, np.float32)
        ab = b - a
        d = (x - a[0], y - a[1], z - a[2])
        t = np.clip((d[0] * ab[0] + d[1] * ab[1] + d[2] * ab[2]) / float(ab @ ab), 0.0, 1.0)
        dist2 = sum((d[m] - t * ab[m]) ** 2 for m in range(3))
        return np.sqrt(dist2) - self.radius

    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        """Body-frame bounding box (lo, hi) in mm."""
        pts = np.array([self.p0, self.p1])
        return pts.min(axis=0) - self.radius, pts.max(axis=0) + self.radius


@dataclass(frozen=True)
class Profile:
    """Trunk: elliptic cross-sections whose semi-axes are interpolated between z knots (body-frame mm)."""

    z_knots: tuple[float, ...]  # increasing
    rx_knots: tuple[float, ...]
    ry_knots: tuple[float, ...]
    y_center: float = 0.0

    def level(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Approximate signed distance (mm, negative inside); open-ended caps are flat."""
        rx = np.interp(z, self.z_knots, self.rx_knots).astype(np.float32)
        ry = np.interp(z, self.z_knots, self.ry_knots).astype(np.float32)
        radial = (np.sqrt((x / rx) ** 2 + ((y - self.y_center) / ry) ** 2) - 1.0) * np.minimum(rx, ry)
        half = 0.5 * (self.z_knots[-1] - self.z_knots[0])
        axial = np.abs(z - 0.5 * (self.z_knots[0] + self.z_knots[-1])) - half
        return np.maximum(radial, axial)

    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        """Body-frame bounding box (lo, hi) in mm."""
        rx, ry = max(self.rx_knots), max(self.ry_knots)
        lo = np.array([-rx, self.y_center - ry, self.z_knots[0]])
        hi = np.array([rx, self.y_center + ry, self.z_knots[-1]])
        return lo, hi


@dataclass(frozen=True, eq=False)
class Shape:
    """Union of primitives plus a smooth random perturbation of amplitude ``deform_mm``.

    Attributes:
        primitives: Ellipsoid / Capsule / Profile objects (body frame).
        deform_mm: standard deviation (mm) of the level perturbation; 0 keeps the primitives exact.
        field: (FIELD_NODES,)*3 unit-variance random nodes over the shape's bounding box, body axes (x, y, z).
    """

    primitives: tuple
    deform_mm: float = 0.0
    field: np.ndarray | None = None

    @classmethod
    def random(cls, primitives: tuple, deform_mm: float, rng: np.random.Generator) -> Shape:
        """A shape with a fresh random perturbation field drawn from ``rng``."""
        nodes = rng.standard_normal((FIELD_NODES,) * 3)
        fine = ndimage.zoom(nodes, 4, order=3, mode="nearest")
        return cls(tuple(primitives), float(deform_mm), (fine / max(fine.std(), 1e-6)).astype(np.float32))

    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        """Body-frame bounding box (lo, hi) in mm, including the largest perturbation."""
        boxes = [p.bbox() for p in self.primitives]
        margin = FIELD_CLIP * self.deform_mm
        return np.min([b[0] for b in boxes], axis=0) - margin, np.max([b[1] for b in boxes], axis=0) + margin

    def level(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Perturbed level (mm, negative inside) at body-frame points; arrays of one shape.

        The perturbation is added only within ``FIELD_CLIP * deform_mm`` of the unperturbed surface.
        """
        value = self.primitives[0].level(x, y, z)
        for prim in self.primitives[1:]:
            value = np.minimum(value, prim.level(x, y, z))
        if self.deform_mm > 0 and self.field is not None:
            # Only a band around the surface can change sign; the perturbation is skipped elsewhere (speed).
            band = np.abs(value) < FIELD_CLIP * self.deform_mm
            value = np.array(value, dtype=np.float32)
            value[band] += self.deform_mm * self._perturbation(x[band], y[band], z[band])
        return value

    def _perturbation(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        boxes = [p.bbox() for p in self.primitives]
        lo, hi = np.min([b[0] for b in boxes], axis=0), np.max([b[1] for b in boxes], axis=0)
        n = np.asarray(self.field.shape, dtype=np.float32) - 1
        coords = [(c - lo[a]) * (n[a] / max(hi[a] - lo[a], 1e-3)) for a, c in enumerate((x, y, z))]
        values = ndimage.map_coordinates(self.field, coords, order=1, mode="nearest")
        return np.clip(values, -FIELD_CLIP, FIELD_CLIP)


def rasterize(shape: Shape, sampler: Sampler) -> tuple[tuple[slice, slice, slice], np.ndarray, np.ndarray] | None:
    """Voxelise ``shape`` on the sampler's grid.

    Returns:
        (crop, inside, level): array slices (z, y, x) of the crop, boolean mask and level (mm) of the crop's
        (z, y, x) shape; None when the shape misses the grid.
    """
    crop = sampler.crop(*shape.bbox())
    if crop is None:
        return None
    level = shape.level(*sampler.coords(crop))
    return crop, level <= 0, level
