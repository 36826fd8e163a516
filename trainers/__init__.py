"""nnU-Net trainer subclasses, installed as ``seganypet_nnunet.trainers``."""
