"""Experiment planners, installed as ``seganypet_nnunet.planners``.

``PLANNERS`` maps a preset name to (our planner class, the nnU-Net baseline planner class with the same backbone).
"""

from __future__ import annotations

from nnunetv2.experiment_planning.experiment_planners.default_experiment_planner import ExperimentPlanner
from nnunetv2.experiment_planning.experiment_planners.residual_unets.residual_encoder_unet_planners import (
    nnUNetPlannerResEncM,
)

from seganypet_nnunet.planners.baseline_planners import nnUNetPlannerCPU, nnUNetPlannerSmall, nnUNetPlannerTiny
from seganypet_nnunet.planners.sam_med3d_planner import SamMed3DPlanner, SamMed3DPlannerBatch1
from seganypet_nnunet.planners.seganypet_planner import (
    SegAnyPETPlanner,
    SegAnyPETPlannerCPU,
    SegAnyPETPlannerResEncM,
    SegAnyPETPlannerSmall,
    SegAnyPETPlannerTiny,
)

PLANNERS: dict[str, tuple[type[ExperimentPlanner], type[ExperimentPlanner]]] = {
    "SegAnyPETPlanner": (SegAnyPETPlanner, ExperimentPlanner),
    "SegAnyPETPlannerResEncM": (SegAnyPETPlannerResEncM, nnUNetPlannerResEncM),
    "SegAnyPETPlannerSmall": (SegAnyPETPlannerSmall, nnUNetPlannerSmall),
    "SegAnyPETPlannerTiny": (SegAnyPETPlannerTiny, nnUNetPlannerTiny),
    "SegAnyPETPlannerCPU": (SegAnyPETPlannerCPU, nnUNetPlannerCPU),
    "SamMed3DPlanner": (SamMed3DPlanner, ExperimentPlanner),
    "SamMed3DPlannerBatch1": (SamMed3DPlannerBatch1, ExperimentPlanner),
}


def get_planner_pair(name: str) -> tuple[type[ExperimentPlanner], type[ExperimentPlanner]]:
    """(our planner class, nnU-Net baseline planner class) for a preset name; KeyError lists the valid names."""
    if name not in PLANNERS:
        raise KeyError(f"unknown planner {name!r}; valid planners: {', '.join(PLANNERS)}")
    return PLANNERS[name]


__all__ = [
    "PLANNERS",
    "SamMed3DPlanner",
    "SamMed3DPlannerBatch1",
    "SegAnyPETPlanner",
    "SegAnyPETPlannerCPU",
    "SegAnyPETPlannerResEncM",
    "SegAnyPETPlannerSmall",
    "SegAnyPETPlannerTiny",
    "get_planner_pair",
    "nnUNetPlannerCPU",
    "nnUNetPlannerSmall",
    "nnUNetPlannerTiny",
]
