"""Type aliases for 3D geometry; every use states its axis order and coordinate space in its docstring."""

from __future__ import annotations

from typing import Tuple

Shape3D = Tuple[int, int, int]
Spacing3D = Tuple[float, float, float]
Point3D = Tuple[float, float, float]
#: (start, stop) per axis, half-open, in the axis order of the array it indexes.
BBox3D = Tuple[Tuple[int, int], Tuple[int, int], Tuple[int, int]]
