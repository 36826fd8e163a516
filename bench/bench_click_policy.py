"""Clicks against the PET reader's own tools, and the ablation of the session's click policy (issue 10).

For each test-set seed a fresh synthetic test set is generated (the demo's "small" whole-body PET; seeds 100, 101, ...
so it never overlaps the demo's training data), every case is clicked with the deterministic protocol of
``seganypet_evaluate`` (5 clicks per target) under each click policy on ONE session per case (the image embeddings are
shared between policies, so only decoder passes differ), and the PET reader's methods are scored from the same first
click. Prints, per structure, mean +- sd over seeds of: the best reader method after 1 click, the oracle threshold,
and ours after 1 and 5 clicks per policy (``bare`` network, each rule alone, ``all`` = the three rules with the
network refining the prior, ``answer`` = the prior kept as the first answer, ``agree`` = the prior kept where it is a
well-delineated focus or the network agrees with it; ``noshare`` = ``agree`` with corrections bounded to 2x the
click's distance to the mask; ``reach2`` = ``noshare`` where a focus that is under 10 % of the network's answer, the
rest of it warm (SUV >= 1.5), gives way to that answer; ``inregion`` = ``reach2`` where a region clicked on itself
counts as a focus from contrast 5 (not 7); ``rcorr`` = the session default: ``inregion`` with reader corrections
(a target the region answered is corrected by moving the threshold or cutting at the SUV valley,
``inference/reader_region.py``); ``reach3`` = ``reach2`` with 3x; ``gate2`` = ``agree`` with the prior from a local
SUVmax of 2 instead of 4, ``gate2reach2`` = the default with that gate); then the monotonicity figures per policy.
The rows before ``noshare`` have no correction bound and no share rule; the rows before ``inregion`` no in-region
focus rule and no reader corrections.

    python bench/bench_click_policy.py -m seganypet_demo_output/nnUNet_results/Dataset990_SegAnyPETDemo/\
SegAnyPETTrainer_demo__SegAnyPETPlansSmall__3d_fullres -seeds 0 1 2 -num_test 3

Targets (issue 10): ours@1 >= best reader method, ours@5 >= oracle threshold, per structure; mean Dice per structure
never falls from one click to the next; report how often a correction click loses more than 0.05 Dice.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

POLICIES = (
    "bare",
    "prior",
    "consistency",
    "local",
    "all",
    "answer",
    "agree",
    "noshare",
    "reach2",
    "inregion",
    "rcorr",
    "reach3",
    "gate2",
    "gate2reach2",
)
#: policies whose missed targets are listed
COMPLETE = ("all", "answer", "agree", "noshare", "reach2", "inregion", "rcorr", "reach3", "gate2", "gate2reach2")


def policies():
    from seganypet_nnunet.inference.click_policy import ClickPolicy

    off = ClickPolicy.off()
    return {
        "bare": off,
        "prior": ClickPolicy(pet_prior=True, prior_answer=False, keep_clicked_label=False,
                             clicked_components_only=False, local_corrections=False),
        "consistency": ClickPolicy(pet_prior=False, local_corrections=False),
        "local": ClickPolicy(pet_prior=False, keep_clicked_label=False, clicked_components_only=False,
                             correction_reach=None),
        "all": ClickPolicy(prior_answer=False, correction_reach=None),
        "answer": ClickPolicy(prior_answer=True, prior_contrast=0.0, prior_min_share=0.0, correction_reach=None),
        "agree": ClickPolicy(prior_min_share=0.0, correction_reach=None),
        "noshare": ClickPolicy(prior_min_share=0.0, prior_contrast_in_region=7.0, reader_corrections=False),
        "reach2": ClickPolicy(prior_contrast_in_region=7.0, reader_corrections=False),
        "inregion": ClickPolicy(reader_corrections=False),
        "rcorr": ClickPolicy(),  # the session default
        "reach3": ClickPolicy(correction_reach=3.0, prior_contrast_in_region=7.0, reader_corrections=False),
        "gate2": ClickPolicy(prior_min_suvmax=2.0, prior_min_share=0.0, correction_reach=None),
        "gate2reach2": ClickPolicy(prior_min_suvmax=2.0),
    }  # fmt: skip


def test_set(seed: int, num_test: int, root: Path) -> Path:
    from seganypet_nnunet.synthetic import SyntheticConfig
    from seganypet_nnunet.synthetic.dataset import make_dataset

    return make_dataset(
        960 + seed, "ClickBench", 1, num_test, SyntheticConfig(size="small"), seed=100 + seed, raw_root=root
    )


def run_seed(model, raw: Path, n_clicks: int, device: str, names: tuple[str, ...]) -> dict[str, dict]:
    """{policy: summary-like {"cases", "mean", "monotonicity"}} for one test set."""
    from seganypet_nnunet.evaluation import summary as S
    from seganypet_nnunet.evaluation.interactive import SessionSegmenter, evaluate_interactive, find_cases
    from seganypet_nnunet.inference.session import SegAnyPETSession

    labels = json.loads((raw / "dataset.json").read_text())["labels"]
    cases = find_cases(raw / "imagesTs", raw / "labelsTs", raw / "instancesTs")
    session = SegAnyPETSession(model, device=device)
    per_policy: dict[str, dict] = {name: {} for name in names}
    for case in cases:
        session.set_image([str(f) for f in case.image_files])
        for name in names:
            session.click_policy = policies()[name]
            out = evaluate_interactive(
                [case], lambda c: SessionSegmenter(session), labels, n_clicks=n_clicks, reference_methods=True
            )
            per_policy[name][case.case_id] = out["cases"][case.case_id]
    result = {}
    for name, cases_out in per_policy.items():
        mean = S.aggregate(cases_out)
        result[name] = {"mean": mean, "monotonicity": S.monotonicity(cases_out, mean["per_structure"])}
    return result


def fmt(values: list[float]) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return f"{'-':>13}"
    sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return f"{statistics.mean(vals):6.3f}±{sd:5.3f}"


def report(results: list[dict], heldout: tuple[str, ...], names: tuple[str, ...]) -> None:
    from seganypet_nnunet.evaluation.reference_methods import ORACLE, best_method

    structures = sorted({s for r in results for s in r[names[0]]["mean"]["per_structure"]})
    head = ["structure", "reader@1", "oracle thr", *[f"{p}@{k}" for p in names for k in (1, 5)]]
    print(" | ".join(f"{h:>13}" for h in head))
    misses: dict[str, list[str]] = {p: [] for p in names if p in COMPLETE}
    for name in structures:
        blocks = {p: [r[p]["mean"]["per_structure"].get(name) for r in results] for p in names}
        ref = [b["reference_methods"] for b in blocks[names[0]] if b]
        reader = [best_method(r)[1] for r in ref]
        oracle = [r[ORACLE] for r in ref]
        cells = [fmt(reader), fmt(oracle)]
        for p in names:
            for k in (1, 5):
                cells.append(fmt([b["per_click"][k - 1]["dice"] for b in blocks[p] if b]))
        label = name + (" *" if name in heldout else "")
        print(" | ".join([f"{label:>13}", *cells]))
        for p in misses:
            at1 = statistics.mean(b["per_click"][0]["dice"] for b in blocks[p] if b)
            at5 = statistics.mean(b["per_click"][4]["dice"] for b in blocks[p] if b)
            if at1 < statistics.mean(reader) or at5 < statistics.mean(oracle):
                misses[p].append(f"{name}: @1 {at1:.3f} vs reader {statistics.mean(reader):.3f}, @5 {at5:.3f} vs "
                                 f"oracle {statistics.mean(oracle):.3f}")  # fmt: skip
    if heldout:
        print(f"* held out of the prompt targets in training: {', '.join(heldout)}")
    print("\nmonotonicity (per policy, summed over seeds):")
    for p in names:
        mono = [r[p]["monotonicity"] for r in results]
        falls = sorted({s for m in mono for s, v in m["per_structure"].items() if not v["non_decreasing"]})
        corr, worse = sum(m["corrections"] for m in mono), sum(m["worse"] for m in mono)
        print(f"  {p:>12}: correction clicks {corr}, lost > 0.05 Dice: {worse} ({worse / max(corr, 1):.1%}); "
              f"structures whose mean Dice falls somewhere: {falls or 'none'}")  # fmt: skip
    for p, missed in misses.items():
        print(f"\ntargets missed by '{p}' (ours@1 < reader@1 or ours@5 < oracle):", *(missed or ["none"]), sep="\n  ")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-m", required=True, help="model folder (Trainer__Plans__configuration)")
    p.add_argument("-f", default="0", help="fold. Default: 0")
    p.add_argument("-seeds", type=int, nargs="+", default=[0, 1, 2], help="test-set seeds. Default: 0 1 2")
    p.add_argument("-num_test", type=int, default=3, help="test cases per seed. Default: 3")
    p.add_argument("-n_clicks", type=int, default=5, help="clicks per target (>= 5). Default: 5")
    p.add_argument("-device", default="cpu")
    p.add_argument("-o", default=None, help="optional JSON with every figure")
    p.add_argument("-policies", nargs="+", default=list(POLICIES), choices=POLICIES, help="Default: all of them")
    a = p.parse_args()
    from seganypet_nnunet.inference.model_folder import load_model_folder
    from seganypet_nnunet.trainers.registry import heldout_labels

    np.seterr(all="ignore")
    model_folder = Path(a.m)
    model = load_model_folder(model_folder, (a.f,), "checkpoint_final.pth")
    root = Path(tempfile.mkdtemp(prefix="seganypet_clickbench_"))
    os.environ.setdefault("nnUNet_raw", str(root))
    results = []
    start = time.perf_counter()
    for seed in a.seeds:
        raw = test_set(seed, a.num_test, root)
        results.append(run_seed(model, raw, a.n_clicks, a.device, tuple(a.policies)))
        print(f"[seed {seed}] done after {time.perf_counter() - start:.0f} s", flush=True)
    print(f"\nmodel {model_folder.name}, fold {a.f}; {len(a.seeds)} test-set seeds x {a.num_test} cases; "
          f"{a.n_clicks} deterministic clicks per target; mean ± sd over seeds\n")  # fmt: skip
    report(results, tuple(heldout_labels(model_folder.name.split("__")[0])), tuple(a.policies))
    if a.o:
        Path(a.o).write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
