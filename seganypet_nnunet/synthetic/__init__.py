"""Synthetic whole-body PET phantoms (anatomy, FDG/PSMA uptake, lesions, PSF, noise, optional CT) and an nnU-Net
raw dataset writer. Deterministic per seed; no downloads.

Example:
    >>> from seganypet_nnunet.synthetic import SyntheticConfig, make_case
    >>> case = make_case(0, SyntheticConfig(size="small"))
"""

from seganypet_nnunet.synthetic.case import SyntheticCase, make_case
from seganypet_nnunet.synthetic.config import AUTOPET_SPACING, LABELS, SyntheticConfig
from seganypet_nnunet.synthetic.dataset import case_identifier, make_dataset

__all__ = [
    "AUTOPET_SPACING",
    "LABELS",
    "SyntheticCase",
    "SyntheticConfig",
    "case_identifier",
    "make_case",
    "make_dataset",
]
