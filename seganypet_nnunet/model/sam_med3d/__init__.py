"""The released SAM-Med3D / SegAnyPET ``vit_b_ori`` network (checkpoint-compatible), behind our network contract."""

from seganypet_nnunet.model.sam_med3d.network import (
    SamMed3DConfig,
    SamMed3DEmbedding,
    SamMed3DNet,
    sam_med3d_architecture,
    zscore_crop,
)

__all__ = ["SamMed3DConfig", "SamMed3DEmbedding", "SamMed3DNet", "sam_med3d_architecture", "zscore_crop"]
