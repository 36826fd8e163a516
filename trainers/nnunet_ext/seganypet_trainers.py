"""Shim for ``nnUNet_extTrainer``: re-exports our trainer classes (their ``__module__`` stays in seganypet_nnunet)."""

from seganypet_nnunet.trainers.baselines import *  # noqa: F401,F403
from seganypet_nnunet.trainers.cpcl import *  # noqa: F401,F403
from seganypet_nnunet.trainers.SegAnyPETTrainer import SegAnyPETTrainer  # noqa: F401
from seganypet_nnunet.trainers.variants import *  # noqa: F401,F403
