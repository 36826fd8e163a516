"""``seganypet_compare``: two trainers' cross-validation results side by side, as a lab compares them.

For each fold, both trainers' nnU-Net validation predictions (``fold_X/validation/CASE<ending>``) are scored per case
and structure against the raw ``labelsTr`` (``summary.reference_dice``: the automatic Dice, all lesions of a case
together). A promptable trainer (a ``SegAnyPETTrainer`` subclass) also runs the simulated-click protocol
(``interactive.evaluate_interactive``) with that fold's checkpoint on the same validation cases; its Dice after k
clicks is the mean over the case's targets of that structure (each lesion instance one target). A trainer without
prompts cannot be clicked: its Dice "after k clicks" is its automatic Dice, so the click rows read "prompted model after
k clicks vs the other model's automatic result".

Per structure and stage (automatic, click 1 / 3 / last) the paired differences A - B over the cases where both have a
value are summarised: mean ± sd, a seeded percentile-bootstrap 95 % interval of the mean and the two-sided Wilcoxon
signed-rank p (scipy; None with fewer than two differences or all zero). Written to ``OUT/compare.json`` and
``OUT/compare.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from seganypet_nnunet import io_utils
from seganypet_nnunet.errors import InputNotFoundError, SeganypetError, cli_entry
from seganypet_nnunet.evaluation import summary as S
from seganypet_nnunet.evaluation.cases import EvalCase, find_cases, read_case, structure_labels

N_BOOTSTRAP = 10_000


def is_promptable(trainer: str) -> bool:
    """True for registered ``SegAnyPETTrainer`` subclasses (they train the prompt path); False for anything else."""
    from seganypet_nnunet.trainers.registry import TRAINERS
    from seganypet_nnunet.trainers.SegAnyPETTrainer import SegAnyPETTrainer

    cls = TRAINERS.get(trainer)
    return cls is not None and issubclass(cls, SegAnyPETTrainer)


def default_plans(trainer: str) -> str:
    """``SegAnyPETPlans`` for our promptable trainers, ``nnUNetPlans`` (nnU-Net's default) for the others."""
    return "SegAnyPETPlans" if is_promptable(trainer) else "nnUNetPlans"


def paired_stats(diffs: Sequence[float], seed: int = 0, n_boot: int = N_BOOTSTRAP) -> dict:
    """Mean, sd (ddof 1), seeded percentile-bootstrap 95 % interval of the mean and Wilcoxon p of paired differences."""
    from scipy.stats import wilcoxon

    d = np.asarray([x for x in diffs if x is not None and np.isfinite(x)], dtype=float)
    out = {"n": int(d.size), "mean": None, "sd": None, "ci95": None, "wilcoxon_p": None}
    if d.size == 0:
        return out
    out["mean"] = float(d.mean())
    out["sd"] = float(d.std(ddof=1)) if d.size > 1 else 0.0
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, (n_boot, d.size))].mean(axis=1)
    out["ci95"] = [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]
    if d.size > 1 and np.any(d != 0):
        out["wilcoxon_p"] = float(wilcoxon(d).pvalue)
    return out


def validation_case_ids(model_folder: Path, fold: int | str, ending: str) -> list[str]:
    """Case ids of ``model_folder/fold_X/validation`` (nnU-Net's validation predictions)."""
    folder = Path(model_folder) / f"fold_{fold}" / "validation"
    if not folder.is_dir():
        raise InputNotFoundError(f"{folder}: fold {fold} has no validation predictions (train it to the end first)")
    ids = sorted(f.name[: -len(ending)] for f in folder.iterdir() if f.name.endswith(ending))
    if not ids:
        raise InputNotFoundError(f"{folder}: no CASE{ending} predictions")
    return ids


def _click_dice(summary: Mapping, stages: Sequence[int]) -> dict[str, dict[str, dict[str, float]]]:
    """case -> structure -> {``click_k``: mean Dice over that structure's targets after click k}."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for case_id, block in summary["cases"].items():
        per: dict[str, list[list[float]]] = {}
        for target in block["targets"].values():
            per.setdefault(target["structure"], []).append([c["dice"] for c in target["clicks"]])
        out[case_id] = {
            name: {f"click_{k}": float(np.mean([curve[k - 1] for curve in curves])) for k in stages}
            for name, curves in per.items()
        }
    return out


def score_trainer(
    model_folder: Path,
    folds: Sequence[int | str],
    cases: Mapping[str, EvalCase],
    labels: Mapping[str, int],
    *,
    promptable: bool,
    n_clicks: int,
    ending: str,
    device: str = "cpu",
    trust_checkpoint: bool = False,
    targets: Sequence[str] | None = None,
) -> dict[str, dict[str, dict[str, float]]]:
    """case -> structure -> {"automatic": Dice, "click_k": Dice} over the validation cases of ``folds`` (only the
    structures ``targets`` names, when given)."""
    from seganypet_nnunet.evaluation.interactive import evaluate_interactive, session_factory

    structures = structure_labels(labels, targets)
    stages = S.table_clicks(n_clicks)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for fold in folds:
        ids = [c for c in validation_case_ids(model_folder, fold, ending) if c in cases]
        refs = {c: read_case(cases[c])[0] for c in ids}
        present = {c: {n: v for n, v in structures.items() if (refs[c] == v).any()} for c in ids}
        auto = S.reference_dice(Path(model_folder) / f"fold_{fold}" / "validation", refs, present, ending)
        clicked = {}
        if promptable:
            factory = session_factory(model_folder, (fold,), device=device, trust_checkpoint=trust_checkpoint)
            chosen = [cases[c] for c in ids]
            summary = evaluate_interactive(chosen, factory, labels, n_clicks=n_clicks, target_names=targets)
            clicked = _click_dice(summary, stages)
        for c in ids:
            out[c] = {}
            for name, dice in auto["per_case"][c].items():
                row = {"automatic": dice}
                row.update(clicked.get(c, {}).get(name) or {f"click_{k}": dice for k in stages})
                out[c][name] = row
    return out


def compare_scores(a: Mapping, b: Mapping, stages: Sequence[str], seed: int = 0) -> dict:
    """structure -> stage -> paired_stats of A - B over the (case, structure) pairs both scored."""
    names = sorted({n for c in a if c in b for n in a[c] if n in b[c]})
    table = {}
    for name in names:
        table[name] = {}
        pairs = [c for c in sorted(a) if c in b and name in a[c] and name in b[c]]
        for stage in stages:
            table[name][stage] = {
                **paired_stats([a[c][name][stage] - b[c][name][stage] for c in pairs], seed),
                "mean_a": S._mean(a[c][name][stage] for c in pairs),
                "mean_b": S._mean(b[c][name][stage] for c in pairs),
                "cases": pairs,
            }
    return table


def _fmt(x: float | None, nd: int = 3) -> str:
    return "n/a" if x is None else f"{x:+.{nd}f}"


def format_table(result: Mapping) -> str:
    """Text table: per structure and stage, A, B, A - B mean ± sd, 95 % CI, Wilcoxon p and n."""
    a, b = result["trainers"]
    lines = [
        f"paired difference A - B (A = {a}, B = {b}); cases = validation cases of folds {result['folds']}",
        f"{'structure':>14s} {'stage':>10s} | {'A':>6s} {'B':>6s} | {'A - B mean ± sd':>17s} | "
        f"{'bootstrap 95% CI':>17s} | {'Wilcoxon p':>10s} | {'n':>3s}",
    ]
    for name, stages in result["per_structure"].items():
        for stage, s in stages.items():
            ci = "n/a" if s["ci95"] is None else f"[{s['ci95'][0]:+.3f}, {s['ci95'][1]:+.3f}]"
            p = "n/a" if s["wilcoxon_p"] is None else f"{s['wilcoxon_p']:.3g}"
            ma = "n/a" if s["mean_a"] is None else f"{s['mean_a']:.3f}"
            mb = "n/a" if s["mean_b"] is None else f"{s['mean_b']:.3f}"
            sd = "" if s["sd"] is None else f" ± {s['sd']:.3f}"
            lines.append(
                f"{name:>14s} {stage:>10s} | {ma:>6s} {mb:>6s} | {_fmt(s['mean']) + sd:>17s} | {ci:>17s} | {p:>10s} "
                f"| {s['n']:>3d}"
            )
    return "\n".join(lines)


def plot_compare(result: Mapping, target: Path) -> Path:
    """Per structure, the mean paired difference with its bootstrap 95 % interval, one marker per stage (Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["per_structure"])
    stages = result["stages"]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(names) + 2), 4.0))
    width = 0.8 / max(len(stages), 1)
    for i, stage in enumerate(stages):
        xs, ys, lo, hi = [], [], [], []
        for j, name in enumerate(names):
            s = result["per_structure"][name][stage]
            if s["mean"] is None:
                continue
            xs.append(j - 0.4 + (i + 0.5) * width)
            ys.append(s["mean"])
            lo.append(s["mean"] - s["ci95"][0])
            hi.append(s["ci95"][1] - s["mean"])
        ax.errorbar(xs, ys, yerr=[lo, hi], fmt="o", capsize=3, label=stage)
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_ylabel("Dice difference A - B (95 % CI)")
    ax.set_title(f"{result['trainers'][0]} - {result['trainers'][1]}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.stem}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(target)
    return target


def dataset_name(dataset: str | int) -> str:
    """nnU-Net's ``DatasetXXX_Name`` of ``-d`` (one line when $nnUNet_raw/results are unset or the id is unknown)."""
    from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name

    from seganypet_nnunet.paths import nnunet_folder

    nnunet_folder("nnUNet_raw")
    nnunet_folder("nnUNet_results")
    try:
        return maybe_convert_to_dataset_name(dataset)
    except RuntimeError as err:
        raise SeganypetError(f"-d {dataset}: {str(err).splitlines()[0]}") from None


def compare_trainers(
    *,
    dataset: str | int,
    trainers: Sequence[str],
    plans: Sequence[str] | None = None,
    configuration: str = "3d_fullres",
    folds: Sequence[int | str] = (0, 1, 2, 3, 4),
    output: Path | None = None,
    n_clicks: int = 5,
    device: str = "cpu",
    seed: int = 0,
    trust_checkpoint: bool = False,
    targets: Sequence[str] | None = None,
) -> dict:
    """Scores both trainers (module docstring) and returns the result dict (also written when ``output`` is set)."""
    from nnunetv2.utilities.file_path_utilities import get_output_folder

    from seganypet_nnunet.paths import nnunet_folder

    if len(trainers) != 2:
        raise SeganypetError(f"-tr: give exactly two trainers, got {len(trainers)}")
    plans = list(plans) if plans else [default_plans(t) for t in trainers]
    if len(plans) == 1:
        plans = plans * 2
    if len(plans) != 2:
        raise SeganypetError(f"-p: give one or two plans identifiers, got {len(plans)}")
    if n_clicks < 1:
        raise SeganypetError(f"-n_clicks: must be >= 1, got {n_clicks}")
    name = dataset_name(dataset)
    raw = nnunet_folder("nnUNet_raw") / name
    ds = io_utils.read_json_object(raw / "dataset.json")
    ending = ds.get("file_ending", ".nii.gz")
    instances = raw / "instancesTr" if (raw / "instancesTr").is_dir() else None
    cases = {
        c.case_id: c
        for c in find_cases(raw / "imagesTr", raw / "labelsTr", instances, len(ds["channel_names"]), ending)
    }
    folders = [Path(get_output_folder(name, t, p, configuration)) for t, p in zip(trainers, plans, strict=True)]
    for folder in folders:
        if not folder.is_dir():
            raise InputNotFoundError(f"{folder}: model folder not found (-tr/-p/-c)")
        for fold in folds:
            validation_case_ids(folder, fold, ending)
    scores = [
        score_trainer(
            folder, folds, cases, ds["labels"], promptable=is_promptable(t), n_clicks=n_clicks, ending=ending,
            device=device, trust_checkpoint=trust_checkpoint, targets=targets,
        )
        for folder, t in zip(folders, trainers, strict=True)
    ]  # fmt: skip
    stages = ["automatic", *(f"click_{k}" for k in S.table_clicks(n_clicks))]
    result = {
        "dataset": name,
        "trainers": list(trainers),
        "plans": plans,
        "configuration": configuration,
        "folds": [str(f) for f in folds],
        "model_folders": [str(f) for f in folders],
        "promptable": [is_promptable(t) for t in trainers],
        "n_clicks": n_clicks,
        "targets": list(targets) if targets else None,
        "stages": stages,
        "seed": seed,
        "n_bootstrap": N_BOOTSTRAP,
        "note": "A - B per (case, structure); a trainer without prompts keeps its automatic Dice at every click stage",
        "per_structure": compare_scores(*scores, stages, seed),
        "per_case": {t: s for t, s in zip(trainers, scores, strict=True)},
    }
    if output is not None:
        output = Path(output)
        io_utils.write_json(result, output / "compare.json")
        plot_compare(result, output / "compare.png")
    return result


def build_parser() -> argparse.ArgumentParser:
    from seganypet_nnunet.cli_args import add_trust_checkpoint_argument

    p = argparse.ArgumentParser(description="Compare two trainers' cross-validation results (paired, per structure).")
    p.add_argument("-d", required=True, help="[REQUIRED] dataset name or id")
    p.add_argument("-tr", nargs=2, required=True, metavar=("A", "B"), help="[REQUIRED] the two trainers")
    p.add_argument(
        "-p", nargs="+", default=None, help="[OPTIONAL] plans of A and B (one value: both). Default: SegAnyPETPlans "
        "for SegAnyPET trainers, nnUNetPlans for the others",
    )  # fmt: skip
    p.add_argument("-c", default="3d_fullres", help="[OPTIONAL] configuration. Default: 3d_fullres")
    p.add_argument("-f", nargs="+", default=["0", "1", "2", "3", "4"], help="[OPTIONAL] folds. Default: 0 1 2 3 4")
    p.add_argument("-o", default=None, help="[OPTIONAL] output folder. Default: $nnUNet_results/DATASET/compare__A__B")
    p.add_argument("-n_clicks", type=int, default=5, help="[OPTIONAL] clicks per target. Default: 5")
    p.add_argument("-device", default="cuda", choices=("cuda", "cpu", "mps"), help="[OPTIONAL] Default: cuda")
    p.add_argument("-seed", type=int, default=0, help="[OPTIONAL] bootstrap seed. Default: 0")
    p.add_argument("-targets", nargs="+", default=None, help="[OPTIONAL] only these structures. Default: all")
    add_trust_checkpoint_argument(p)
    return p


@cli_entry("seganypet_compare")
def compare_entry(argv: list[str] | None = None) -> None:
    """Console entry point: prints the table and where the JSON and the plot went."""
    from seganypet_nnunet.cli_args import make_device, parse_folds

    args = build_parser().parse_args(argv)
    make_device(args.device)
    output = Path(args.o) if args.o else None
    if output is None:
        from seganypet_nnunet.paths import nnunet_folder

        output = nnunet_folder("nnUNet_results") / dataset_name(args.d) / f"compare__{args.tr[0]}__{args.tr[1]}"
    result = compare_trainers(
        dataset=args.d, trainers=args.tr, plans=args.p, configuration=args.c, folds=parse_folds(args.f),
        output=output, n_clicks=args.n_clicks, device=args.device, seed=args.seed,
        trust_checkpoint=args.trust_checkpoint, targets=args.targets,
    )  # fmt: skip
    print(format_table(result))
    print(f"\njson: {output / 'compare.json'}\nplot: {output / 'compare.png'}")


if __name__ == "__main__":
    compare_entry()
