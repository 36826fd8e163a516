"""SegAnyPETPlanner: nnU-Net's self-configuration on the dataset fingerprint, planned for ``SegAnyPETNet``.

Spacing, transpose, topology, patch shrinking and batch size are nnU-Net's own (parent ``ExperimentPlanner``); the
hooks below only (1) choose the normalisation of PET channels, (2) run nnU-Net's VRAM estimate on our network,
(3) wrap the planned U-Net into the ``SegAnyPETNet`` architecture entry, (4) drop the 2d configuration.
Use through ``plan_experiment_dataset(dataset_id, SegAnyPETPlanner)`` (class object; nnU-Net's ``-pl`` lookup by name
only searches inside nnunetv2).
"""

from __future__ import annotations

import math
import warnings

from nnunetv2.experiment_planning.experiment_planners.default_experiment_planner import ExperimentPlanner
from nnunetv2.experiment_planning.experiment_planners.residual_unets.residual_encoder_unet_planners import (
    nnUNetPlannerResEncM,
)

from seganypet_nnunet.defaults import DEFAULT_PLANS
from seganypet_nnunet.model.image_encoder import token_level
from seganypet_nnunet.planners.presets import CpuReferencePreset, PresetCapsMixin, SmallPreset, TinyPreset

PET_CHANNEL_NAMES = ("pet", "suv", "pt")
PET_NORMALIZATION = "NoNormalization"
PET_INPUT_TRANSFORM = "log1p_suv"


def is_pet_channel(channel_name: str) -> bool:
    """True for dataset.json channel names ``PET``, ``SUV``, ``PT`` (case-insensitive, surrounding spaces ignored)."""
    return channel_name.strip().lower() in PET_CHANNEL_NAMES


class SegAnyPETPlanner(PresetCapsMixin, ExperimentPlanner):
    """nnU-Net's default planner, planning ``SegAnyPETNet`` on a ``PlainConvUNet`` backbone (plans ``SegAnyPETPlans``).

    Normalisation: PET channels (names ``PET``, ``SUV``, ``PT``) are planned as nnU-Net's ``NoNormalization`` without
    mask, and the network applies a fixed ``log1p(max(SUV, 0))`` first (``input_transforms`` ``"log1p_suv"``). SUV is
    already a quantitative cross-patient scale: nnU-Net's fallback for "PET" (per-case z-score) throws it away, and
    ``CTNormalization`` clips at the 99.5th foreground percentile, which cuts hot lesion cores (nnU-Net #1872, #2985).
    A custom normalisation class is not an option: nnU-Net resolves schemes by name inside nnunetv2, also in spawned
    workers and at inference. CT channels keep ``CTNormalization``; other channels keep nnU-Net's mapping.

    Class attributes read by the hooks (variants set them): ``promptable_preset`` (name in ``MODEL_CONFIGS``) plus the
    ``PresetCapsMixin`` caps.
    """

    default_plans_name = DEFAULT_PLANS
    promptable_preset = "default"

    def channel_names(self) -> list[str]:
        """dataset.json channel names in channel order (``_0000``, ``_0001``, ...)."""
        names = self.dataset_json.get("channel_names", self.dataset_json.get("modality", {}))
        return [names[key] for key in sorted(names, key=int)]

    def input_transforms(self) -> list[str]:
        """Per-channel transform the network applies first: ``"log1p_suv"`` for PET, ``"identity"`` otherwise."""
        return [PET_INPUT_TRANSFORM if is_pet_channel(n) else "identity" for n in self.channel_names()]

    def token_stride(self) -> int:
        """``PromptableConfig.token_stride`` of ``promptable_preset``."""
        from seganypet_nnunet.model.config import get_model_config

        return get_model_config(self.promptable_preset).token_stride

    def determine_normalization_scheme_and_whether_mask_is_used_for_norm(self) -> tuple[list[str], list[bool]]:
        """nnU-Net's mapping, with PET channels replaced by ``NoNormalization`` / no mask (see class docstring)."""
        schemes, use_mask = super().determine_normalization_scheme_and_whether_mask_is_used_for_norm()
        schemes, use_mask = list(schemes), list(use_mask)
        for channel, name in enumerate(self.channel_names()):
            if is_pet_channel(name):
                schemes[channel], use_mask[channel] = PET_NORMALIZATION, False
        return schemes, use_mask

    def generate_data_identifier(self, configuration_name: str) -> str:
        """Own identifier: the PET normalisation differs, so never share nnU-Net's preprocessed data (ResEnc does)."""
        return f"{self.plans_identifier}_{configuration_name}"

    def wrap_architecture(self, backbone: dict) -> dict:
        """Turns nnU-Net's planned U-Net ``architecture`` entry into the ``SegAnyPETNet`` entry (DESIGN.md contract).

        Args:
            backbone: nnU-Net's entry, ``{"network_class_name": dotted U-Net class, "arch_kwargs": {...},
                "_kw_requires_import": [...]}``.
        """
        from seganypet_nnunet.model.network import build_arch_kwargs

        return build_arch_kwargs(backbone, self.promptable_preset, self.input_transforms())

    def static_estimate_VRAM_usage(
        self,
        patch_size,
        input_channels: int,
        output_channels: int,
        arch_class_name: str,
        arch_kwargs: dict,
        arch_kwargs_req_import,
    ) -> int:  # noqa: N802 (nnU-Net's name)
        """nnU-Net's VRAM proxy, computed on ``SegAnyPETNet`` (3d; 2d: the U-Net's) by the parent's own method.

        The parent sets ``torch.set_num_threads(nnUNet_n_proc_DA)``, which raises for 0: planning runs inside
        ``run.plan_and_preprocess.planning_thread_setting`` (the one place that handles it, also for stock planners).
        """
        if len(patch_size) == 3:
            wrapped = self.wrap_architecture(
                {
                    "network_class_name": arch_class_name,
                    "arch_kwargs": arch_kwargs,
                    "_kw_requires_import": arch_kwargs_req_import,
                }
            )
            arch_class_name, arch_kwargs = wrapped["network_class_name"], wrapped["arch_kwargs"]
        return int(
            ExperimentPlanner.static_estimate_VRAM_usage(
                patch_size, input_channels, output_channels, arch_class_name, arch_kwargs, arch_kwargs_req_import
            )
        )

    def get_plans_for_configuration(
        self, spacing, median_shape, data_identifier: str, approximate_n_voxels_dataset: float, _cache: dict
    ) -> dict:
        """nnU-Net's plan for one configuration; 3d plans get the ``SegAnyPETNet`` architecture, token grid checked."""
        plan = super().get_plans_for_configuration(
            spacing, median_shape, data_identifier, approximate_n_voxels_dataset, _cache
        )
        if len(spacing) == 3:
            plan["architecture"] = self.wrap_architecture(plan["architecture"])
            self.check_token_grid(plan["patch_size"], plan["architecture"]["arch_kwargs"]["strides"], data_identifier)
        return plan

    def check_token_grid(self, patch_size, strides: list, data_identifier: str) -> None:
        """Verifies that ``patch_size`` tiles exactly into the decoder's token grid (and warns if it is finer).

        Raises:
            RuntimeError: the patch is not divisible by the cumulative stride of the token level.
        """
        token_stride = self.token_stride()
        level, stride = token_level(strides, token_stride)
        if any(int(p) % s for p, s in zip(patch_size, stride, strict=True)):
            raise RuntimeError(
                f"{data_identifier}: patch {list(patch_size)} is not divisible by the token-level "
                f"stride {list(stride)}; the prompt token grid would not tile the patch"
            )
        if math.prod(stride) < token_stride ** len(stride):
            warnings.warn(
                f"{data_identifier}: patch {list(patch_size)} has no level with stride >= {token_stride}; "
                f"tokens come from the bottleneck (stride {list(stride)}, grid "
                f"{[int(p) // s for p, s in zip(patch_size, stride, strict=True)]})",
                stacklevel=2,
            )

    def save_plans(self, plans: dict) -> None:
        """Saves without the 2d configuration (SegAnyPETNet is 3d only)."""
        plans["configurations"].pop("2d", None)
        super().save_plans(plans)


class SegAnyPETPlannerSmall(SmallPreset, SegAnyPETPlanner):
    """CPU demo size (patch <= 64^3, 16 -> 128 features, 4 stages), promptable "small"; baseline nnUNetPlannerSmall."""

    default_plans_name = "SegAnyPETPlansSmall"
    promptable_preset = "small"


class SegAnyPETPlannerCPU(CpuReferencePreset, SegAnyPETPlanner):
    """The reference run on a 2-core CPU (patch <= 48^3, batch 2, Small backbone); baseline nnUNetPlannerCPU."""

    default_plans_name = "SegAnyPETPlansCPU"
    promptable_preset = "small"


class SegAnyPETPlannerTiny(TinyPreset, SegAnyPETPlanner):
    """Unit-test size (patch <= 32^3, 8 -> 64 features, batch 2), promptable ``"tiny"``; baseline nnUNetPlannerTiny."""

    default_plans_name = "SegAnyPETPlansTiny"
    promptable_preset = "tiny"


class SegAnyPETPlannerResEncM(SegAnyPETPlanner, nnUNetPlannerResEncM):
    """nnU-Net's ResEnc M preset (ResidualEncoderUNet backbone, 8 GB target), planned for SegAnyPETNet."""

    default_plans_name = "SegAnyPETResEncUNetMPlans"
