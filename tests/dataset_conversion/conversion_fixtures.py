"""On-disk replicas of the source layouts the converters read (real NIfTI/NRRD/MHA files, exact names/nesting),
built from the synthetic generator (``seganypet_nnunet.synthetic.make_case``, size "small", with CT).

Every generated case is cropped to the bounding box of its trunk organs (heart, liver, spleen, kidneys, lungs, aorta)
so the files stay tiny (about 30 x 30 x 40 voxels). ``CaseBank`` memoises the cropped cases; tests get one bank per
session from the ``synthetic_cases`` fixture (tests/conversion/conftest.py). Arrays are numpy (z, y, x); SimpleITK
geometry is (x, y, z) LPS. Files are written with ``seganypet_nnunet.io_utils``.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from seganypet_nnunet.io_utils import write_image, write_json
from seganypet_nnunet.synthetic import LABELS, SyntheticConfig, make_case

#: A rotated direction (20 degrees about z) used to BREAK a label's geometry in the bad-input tests.
ROTATION_20 = (math.cos(math.radians(20)), -math.sin(math.radians(20)), 0.0,
               math.sin(math.radians(20)), math.cos(math.radians(20)), 0.0, 0.0, 0.0, 1.0)  # fmt: skip
TRUNK = [LABELS[k] for k in ("heart", "liver", "spleen", "kidney_left", "kidney_right", "lung_left", "lung_right",
                             "aorta")]  # fmt: skip
LESION = LABELS["lesion"]


@dataclass(frozen=True)
class Case:
    """One generator study cropped to its trunk: SUV float32, CT int16 HU, labels uint8 (``LABELS``), instances."""

    pet: sitk.Image
    ct: sitk.Image
    labels: sitk.Image
    instances: sitk.Image
    patient_id: str

    @property
    def label_array(self) -> np.ndarray:
        return sitk.GetArrayFromImage(self.labels)

    @property
    def lesion_ids(self) -> list[int]:
        return [int(v) for v in np.unique(sitk.GetArrayFromImage(self.instances)) if v]


def _crop(images: list[sitk.Image], labels: np.ndarray) -> list[sitk.Image]:
    """Crop every image to the trunk-organ bounding box of ``labels`` (z, y, x), padded by one voxel."""
    idx = np.argwhere(np.isin(labels, TRUNK))
    lo = np.maximum(idx.min(0) - 1, 0)
    hi = np.minimum(idx.max(0) + 2, labels.shape)
    index, size = [int(v) for v in lo[::-1]], [int(v) for v in (hi - lo)[::-1]]
    return [sitk.RegionOfInterest(img, size, index) for img in images]


class CaseBank:
    """Memoised, cropped generator cases (``make_case`` is deterministic per seed, so caching changes nothing)."""

    def __init__(self) -> None:
        self._cache: dict[tuple, Case] = {}

    def get(self, seed: int, *, patient_seed: int | None = None, tracer: str = "fdg", oblique: bool = False) -> Case:
        key = (seed, patient_seed, tracer, oblique)
        if key not in self._cache:
            config = SyntheticConfig(size="small", with_ct=True, max_lesions=3, tracer=tracer, oblique=oblique)
            raw = make_case(seed, config, patient_seed=patient_seed)
            pet, ct, labels, instances = _crop([raw.pet, raw.ct, raw.labels, raw.instances],
                                               sitk.GetArrayFromImage(raw.labels))  # fmt: skip
            self._cache[key] = Case(pet, ct, labels, instances, raw.patient_id)
        return self._cache[key]

    def with_lesions(self, first_seed: int, *, min_lesions: int = 1, patient_seed: int | None = None,
                     tracer: str = "fdg", oblique: bool = False) -> Case:  # fmt: skip
        """The first case from seed ``first_seed`` on whose crop holds at least ``min_lesions`` lesion instances."""
        for seed in range(first_seed, first_seed + 200):
            case = self.get(seed, patient_seed=patient_seed, tracer=tracer, oblique=oblique)
            if len(case.lesion_ids) >= min_lesions:
                return case
        raise RuntimeError(f"no generator seed in [{first_seed}, {first_seed + 200}) has {min_lesions} lesions")


def lesion_mask(case: Case) -> sitk.Image:
    """uint8 0/1 lesion label (the generator's lesion mask) on the case grid."""
    img = sitk.GetImageFromArray((case.label_array == LESION).astype(np.uint8))
    img.CopyInformation(case.labels)
    return img


def is_oblique(direction) -> bool:
    return not np.allclose(direction, np.eye(3).ravel(), atol=1e-6)


def write(img: sitk.Image, path: Path) -> Path:
    return write_image(img, path)


def tree_hash(root: Path) -> dict[str, str]:
    """Relative path → sha256 of every file under ``root`` (to prove a source was not touched)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# --------------------------------------------------------------------------------------------------- autoPET FDG
AUTOPET_STUDIES = {  # patient -> study folder names (as in the release, incl. spaces and the "nativ u. mit" dot)
    "PETCT_0af7ffe12a": [
        "06-29-2003-NA-PET-CT Ganzkoerper  primaer mit KM-10445",
        "08-12-2004-NA-PET-CT Ganzkoerper  primaer mit KM-46120",
    ],
    "PETCT_1b2c3d4e5f": ["03-05-2005-NA-PET-CT Ganzkoerper nativ u. mit KM-90211"],
    "PETCT_2c3d4e5f6a": ["11-30-2001-NA-PET-CT Ganzkoerper  primaer mit KM-13579"],
}  # fmt: skip
OBLIQUE_PATIENT = "PETCT_1b2c3d4e5f"


def autopet_fdg_case(cases: CaseBank, patient: str, study: int) -> Case:
    """The generator study behind ``AUTOPET_STUDIES[patient][study]`` (studies of one patient share the anatomy)."""
    p_idx = list(AUTOPET_STUDIES).index(patient)
    return cases.with_lesions(100 * p_idx + 10 * study, patient_seed=p_idx, oblique=patient == OBLIQUE_PATIENT)


def make_autopet_fdg(root: Path, cases: CaseBank, first_study_only: bool = False) -> dict[str, Path]:
    """Write ``root/PETCT_*/<study>/{SUV,CTres,SEG,PET}.nii.gz`` (SEG = generator lesion mask); one patient is
    oblique. ``first_study_only`` keeps one study per patient (3 cases)."""
    studies = {}
    for patient, names in AUTOPET_STUDIES.items():
        for s_idx, name in enumerate(names[:1] if first_study_only else names):
            case = autopet_fdg_case(cases, patient, s_idx)
            folder = root / patient / name
            write(case.pet, folder / "SUV.nii.gz")
            write(sitk.Cast(case.pet * 5000.0, sitk.sitkFloat32), folder / "PET.nii.gz")  # Bq/mL-like raw PET
            write(case.ct, folder / "CTres.nii.gz")
            write(lesion_mask(case), folder / "SEG.nii.gz")
            studies[f"{patient}/{name}"] = folder
    return studies


# --------------------------------------------------------------------------------------------------- autoPET IV
AUTOPET_IV_CASES = ["fdg_0b98dbe00d_2003-02-19", "fdg_0b98dbe00d_2005-08-13", "psma_95b833d46f153cd2_2018-04-16"]


def autopet_iv_case(cases: CaseBank, name: str) -> Case:
    if name.startswith("psma"):
        return cases.with_lesions(700, tracer="psma", oblique=True)
    return cases.with_lesions(500 + 20 * AUTOPET_IV_CASES.index(name), patient_seed=50)


def lesion_clicks(case: Case) -> list[tuple[list[int], bool]]:
    """(i, j, k) clicks: one positive per lesion instance at its centroid (the instance voxel nearest to it when the
    rounded centroid falls outside), then one negative at the first non-lesion voxel."""
    inst = sitk.GetArrayFromImage(case.instances)
    clicks = []
    for lesion_id in case.lesion_ids:
        voxels = np.argwhere(inst == lesion_id)  # (z, y, x)
        centroid = voxels.mean(0)
        zyx = np.round(centroid).astype(int)
        if inst[tuple(zyx)] != lesion_id:
            zyx = voxels[np.argmin(((voxels - centroid) ** 2).sum(1))]
        clicks.append(([int(v) for v in zyx[::-1]], True))
    background = np.argwhere(case.label_array != LESION)[0]
    clicks.append(([int(v) for v in background[::-1]], False))
    return clicks


def make_autopet_iv(root: Path, cases: CaseBank) -> dict[str, list[tuple[list[int], bool]]]:
    """Write the autoPET III/IV nnU-Net layout (CT _0000, PET _0001, lesion labels) plus click files in both JSON
    forms (repository form for the first case, grand-challenge form for the psma case); returns case -> clicks."""
    for name in AUTOPET_IV_CASES:
        case = autopet_iv_case(cases, name)
        write(case.ct, root / "imagesTr" / f"{name}_0000.nii.gz")
        write(case.pet, root / "imagesTr" / f"{name}_0001.nii.gz")
        write(lesion_mask(case), root / "labelsTr" / f"{name}.nii.gz")
    clicks = {name: lesion_clicks(autopet_iv_case(cases, name)) for name in (AUTOPET_IV_CASES[0], AUTOPET_IV_CASES[2])}
    first = clicks[AUTOPET_IV_CASES[0]]
    write_json({"tumor": [c for c, pos in first if pos], "background": [c for c, pos in first if not pos]},
               root / "clicks" / f"{AUTOPET_IV_CASES[0]}.json")  # fmt: skip
    points = [{"point": c, "name": "tumor" if pos else "background"} for c, pos in clicks[AUTOPET_IV_CASES[2]]]
    gc_form = {"version": {"major": 1, "minor": 0}, "type": "Multiple points", "points": points}
    write_json(gc_form, root / "clicks" / f"{AUTOPET_IV_CASES[2]}_clicks.json")
    return clicks


# ------------------------------------------------------------------------------------------------ AutoPET-Organ
#: generator label id -> AutoPET-Organ id (lungs are split into lobes by ``organ_label``).
ORGAN_MAP = {LABELS["liver"]: 1, LABELS["kidney_left"]: 2, LABELS["kidney_right"]: 3, LABELS["heart"]: 4,
             LABELS["spleen"]: 5, LABELS["aorta"]: 6}  # fmt: skip


def organ_label(case: Case, middle_lobe_id: int = 11) -> sitk.Image:
    """AutoPET-Organ label map from the generator organs: lungs split along the world superior axis (LPS z) into
    left lower 7 / upper 9 (halves) and right lower 8 / middle ``middle_lobe_id`` (11, or its alias 12) / upper 10."""
    src = case.label_array
    out = np.zeros_like(src, dtype=np.uint8)
    for gen_id, organ_id in ORGAN_MAP.items():
        out[src == gen_id] = organ_id
    img = case.labels
    k, j, i = np.indices(src.shape)
    d = np.asarray(img.GetDirection()).reshape(3, 3)
    sx, sy, sz = img.GetSpacing()
    world_z = img.GetOrigin()[2] + d[2, 0] * sx * i + d[2, 1] * sy * j + d[2, 2] * sz * k
    for lung, lobes in ((LABELS["lung_left"], (7, 9)), (LABELS["lung_right"], (8, middle_lobe_id, 10))):
        mask = src == lung
        edges = np.quantile(world_z[mask], np.linspace(0, 1, len(lobes) + 1)[1:-1])
        out[mask] = np.asarray(lobes, np.uint8)[np.searchsorted(edges, world_z[mask])]
    label = sitk.GetImageFromArray(out)
    label.CopyInformation(img)
    return label


def make_autopet_organ(label_dir: Path, autopet_root: Path, cases: CaseBank) -> list[Path]:
    """AutoPET-Organ label files ``<PETCT_id>_<study>_.nii.gz`` for every study of the FDG fixture (written to
    ``autopet_root``); the first patient's files use 12 (alias of 11) for the right middle lobe."""
    make_autopet_fdg(autopet_root, cases)
    files = []
    for p_idx, (patient, names) in enumerate(AUTOPET_STUDIES.items()):
        for s_idx, name in enumerate(names):
            label = organ_label(autopet_fdg_case(cases, patient, s_idx), 12 if p_idx == 0 else 11)
            files.append(write(label, label_dir / f"{patient}_{name}_.nii.gz"))
    return files


# ------------------------------------------------------------------------------------------------------ HECKTOR
HECKTOR_CASES = ["CHUM-001", "CHUP-012"]


def hecktor_label(case: Case) -> sitk.Image:
    """0 background, 1 GTVp (lesion instance with the lowest id), 2 GTVn (every other lesion instance)."""
    inst = sitk.GetArrayFromImage(case.instances)
    out = np.where(inst == case.lesion_ids[0], 1, np.where(inst > 0, 2, 0)).astype(np.uint8)
    label = sitk.GetImageFromArray(out)
    label.CopyInformation(case.labels)
    return label


def coarse_pet(case: Case) -> sitk.Image:
    """The case PET linearly resampled onto a 1.5x coarser grid, shifted by (-3, -2, -2) mm, covering the CT."""
    ct = case.ct
    spacing = [1.5 * s for s in ct.GetSpacing()]
    size = [int(math.ceil(n * s / c)) + 1 for n, s, c in zip(ct.GetSize(), ct.GetSpacing(), spacing, strict=True)]
    direction = np.asarray(ct.GetDirection()).reshape(3, 3)
    origin = np.asarray(ct.GetOrigin()) + direction @ np.array([-3.0, -2.0, -2.0])
    ref = sitk.Image(size, sitk.sitkFloat32)
    ref.SetSpacing(spacing)
    ref.SetOrigin([float(v) for v in origin])
    ref.SetDirection(ct.GetDirection())
    return sitk.Resample(case.pet, ref, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)


def make_hecktor(root: Path, cases: CaseBank, layout: str = "2022") -> list[str]:
    """HECKTOR cases: CT + label (0/1/2) on the generator grid, PT on a coarser, shifted grid; the second is oblique."""
    for idx, name in enumerate(HECKTOR_CASES):
        case = cases.with_lesions(900 + 50 * idx, min_lesions=2, oblique=idx == 1)
        folder = root / "imagesTr" if layout == "2022" else root / name
        write(case.ct, folder / f"{name}__CT.nii.gz")
        write(coarse_pet(case), folder / f"{name}__PT.nii.gz")
        label_path = (
            root / "labelsTr" / f"{name.replace('-', '_')}.nii.gz" if layout == "2022" else folder / f"{name}.nii.gz"
        )
        write(hecktor_label(case), label_path)
    return HECKTOR_CASES


# ------------------------------------------------------------------------------------------------------ generic
GENERIC_LABELS = {"background": 0, "lesion": 1, "liver": 2}
GENERIC_CASES = {"pat01_scan1": "pat01", "pat01_scan2": "pat01", "pat02_scan1": "pat02"}


def generic_case(cases: CaseBank, name: str) -> Case:
    if name == "pat02_scan1":
        return cases.get(1200, oblique=True)
    return cases.get(1100 + list(GENERIC_CASES).index(name), patient_seed=1100)


def make_generic(root: Path, cases: CaseBank) -> dict[str, int]:
    """``<case>_pet.nrrd``, ``<case>_ct.mha``, ``<case>_seg.nii.gz`` (lesion 1, liver 2) + ``labels.json``."""
    for name in GENERIC_CASES:
        case = generic_case(cases, name)
        src = case.label_array
        seg = sitk.GetImageFromArray(np.select([src == LESION, src == LABELS["liver"]], [1, 2], 0).astype(np.uint8))
        seg.CopyInformation(case.labels)
        write(case.pet, root / "data" / f"{name}_pet.nrrd")
        write(case.ct, root / "data" / f"{name}_ct.mha")
        write(seg, root / "data" / f"{name}_seg.nii.gz")
    write_json(GENERIC_LABELS, root / "labels.json")
    write_json(GENERIC_CASES, root / "c2p.json")
    return GENERIC_LABELS
