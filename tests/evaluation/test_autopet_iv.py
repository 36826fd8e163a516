"""autoPET IV protocol runner: click order (tumour k then background k per step), carried steps, both click-JSON forms.
The end-to-end run with the real session is in test_protocols.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from protocol_prompters import CubePrompter

from seganypet_nnunet.evaluation.autopet_iv import read_clicks, run_click_steps

SHAPE = (6, 8, 12)  # (z, y, x)


def test_click_steps_pair_tumour_and_background_in_file_order():
    p = CubePrompter()
    initial = np.zeros(SHAPE, bool)
    initial[0, 0, 0] = True
    tumour = [(5.0, 4.0, 2.0), (1.0, 1.0, 1.0), (9.0, 6.0, 4.0)]  # (i, j, k) = (x, y, z)
    background = [(5.0, 4.0, 2.0)]
    masks = run_click_steps(p, initial, tumour, background, n_steps=5)
    assert p.log == [
        ("start", 1),
        ("click", (5.0, 4.0, 2.0), True),
        ("click", (5.0, 4.0, 2.0), False),  # step 1 = tumour 1 then background 1
        ("click", (1.0, 1.0, 1.0), True),  # step 2
        ("click", (9.0, 6.0, 4.0), True),  # step 3; step 4 has no click left
    ]
    assert len(masks) == 5 and masks[0].sum() == 1
    assert masks[1].sum() == 1  # the cube set by the tumour click was cleared by the background click
    assert masks[2][0:3, 0:3, 0:3].all() and masks[3][3:6, 5:8, 8:11].all()
    np.testing.assert_array_equal(masks[4], masks[3])


def test_read_clicks_both_forms(tmp_path: Path):
    img = sitk.Image([12, 8, 6], sitk.sitkUInt8)  # ITK size (i, j, k)
    repo = {"tumor": [[5, 4, 2], [1, 1, 1]], "background": [[11, 7, 5]]}
    gc = {
        "version": {"major": 1, "minor": 0},
        "type": "Multiple points",
        "points": [
            {"point": [5, 4, 2], "name": "tumor"},
            {"point": [11, 7, 5], "name": "background"},
            {"point": [1, 1, 1], "name": "tumor"},
        ],
    }
    for name, doc in (("repo.json", repo), ("gc.json", gc)):
        (tmp_path / name).write_text(json.dumps(doc))
        assert read_clicks(tmp_path / name, img) == ([(5, 4, 2), (1, 1, 1)], [(11, 7, 5)])
    (tmp_path / "bad.json").write_text(json.dumps({"tumor": [[12, 0, 0]]}))
    with pytest.raises(ValueError, match="outside the image"):
        read_clicks(tmp_path / "bad.json", img)
