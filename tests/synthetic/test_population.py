"""The oncologic lesion population of the ``adult`` preset (population.py) on real generated cases."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from seganypet_nnunet.synthetic import LABELS, SyntheticConfig, make_case
from seganypet_nnunet.synthetic.anatomy import sample_patient
from seganypet_nnunet.synthetic.config import AUTOPET_SPACING, PRESETS
from seganypet_nnunet.synthetic.population import necrosis_probability, sample_population
from seganypet_nnunet.synthetic.uptake import PROFILES

ADULT = {tracer: SyntheticConfig(**PRESETS["adult"], tracer=tracer) for tracer in ("fdg", "psma")}
SEEDS = {"fdg": range(6), "psma": range(3)}


@pytest.fixture(scope="module")
def adult_cases():
    """(tracer, seed, case, pet, labels, instances) of the adult preset at 4 mm; arrays (z, y, x)."""
    out = []
    for tracer, seeds in SEEDS.items():
        for seed in seeds:
            case = make_case(seed, ADULT[tracer])
            arrays = (sitk.GetArrayFromImage(x) for x in (case.pet, case.labels, case.instances))
            out.append((tracer, seed, case, *arrays))
    return out


def _records(adult_cases):
    return [(r, pet, labels, inst) for _, _, case, pet, labels, inst in adult_cases for r in case.truth["lesions"]]


def test_adult_preset_grids():
    assert ADULT["fdg"].grid_shape_xyz == (128, 128, 250)
    autopet = SyntheticConfig(**PRESETS["adult"], spacing=AUTOPET_SPACING)
    assert autopet.grid_shape_xyz == (252, 252, 334) and autopet.lesion_population == "oncologic"
    assert SyntheticConfig().lesion_population == "basic"  # the default generator is unchanged
    with pytest.raises(ValueError, match="lesion_population"):
        SyntheticConfig(lesion_population="miliary")


@pytest.mark.parametrize("tracer", ["fdg", "psma"])
def test_sampled_diameters_span_5_to_80_mm_and_all_size_classes(tracer):
    rng = np.random.default_rng(0)
    patient = sample_patient(np.random.default_rng(1))
    lesions = [
        lesion
        for _ in range(300)
        for lesion in sample_population(patient, ADULT[tracer], PROFILES[tracer], 1.0, rng)
    ]  # fmt: skip
    d = np.array([lesion.diameter_mm for lesion in lesions])
    assert d.min() >= 5.0 and d.max() <= 80.0
    ml = np.pi / 6 * d**3 / 1000.0  # sphere of that diameter
    assert (ml < 10).mean() > 0.4 and ((ml >= 10) & (ml <= 50)).sum() > 10 and (ml > 50).sum() > 3
    assert any(lesion.necrotic for lesion in lesions) and any(lesion.heterogeneous for lesion in lesions)
    assert not any(lesion.necrotic for lesion in lesions if lesion.diameter_mm < 20)
    assert necrosis_probability(10) == 0 and necrosis_probability(80) == pytest.approx(0.6)
    if tracer == "psma":  # prostate-cancer pattern: bone marrow and the bladder neighbourhood, no head-and-neck
        sites = {lesion.site.split("_")[0] for lesion in lesions}
        assert {"marrow", "bladder", "node"} <= sites and "head" not in sites


def test_labels_match_images_and_lesions_are_hot(adult_cases):
    for _, _, case, _pet, labels, inst in adult_cases:
        assert np.array_equal(inst > 0, labels == LABELS["lesion"])
        records = case.truth["lesions"]
        assert list(np.unique(inst[inst > 0])) == list(range(1, len(records) + 1))
        voxel_ml = np.prod(case.pet.GetSpacing()) / 1000.0
        for r in records:
            assert (inst == r["id"]).sum() * voxel_ml == pytest.approx(r["volume_ml"], abs=1e-3)
            assert 5.0 <= r["diameter_mm"] <= 80.0
    solid = [pet[inst == r["id"]].max() for r, pet, _, inst in _records(adult_cases) if r["diameter_mm"] > 15]
    background = np.median(adult_cases[0][3][adult_cases[0][4] == 0])
    assert solid and np.median(solid) > 3 * background


def test_necrotic_lesion_innermost_voxel_is_cold(adult_cases):
    necrotic = [(r, pet, inst) for r, pet, _, inst in _records(adult_cases) if r["necrotic"]]
    assert len(necrotic) >= 2
    for r, pet, inst in necrotic:
        mask = inst == r["id"]
        edt = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1, 1:-1]
        z, y, x = np.unravel_index(int(np.argmax(edt)), mask.shape)  # where autoPET IV puts the first click
        rim = np.percentile(pet[mask], 90)
        assert r["innermost_in_core"]
        assert pet[z, y, x] < 0.5 * rim, (r, pet[z, y, x], rim)


def test_some_lesions_touch_organs(adult_cases):
    touching = set()
    for r, _, labels, inst in _records(adult_cases):
        mask = inst == r["id"]
        ring = ndimage.binary_dilation(mask) & ~mask
        organs = {int(v) for v in np.unique(labels[ring]) if v not in (0, LABELS["lesion"])}
        assert {LABELS[name] for name in r["touches"]} <= organs
        touching |= organs
    assert len(touching) >= 2, touching


def test_cluster_nodes_touch_each_other(adult_cases):
    clusters = 0
    for _, _, case, _, _, inst in adult_cases:
        groups: dict[int, list[int]] = {}
        for r in case.truth["lesions"]:
            if r["cluster"] is not None:
                groups.setdefault(r["cluster"], []).append(r["id"])
        for ids in (g for g in groups.values() if len(g) > 1):
            clusters += 1
            members = np.isin(inst, ids)
            labelled, n = ndimage.label(members, structure=np.ones((3, 3, 3)))
            assert n == 1, f"cluster {ids} falls apart into {n} pieces"
            for i in ids:
                mask = inst == i
                neighbours = set(np.unique(inst[ndimage.binary_dilation(mask, np.ones((3, 3, 3))) & ~mask]))
                assert neighbours & (set(ids) - {i}), (i, ids)
    assert clusters >= 2


def test_deterministic_by_seed():
    config = ADULT["psma"]
    a, b = make_case(2, config), make_case(2, config)
    for name in ("pet", "labels", "instances"):
        assert np.array_equal(sitk.GetArrayFromImage(getattr(a, name)), sitk.GetArrayFromImage(getattr(b, name)))
    assert a.truth == b.truth
    c = make_case(3, config)
    assert not np.array_equal(sitk.GetArrayFromImage(a.pet), sitk.GetArrayFromImage(c.pet))
