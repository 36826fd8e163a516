"""The one bounds rule for prompts, shared by the session, prompt files and autoPET click files (docs/coordinates.md).

Below every stage that checks prompts (dataset conversion, inference), so each can use it without importing the other.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def inside_image(points_ijk: Sequence[float] | np.ndarray, size_ijk: Sequence[int]) -> np.ndarray:
    """The one bounds rule for prompts: a point is inside when it lies in the image's physical extent.

    With voxel centres at integer indices, voxel ``n`` covers ``[n - 0.5, n + 0.5]``; so a point is inside when
    ``-0.5 <= c <= size - 0.5`` along every axis (boundaries included).

    Args:
        points_ijk: (3,) or (N, 3) original voxel ITK index (i, j, k), float.
        size_ijk: (3,) image size in ITK order (i, j, k).
    Returns:
        bool, shape () or (N,).
    """
    arr = np.asarray(points_ijk, dtype=float)
    size = np.asarray(size_ijk, dtype=float)
    return ((arr >= -0.5) & (arr <= size - 0.5)).all(axis=-1)
