"""Ship the reference run's model: weights only into ``seganypet_nnunet/pretrained/<name>/`` with its model card.

Reads ``OUT/reference_model.json`` written by ``bench/bench_reference_model.py`` (budget, hours, machine, generator
settings, every table) and the trained fold-0 folder of ``-tr`` with the run's plans, then calls
``seganypet_nnunet.pretrained.export_packaged_model``. The card's figures are the bench's own printed tables.

    python bench/ship_reference_model.py -o /path/to/reference_run_folder
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

CARD = """# {name}: SegAnyPET reference model (synthetic-trained)

`{trainer}` on nnU-Net plans `{plans}` (`3d_fullres`, fold 0), exported with weights only. Load it by name wherever
a model folder is accepted: `-m {name}` (`seganypet_predict`, `seganypet_evaluate`, `seganypet_serve`,
`seganypet_predict_autopet_gc`), `SegAnyPETSession.from_model_folder("{name}")`, the napari widget's "packaged"
picker, and `seganypet_demo --pretrained`.

## Intended use

For trying the tool: clicking, correcting, the protocols and the server, on PET that looks like the training data.
It was trained on synthetic data only and is **not for clinical use**, nor for reporting results on real patients;
train your own model (docs/usage.md) or import the released SegAnyPET weights (docs/released_weights.md) for that.

## Training data

{num_train} synthetic whole-body studies from `seganypet_make_synthetic` preset `{preset}`, tracer `{tracer}`, grid
{spacing} mm (generator seed {train_seed}): an adult body with organ uptake and the oncologic lesion population of
docs/synthetic.md (5-80 mm lesions, necrotic and heterogeneous cores, lesions touching hot organs, node clusters).
No real data. Test sets: {num_test} case(s) evaluated per set, generator seeds {test_seeds} (patients never trained
on).

## Budget

{iterations} training iterations ({epochs} epochs x {iters_per_epoch}, batch and patch from the plans), the nnU-Net
baseline `{baseline}` at the same budget on the same preprocessed data. Training hours: {hours}. Machine: {machine}.
Command: `{command}`.

## Figures

Mean ± sd over training seeds x test sets, printed by the bench (`reference_model.json` holds every number):

```
{tables}
```

## Limitations

Synthetic training data: real scanners' noise, motion, partial-volume and physiological uptake differ; figures on
real FDG PET are lower (docs/benchmarks.md). The Small backbone at 48^3 patches was chosen so the run fits one
2-core CPU session; a GPU run at nnU-Net's default plans is the command in docs/synthetic.md.
"""


def main() -> None:
    from bench_reference_model import report

    from seganypet_nnunet.pretrained import REFERENCE_MODEL, export_packaged_model

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", required=True, help="[REQUIRED] the reference run's work folder (holds reference_model.json)")
    p.add_argument("--name", default=REFERENCE_MODEL, help=f"[OPTIONAL] packaged name. Default: {REFERENCE_MODEL}")
    p.add_argument("-seed", type=int, default=None, help="[OPTIONAL] training seed to ship. Default: the first")
    a = p.parse_args()
    out = Path(a.o).resolve()
    run = json.loads((out / "reference_model.json").read_text())
    seed = a.seed if a.seed is not None else run["seeds"][0]
    trainer, baseline = run["trainers"]
    plans = run["plans"][0]
    folders = sorted((out / f"seed_{seed}" / "nnUNet_results").glob(f"Dataset*/{trainer}__{plans}__3d_fullres"))
    if len(folders) != 1:
        raise SystemExit(f"{out}: expected one {trainer}__{plans}__3d_fullres folder for seed {seed}, got {folders}")
    tables = io.StringIO()
    with contextlib.redirect_stdout(tables):
        report(run["runs"])
    gen, budget = run["generator"], run["budget"]
    evaluated = "/".join(map(str, gen.get("test_cases_evaluated", [gen["num_test"]])))
    hours = ", ".join(f"{k} {v:.2f} h" for k, v in run["training_hours"].items() if v is not None)
    machine = ", ".join(f"{k} {v}" for k, v in run["machine"].items())
    card = CARD.format(
        name=a.name, trainer=trainer, plans=plans, baseline=baseline, num_train=gen["num_train"], preset=gen["preset"],
        tracer=gen["tracer"], spacing=" x ".join(f"{s:g}" for s in gen["spacing_mm"]), train_seed=gen["train_seed"],
        num_test=evaluated, test_seeds=", ".join(map(str, gen["test_seeds"])),
        iterations=budget["total_iterations"], epochs=budget["epochs"], iters_per_epoch=budget["iterations_per_epoch"],
        hours=hours or "reused", machine=machine, command=" ".join(Path(c).name if i == 0 else c
                                                                   for i, c in enumerate(run["command"])),
        tables=tables.getvalue().strip(),
    )  # fmt: skip
    generator = {k: gen[k] for k in ("preset", "tracer", "spacing_mm")}
    target = export_packaged_model(folders[0], a.name, card, generator=generator)
    size = (target / "fold_0" / "checkpoint_final.pth").stat().st_size / 1e6
    print(f"shipped {folders[0]} -> {target} ({size:.1f} MB weights)")


if __name__ == "__main__":
    main()
