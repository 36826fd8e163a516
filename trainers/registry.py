"""Explicit registry of the trainer classes our launchers accept (no lookup by name inside nnunetv2)."""

from __future__ import annotations

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from seganypet_nnunet.trainers import SamMed3DTrainer, baselines, cpcl, prompt_cost, variants
from seganypet_nnunet.trainers.SegAnyPETTrainer import SegAnyPETTrainer


def _classes(module) -> dict[str, type[nnUNetTrainer]]:
    return {
        k: v
        for k, v in vars(module).items()
        if isinstance(v, type) and issubclass(v, nnUNetTrainer) and v.__module__ == module.__name__
    }


TRAINERS: dict[str, type[nnUNetTrainer]] = {
    "nnUNetTrainer": nnUNetTrainer,
    "SegAnyPETTrainer": SegAnyPETTrainer,
    **_classes(variants),
    **_classes(baselines),
    **_classes(SamMed3DTrainer),
    **_classes(prompt_cost),
    **_classes(cpcl),
}


def get_trainer_class(name: str) -> type[nnUNetTrainer]:
    """The registered trainer class called ``name``; KeyError listing the valid names otherwise."""
    if name not in TRAINERS:
        raise KeyError(f"unknown trainer {name!r}; valid names: {', '.join(sorted(TRAINERS))}")
    return TRAINERS[name]


def heldout_labels(trainer_name: str) -> tuple[str, ...]:
    """Label names the registered trainer ``trainer_name`` never used as prompt targets (empty if none or unknown)."""
    return tuple(getattr(TRAINERS.get(trainer_name), "heldout_labels", ()))
