"""Experiment planners, installed as ``seganypet_nnunet.planners``."""
