"""seganypet_make_synthetic's preset / tracer / spacing flags (the existing flags keep their meaning)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
from bad_files import assert_one_line_error, run_entry, snapshot

from seganypet_nnunet.synthetic.cli import build_parser, config_kwargs, make_synthetic_entry
from seganypet_nnunet.synthetic.config import AUTOPET_SPACING, SyntheticConfig

CMD = "seganypet_make_synthetic"


def _config(*flags: str) -> SyntheticConfig:
    return SyntheticConfig(**config_kwargs(build_parser().parse_args(["-d", "950", *flags])))


def test_defaults_and_old_flags_unchanged():
    assert _config() == SyntheticConfig(size="whole_body")
    assert _config("--small", "--psma") == SyntheticConfig(size="small", tracer="psma")
    assert _config("--autopet_spacing", "-max_lesions", "2").spacing == AUTOPET_SPACING
    assert _config("-max_lesions", "2").max_lesions == 2


def test_adult_preset_tracer_spacing():
    config = _config("-preset", "adult", "--tracer", "psma", "--spacing", "2.04", "2.04", "3")
    assert config.size == "whole_body" and config.lesion_population == "oncologic" and config.tracer == "psma"
    assert config.spacing == (2.04, 2.04, 3.0) and config.lesion_diameter_mm == (5.0, 80.0)
    assert config.max_lesions == 8 and _config("-preset", "adult", "-max_lesions", "3").max_lesions == 3


def test_cli_writes_adult_dataset(tmp_path):
    args = ["-d", "951", "-preset", "adult", "--spacing", "6", "6", "6", "-num_train", "1", "-num_test", "0"]
    make_synthetic_entry([*args, "-seed", "4", "-o", str(tmp_path)])
    folder = tmp_path / "Dataset951_SyntheticPET"
    pet = sitk.ReadImage(str(folder / "imagesTr" / "SYN000_BL_0000.nii.gz"))
    assert np.allclose(pet.GetSpacing(), (6, 6, 6))
    truth = json.loads((folder / "truth" / "SYN000_BL.json").read_text())
    assert truth["lesion_population"] == "oncologic" and "TONSIL" in truth["tissue_suv"]


@pytest.mark.parametrize(
    "extra,expect",
    [
        (["-preset", "adult", "--small"], "-preset adult: conflicts with --small"),
        (["--tracer", "fdg", "--psma"], "--tracer fdg: conflicts with --psma"),
        (["--spacing", "2", "2", "3", "--autopet_spacing"], "--spacing: conflicts with --autopet_spacing"),
        (["--spacing", "2", "0", "3"], "--spacing 2.0 0.0 3.0: must be three positive mm values"),
    ],
)
def test_bad_combinations_one_line_nothing_written(tmp_path, capsys, extra, expect):
    before = snapshot(tmp_path)
    code, err = run_entry(make_synthetic_entry, ["-d", "950", "-num_train", "1", "-o", tmp_path / "o", *extra], capsys)
    assert_one_line_error(code, err, CMD, expect)
    assert snapshot(tmp_path) == before
