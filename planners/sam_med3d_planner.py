"""SamMed3DPlanner: nnU-Net plans for the released SAM-Med3D / SegAnyPET weights (``SamMed3DNet``).

What the weights expect, planned instead of done by hand:

- **1.5 mm isotropic spacing** (``determine_fullres_target_spacing``), written by nnU-Net's own preprocessing;
- **no transpose** (``transpose_forward = [0, 1, 2]``): preprocessed arrays keep nnU-Net's (z, y, x) array order and
  ``SamMed3DNet`` reverses the axes to the weights' (x, y, z) itself (stated in its docstring);
- **128^3 patch**, batch size ``batch_size_cap``; only ``3d_fullres`` (no 2d, no lowres/cascade);
- **normalisation**: ``NoNormalization`` for the single PET channel; the per-crop z-score over voxels > 0 runs inside
  the network, so each 128^3 crop is normalised exactly as SAM-Med3D / SegAnyPET normalise theirs;
- **linear image resampling** (order 1, no separate-z), as upstream's torchio ``Resample`` (linear for images), and
  **nearest** resampling of the logits back to the original grid, as upstream resamples its thresholded mask;
- the architecture entry names ``SamMed3DNet`` by dotted path (``sam_med3d_architecture``).

``standalone_plans`` / ``standalone_dataset_json`` are the same plans without a dataset (one PET channel): the
zero-shot model folder of ``seganypet_import_checkpoint -o``, whose preprocessing depends on no dataset statistic.

Use through ``plan_experiment_dataset(dataset_id, SamMed3DPlanner)`` or ``seganypet_plan_and_preprocess -pl
SamMed3DPlanner`` (plans ``SamMed3DPlans``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from nnunetv2.experiment_planning.experiment_planners.default_experiment_planner import ExperimentPlanner

SAM_MED3D_SPACING_MM = 1.5
SAM_MED3D_PATCH = 128
STANDALONE_PLANS = "SamMed3DPlans"
LINEAR_IMAGE_RESAMPLING = {"is_seg": False, "order": 1, "order_z": 0, "force_separate_z": False}
#: logits back to the original grid: nearest, as upstream resamples its thresholded mask (nearest commutes with > 0)
NEAREST_LOGIT_RESAMPLING = {"is_seg": False, "order": 0, "order_z": 0, "force_separate_z": False}


class SamMed3DPlanner(ExperimentPlanner):
    """nnU-Net's default planner with SAM-Med3D's fixed spacing, patch and normalisation (module docstring).

    Attributes:
        default_plans_name: plans identifier when ``plans_name`` is not given.
        batch_size_cap: training batch size (SAM-Med3D fine-tunes with 2 per GPU; 1 on CPU is plenty).
    """

    default_plans_name = "SamMed3DPlans"
    batch_size_cap = 2

    def __init__(self, dataset_name_or_id: int | str, plans_name: str | None = None, **kwargs: Any) -> None:
        super().__init__(dataset_name_or_id, plans_name=plans_name or self.default_plans_name, **kwargs)
        self.lowres_creation_threshold = 0.0  # never plan 3d_lowres: the weights need 1.5 mm
        channels = self.dataset_json.get("channel_names", self.dataset_json.get("modality", {}))
        if len(channels) != 1:
            raise ValueError(
                f"{self.dataset_name}/dataset.json: channel_names has {len(channels)} channels; the released "
                "SAM-Med3D / SegAnyPET weights take exactly one (PET)"
            )

    def determine_fullres_target_spacing(self) -> np.ndarray:
        """1.5 mm isotropic, whatever the dataset's spacing."""
        return np.array([SAM_MED3D_SPACING_MM] * 3)

    def determine_transpose(self) -> tuple[list[int], list[int]]:
        """Identity: the network does its own (z, y, x) -> (x, y, z) reversal."""
        return [0, 1, 2], [0, 1, 2]

    def determine_normalization_scheme_and_whether_mask_is_used_for_norm(self) -> tuple[list[str], list[bool]]:
        """``NoNormalization`` without mask: the per-crop z-score is the network's first operation."""
        return ["NoNormalization"], [False]

    def generate_data_identifier(self, configuration_name: str) -> str:
        """Own identifier (own spacing and normalisation): never share another planner's preprocessed data."""
        return f"{self.plans_identifier}_{configuration_name}"

    def get_plans_for_configuration(
        self, spacing, median_shape, data_identifier: str, approximate_n_voxels_dataset: float, _cache: dict
    ) -> dict:
        """nnU-Net's plan, then the 3d one gets the 128^3 patch, the batch size cap and the SamMed3DNet entry."""
        from seganypet_nnunet.model.sam_med3d.network import sam_med3d_architecture

        plan = super().get_plans_for_configuration(
            spacing, median_shape, data_identifier, approximate_n_voxels_dataset, _cache
        )
        if len(spacing) == 3:
            plan["patch_size"] = [SAM_MED3D_PATCH] * 3
            plan["batch_size"] = self.batch_size_cap
            plan["architecture"] = sam_med3d_architecture()
            plan["resampling_fn_data_kwargs"] = dict(LINEAR_IMAGE_RESAMPLING)
            plan["resampling_fn_probabilities_kwargs"] = dict(NEAREST_LOGIT_RESAMPLING)
        return plan

    def save_plans(self, plans: dict) -> None:
        """Saves ``3d_fullres`` only (SamMed3DNet is 3d, 1.5 mm)."""
        for name in [c for c in plans["configurations"] if c != "3d_fullres"]:
            plans["configurations"].pop(name)
        super().save_plans(plans)


class SamMed3DPlannerBatch1(SamMed3DPlanner):
    """Batch size 1 (CPU fine-tuning and tests)."""

    default_plans_name = "SamMed3DPlansB1"
    batch_size_cap = 1


def standalone_dataset_json() -> dict:
    """dataset.json of a zero-shot model folder: one PET channel, one foreground label (a promptable target)."""
    return {
        "channel_names": {"0": "PET"},
        "labels": {"background": 0, "target": 1},
        "numTraining": 0,
        "file_ending": ".nii.gz",
        "name": "SegAnyPETZeroShot",
        "description": "released SAM-Med3D / SegAnyPET weights, zero-shot (seganypet_import_checkpoint -o)",
    }


def standalone_plans(batch_size: int = 1) -> dict:
    """``SamMed3DPlanner``'s plans without a dataset: 1.5 mm, 128^3, no transpose, NoNormalization, linear image
    resampling; the median shape/spacing fields (used by nothing at inference) are the patch at 1.5 mm."""
    from seganypet_nnunet.model.sam_med3d.network import sam_med3d_architecture

    spacing, patch = [SAM_MED3D_SPACING_MM] * 3, [SAM_MED3D_PATCH] * 3
    seg_kwargs = {"is_seg": True, "order": 1, "order_z": 0, "force_separate_z": None}
    configuration = {
        "data_identifier": f"{STANDALONE_PLANS}_3d_fullres",
        "preprocessor_name": "DefaultPreprocessor",
        "batch_size": batch_size,
        "patch_size": patch,
        "median_image_size_in_voxels": [float(p) for p in patch],
        "spacing": spacing,
        "normalization_schemes": ["NoNormalization"],
        "use_mask_for_norm": [False],
        "resampling_fn_data": "resample_data_or_seg_to_shape",
        "resampling_fn_seg": "resample_data_or_seg_to_shape",
        "resampling_fn_data_kwargs": dict(LINEAR_IMAGE_RESAMPLING),
        "resampling_fn_seg_kwargs": seg_kwargs,
        "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
        "resampling_fn_probabilities_kwargs": dict(NEAREST_LOGIT_RESAMPLING),
        "architecture": sam_med3d_architecture(),
        "batch_dice": False,
    }
    return {
        "dataset_name": "Dataset000_SegAnyPETZeroShot",
        "plans_name": STANDALONE_PLANS,
        "original_median_spacing_after_transp": spacing,
        "original_median_shape_after_transp": patch,
        "image_reader_writer": "SimpleITKIO",
        "transpose_forward": [0, 1, 2],
        "transpose_backward": [0, 1, 2],
        "configurations": {"3d_fullres": configuration},
        "experiment_planner_used": "SamMed3DPlanner",
        "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {"0": {}},  # NoNormalization reads none
    }
