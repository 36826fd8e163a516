"""autoPET IV (clicks, steps 0-10) and autoPET V (automatic + 5 scribbles) on a synthetic test set, one model folder.

After ``seganypet_demo`` (which writes ``seganypet_demo_output/``), from the repository root:

    python bench/bench_autopet_protocols.py                # the demo's model, test set and automatic predictions
    python bench/bench_autopet_protocols.py -m MODEL -raw RAW_DATASET_FOLDER [-auto_pred DIR] -o OUT
    python bench/bench_autopet_protocols.py --untrained    # self-check: small synthetic set, UNTRAINED Tiny model

Test cases: ``RAW/imagesTs`` + ``RAW/labelsTs`` (the lesion label of the model's dataset.json). Click JSONs: taken
from ``RAW/clicksTs/CASE.json`` when every case has one, else simulated into ``OUT/clicks`` by
``prompts/autopet_click_simulation.py`` (10 tumour clicks at lesion EDT centres, largest lesion first, then lesion
border voxels; 10 background clicks at hot-spot centres above the 99.75th body-uptake percentile outside the
lesions, then random body voxels; rng ``default_rng([seed, crc32(case)])``). Scribbles: prompts/scribbles.py, seed
``-seed``. Prints the autoPET IV table (mean Dice / FPV / FNV per step, the six ranking terms) and the autoPET V table
(per-step Dice / DMM, AUC-Dice, AUC-DMM, 50/50 score), and the time each protocol took.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import SimpleITK as sitk

DEMO_OUTPUT = Path("seganypet_demo_output")


def demo_paths(output: Path) -> tuple[Path, Path, Path | None]:
    """(model folder, raw dataset folder, automatic predictions or None) of a ``seganypet_demo`` output folder."""
    models = sorted((output / "nnUNet_results").glob("Dataset*/SegAnyPETTrainer*__*__3d_fullres"))
    raws = sorted((output / "nnUNet_raw").glob("Dataset*"))
    if not models or not raws:
        raise SystemExit(f"{output}: no demo model/dataset found; run seganypet_demo first or pass -m and -raw")
    auto = output / "pred_seganypet"
    return models[0], raws[0], auto if auto.is_dir() else None


def untrained_small(root: Path) -> tuple[Path, Path]:
    """A small synthetic dataset (2 train + 2 test cases, 64^3) and an UNTRAINED Tiny model folder under ``root``."""
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        (root / name).mkdir(parents=True, exist_ok=True)
        os.environ[name] = str(root / name)
    os.environ.setdefault("nnUNet_def_n_proc", "1")
    os.environ.setdefault("nnUNet_n_proc_DA", "1")
    from seganypet_nnunet.inference.model_folder import plan_and_write_untrained
    from seganypet_nnunet.planners import SegAnyPETPlannerTiny
    from seganypet_nnunet.synthetic import SyntheticConfig, make_dataset

    raw = make_dataset(993, "BenchAutoPET", 2, 2, SyntheticConfig(size="small"), raw_root=root / "nnUNet_raw")
    model = root / "nnUNet_results" / raw.name / "SegAnyPETTrainer__SegAnyPETPlansTiny__3d_fullres"
    plan_and_write_untrained(993, SegAnyPETPlannerTiny, "3d_fullres", model)
    return model, raw


def click_folder(raw: Path, out: Path, lesion_value: int, seed: int) -> Path:
    """``RAW/clicksTs`` if complete, else simulated click JSONs in ``OUT/clicks`` (module docstring)."""
    from seganypet_nnunet.io_utils import write_json
    from seganypet_nnunet.prompts.autopet_click_simulation import simulate_autopet_clicks

    cases = sorted(f.name[: -len("_0000.nii.gz")] for f in (raw / "imagesTs").glob("*_0000.nii.gz"))
    given = raw / "clicksTs"
    if given.is_dir() and all((given / f"{c}.json").is_file() for c in cases):
        return given
    target = out / "clicks"
    for c in cases:
        ref = sitk.ReadImage(str(raw / "labelsTs" / f"{c}.nii.gz"))
        pet = sitk.GetArrayFromImage(sitk.ReadImage(str(raw / "imagesTs" / f"{c}_0000.nii.gz")))
        rng = np.random.default_rng([seed, zlib.crc32(c.encode())])
        lesions = sitk.GetArrayFromImage(ref) == lesion_value
        clicks = simulate_autopet_clicks(lesions, pet, ref.GetSpacing()[::-1], rng)
        write_json(clicks, target / f"{c}_clicks.json")
    return target


def main() -> None:
    from seganypet_nnunet.evaluation.autopet_iv import run_autopet_iv
    from seganypet_nnunet.evaluation.autopet_score import format_steps_table
    from seganypet_nnunet.evaluation.autopet_v import format_v_table, run_autopet_v
    from seganypet_nnunet.evaluation.protocols import lesion_label, model_dataset_json

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-m", default=None, help="[OPTIONAL] model folder. Default: the demo's")
    p.add_argument("-raw", default=None, help="[OPTIONAL] raw dataset folder (imagesTs, labelsTs). Default: the demo's")
    p.add_argument("-auto_pred", default=None, help="[OPTIONAL] automatic predictions. Default: the demo's, if any")
    p.add_argument("-demo", default=str(DEMO_OUTPUT), help=f"[OPTIONAL] demo output folder. Default: {DEMO_OUTPUT}")
    p.add_argument("-o", default=None, help="[OPTIONAL] output folder. Default: DEMO/autopet_protocols")
    p.add_argument("-n_scribbles", type=int, default=5, help="[OPTIONAL] autoPET V scribbles. Default: 5")
    p.add_argument("-seed", type=int, default=0, help="[OPTIONAL] click/scribble seed. Default: 0")
    p.add_argument("-device", default="cpu", help="[OPTIONAL] cpu or cuda")
    p.add_argument("--untrained", action="store_true", help="[OPTIONAL] self-check on an untrained Tiny model")
    a = p.parse_args()
    if a.untrained:
        root = Path(tempfile.mkdtemp(prefix="seganypet_bench_autopet_"))
        model, raw = untrained_small(root)
        auto, out = None, Path(a.o) if a.o else root / "autopet_protocols"
        print(f"UNTRAINED Tiny model (plumbing check, numbers meaningless): {model}")
    else:
        model, raw, auto = demo_paths(Path(a.demo)) if a.m is None or a.raw is None else (Path(a.m), Path(a.raw), None)
        auto = Path(a.auto_pred) if a.auto_pred else auto
        out = Path(a.o) if a.o else Path(a.demo) / "autopet_protocols"
    value = lesion_label(model_dataset_json(model)["labels"])
    clicks = click_folder(raw, out, value, a.seed)
    common = {"auto_pred": auto, "device": a.device}
    start = time.perf_counter()
    iv = run_autopet_iv(model, raw / "imagesTs", clicks, out / "autopet_iv", ref_dir=raw / "labelsTs", **common)
    t_iv = time.perf_counter() - start
    if auto is None:  # reuse the automatic predictions the autoPET IV run made
        common["auto_pred"] = out / "autopet_iv" / "automatic"
    start = time.perf_counter()
    v = run_autopet_v(
        model, raw / "imagesTs", raw / "labelsTs", out / "autopet_v", n_scribbles=a.n_scribbles, seed=a.seed, **common
    )
    t_v = time.perf_counter() - start
    n = len(iv["cases"])
    print(f"\nmodel {model}\ntest set {raw / 'imagesTs'} ({n} cases), clicks {clicks}, lesion label {value}")
    print(f"\nautoPET IV (step 0 automatic, step k = k tumour + k background clicks), {t_iv:.0f} s:")
    print(format_steps_table(iv["score"]["summary"]["overall"]))
    print(f"\nautoPET V (automatic + {a.n_scribbles} scribbles, seed {a.seed}), {t_v:.0f} s:")
    print(format_v_table(v["summary"]))
    print(f"\nscores: {out / 'autopet_iv' / 'autopet_iv_score.json'}, {out / 'autopet_v' / 'autopet_v_score.json'}")


if __name__ == "__main__":
    main()
