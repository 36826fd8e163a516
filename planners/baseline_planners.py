"""nnU-Net baselines with the same backbone caps as our Small/Tiny presets (stock network, stock normalisation).

They plan stock ``PlainConvUNet`` plans from the same fingerprint, so a baseline trained on them sees the same
cases, spacing and backbone size as the matching ``SegAnyPETPlanner*``.
"""

from __future__ import annotations

from nnunetv2.experiment_planning.experiment_planners.default_experiment_planner import ExperimentPlanner

from seganypet_nnunet.planners.presets import CpuReferencePreset, SmallPreset, TinyPreset


class nnUNetPlannerSmall(SmallPreset, ExperimentPlanner):  # noqa: N801 (nnU-Net naming)
    """Stock nnU-Net planner with the SegAnyPETPlannerSmall backbone caps; plans ``nnUNetPlansSmall``."""

    default_plans_name = "nnUNetPlansSmall"


class nnUNetPlannerTiny(TinyPreset, ExperimentPlanner):  # noqa: N801 (nnU-Net naming)
    """Stock nnU-Net planner with the SegAnyPETPlannerTiny backbone caps; plans ``nnUNetPlansTiny``."""

    default_plans_name = "nnUNetPlansTiny"


class nnUNetPlannerCPU(CpuReferencePreset, ExperimentPlanner):  # noqa: N801 (nnU-Net naming)
    """Stock nnU-Net planner with the SegAnyPETPlannerCPU caps; plans ``nnUNetPlansCPU``."""

    default_plans_name = "nnUNetPlansCPU"
