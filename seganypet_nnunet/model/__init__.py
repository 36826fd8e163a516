"""Promptable SegAnyPET network components (SAM-style) around an nnU-Net-planned U-Net."""

from seganypet_nnunet.model.config import MODEL_CONFIGS, PromptableConfig, get_model_config
from seganypet_nnunet.model.image_encoder import UNetImageEncoder, run_unet_decoder
from seganypet_nnunet.model.mask_decoder import MaskDecoder3D
from seganypet_nnunet.model.network import (
    ImageEmbedding,
    SegAnyPETNet,
    build_arch_kwargs,
    build_network_from_arch,
    build_tiny_network,
    plain_unet_arch,
)
from seganypet_nnunet.model.prompt_encoder import PositionEmbeddingRandom3D, PromptEncoder3D
from seganypet_nnunet.model.transformer import TwoWayTransformer

__all__ = [
    "MODEL_CONFIGS",
    "PromptableConfig",
    "get_model_config",
    "UNetImageEncoder",
    "run_unet_decoder",
    "MaskDecoder3D",
    "ImageEmbedding",
    "SegAnyPETNet",
    "build_arch_kwargs",
    "build_network_from_arch",
    "build_tiny_network",
    "plain_unet_arch",
    "PositionEmbeddingRandom3D",
    "PromptEncoder3D",
    "TwoWayTransformer",
]
