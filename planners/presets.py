"""Backbone size caps shared by our planners and their nnU-Net baselines (so a comparison is fair).

A preset only *caps* nnU-Net's self-configuration: spacing, topology, the VRAM-driven patch shrinking and the
batch size rule stay nnU-Net's own. The caps are read by ``PresetCapsMixin`` hooks; a variant is a few class
attributes.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class PresetCapsMixin:
    """Planner mixin: plans name from a class attribute, optional caps on patch, features, stages and batch.

    Put it before an ``ExperimentPlanner`` subclass in the bases. Class attributes (``None`` = nnU-Net default):

    Attributes:
        default_plans_name: plans identifier written when ``plans_name`` is not given (nnU-Net's
            ``-overwrite_plans_name`` still wins).
        patch_size_cap: upper bound of the 3d patch, in preprocessed (transposed) axis order. Applied by clipping the
            median shape nnU-Net starts its patch search from, so nnU-Net still pads to the pooling divisor.
        base_num_features: ``UNet_base_num_features`` (features of stage 0).
        max_num_features_3d: ``UNet_max_features_3d``.
        featuremap_min_edge_length: ``UNet_featuremap_min_edge_length``; with the patch cap it fixes the stage count
            (64 / 8 -> 4 stages, 32 / 4 -> 4 stages).
        max_batch_size: upper bound of the batch size nnU-Net derives from the VRAM estimate.
    """

    default_plans_name: str = "nnUNetPlans"
    patch_size_cap: tuple[int, int, int] | None = None
    base_num_features: int | None = None
    max_num_features_3d: int | None = None
    featuremap_min_edge_length: int | None = None
    max_batch_size: int | None = None

    def __init__(self, dataset_name_or_id: int | str, plans_name: str | None = None, **kwargs: Any) -> None:
        """Same arguments as nnU-Net's ``ExperimentPlanner`` (keywords, as ``plan_experiment_dataset`` passes them)."""
        super().__init__(dataset_name_or_id, plans_name=plans_name or self.default_plans_name, **kwargs)
        if self.base_num_features is not None:
            self.UNet_base_num_features = self.base_num_features
        if self.max_num_features_3d is not None:
            self.UNet_max_features_3d = self.max_num_features_3d
        if self.featuremap_min_edge_length is not None:
            self.UNet_featuremap_min_edge_length = self.featuremap_min_edge_length

    def get_plans_for_configuration(
        self, spacing, median_shape, data_identifier: str, approximate_n_voxels_dataset: float, _cache: dict
    ) -> dict:
        """nnU-Net's configuration planning with the patch and batch caps applied (3d only)."""
        search_shape = median_shape
        if self.patch_size_cap is not None and len(spacing) == 3:
            search_shape = np.minimum(np.asarray(median_shape), np.asarray(self.patch_size_cap))
        plan = super().get_plans_for_configuration(
            spacing, search_shape, data_identifier, approximate_n_voxels_dataset, _cache
        )
        plan["median_image_size_in_voxels"] = median_shape
        if self.max_batch_size is not None:
            plan["batch_size"] = min(plan["batch_size"], self.max_batch_size)
        return plan


class SmallPreset(PresetCapsMixin):
    """Demo size on CPU: patch <= 64^3, 4 stages, 16 -> 128 features (about 1.6 s per iteration on 2 cores)."""

    patch_size_cap = (64, 64, 64)
    base_num_features = 16
    max_num_features_3d = 128
    featuremap_min_edge_length = 8


class CpuReferencePreset(SmallPreset):
    """The reference run's CPU size (bench/bench_reference_model.py): the Small backbone, patch <= 48^3 and batch 2,
    so an iteration costs about what a demo iteration costs (nnU-Net would pick batch 11 for adult-sized datasets)."""

    patch_size_cap = (48, 48, 48)
    max_batch_size = 2


class TinyPreset(PresetCapsMixin):
    """Unit-test size: patch <= 32^3, 4 stages, 8 -> 64 features, batch 2."""

    patch_size_cap = (32, 32, 32)
    base_num_features = 8
    max_num_features_3d = 64
    featuremap_min_edge_length = 4
    max_batch_size = 2
