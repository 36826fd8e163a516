"""Dataset converters (nnU-Net style ``DatasetXXX_Name.py``), installed as ``seganypet_nnunet.dataset_conversion``."""
