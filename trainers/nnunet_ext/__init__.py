"""Folder to name in ``nnUNet_extTrainer`` (nnU-Net 2.8+) so stock ``nnUNetv2_train -tr SegAnyPETTrainer`` finds us.

Only shim modules live here: nnU-Net imports every module of this folder as a top-level module, so each one just
re-exports the real classes (whose ``__module__`` stays inside seganypet_nnunet, so they pickle for workers).
"""
