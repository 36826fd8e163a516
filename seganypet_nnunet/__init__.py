"""seganypet_nnunet: promptable whole-body PET segmentation (SegAnyPET idea) built into nnU-Net v2.

Importing this package has no side effects: it patches nothing in nnU-Net and writes no environment variables.
"""

__version__ = "0.1.0"
