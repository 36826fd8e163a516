"""Dice-vs-clicks plot for ``seganypet_evaluate`` (matplotlib, Agg canvas; no global backend switch)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Mapping

from seganypet_nnunet import io_utils
from seganypet_nnunet.evaluation.reference_methods import best_method


def _default_style(plot):
    """Draw with matplotlib's default style: nnU-Net's progress plot switches seaborn's font_scale=2.5 on globally
    in a training process, which would otherwise blow up our fonts when the demo plots after training."""

    @functools.wraps(plot)
    def wrapper(*args, **kwargs):
        from matplotlib import style

        with style.context("default"):
            return plot(*args, **kwargs)

    return wrapper


def _colour(index: int):
    """A distinct colour per 1-based index (label id or structure number): 1..15 never share one."""
    from matplotlib import colormaps

    palette = [colormaps["tab10"](i) for i in range(10)] + ["#ff00ff", "#00ced1", "#ffd700", "#000000", "#8b4513"]
    return palette[(index - 1) % len(palette)]


BASE_X, AUTO_X = -0.9, 0.0  # x of the automatic-mode columns left of click 1


@_default_style
def plot_dice_vs_clicks(summary: Mapping, target: Path, title: str | None = None) -> Path:
    """Writes a PNG: mean Dice per click per structure (one line each, from ``summary["mean"]["per_structure"]``).

    Readable at a glance: the nnU-Net baseline (triangle) and our automatic mode (square) are markers in two columns
    left of click 1, spread sideways per structure so equal values (e.g. many zeros) do not hide each other;
    structures never used as prompt targets in training (``summary["settings"]["heldout_structures"]``) are drawn
    dashed and labelled "held out"; the legend sits outside the axes.

    Args:
        summary: the dict returned by ``evaluate_interactive``.
        target: PNG path (written atomically).
        title: optional title; default names the protocol.

    Returns:
        ``target``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    per_structure = sorted(summary["mean"]["per_structure"].items())
    auto = (summary.get("automatic") or {}).get("mean", {})
    base = (summary.get("baseline") or {}).get("mean", {})
    heldout = set(summary["settings"].get("heldout_structures") or ())
    n = summary["settings"]["n_clicks"]
    fig = Figure(figsize=(9.0, 4.8), dpi=110)
    FigureCanvasAgg(fig)  # Agg canvas for this figure only
    ax = fig.add_subplot(1, 1, 1)
    has_ref = bool(auto or base)
    spread = [(i - (len(per_structure) - 1) / 2) * 0.5 / max(len(per_structure), 1) for i in range(len(per_structure))]
    for i, (name, block) in enumerate(per_structure):
        colour, held = _colour(i + 1), name in heldout
        clicks = [row["click"] for row in block["per_click"]]
        label = f"{name} (n={block['n_targets']})" + (" — held out" if held else "")
        ax.plot(
            clicks,
            [row["dice"] for row in block["per_click"]],
            "--" if held else "-",
            marker="o",
            color=colour,
            ms=3.5,
            lw=1.6,
            label=label,
        )
        reader = block.get("reference_methods")
        if reader is not None and best_method(reader)[1] is not None:  # the reader's best threshold, one click
            ax.hlines(best_method(reader)[1], 0.75, n + 0.15, colors=[colour], linestyles=":", lw=1.2)
        for values, marker, x in ((base, "^", BASE_X), (auto, "s", AUTO_X)):
            if values.get(name) is not None:
                ax.plot(
                    x + spread[i], values[name], marker, color=colour, ms=5, mfc="none" if marker == "s" else colour
                )
    handles, _ = ax.get_legend_handles_labels()
    if auto:
        handles.append(Line2D([], [], color="grey", ls="none", marker="s", mfc="none", label="ours, automatic mode"))
    if base:
        handles.append(Line2D([], [], color="grey", ls="none", marker="^", label="nnU-Net baseline, automatic"))
    if any("reference_methods" in b for _, b in per_structure):
        handles.append(Line2D([], [], color="grey", ls=":", label="best PET-reader threshold from click 1"))
    if heldout:
        handles.append(Line2D([], [], color="grey", ls="--", label="held out: never a prompt target in training"))
    ref_ticks = [(x, label) for x, label, v in ((BASE_X, "nnU-Net\nauto", base), (AUTO_X, "ours\nauto", auto)) if v]
    ticks = ref_ticks + [(k, str(k)) for k in range(1, n + 1)]
    ax.set_xticks([x for x, _ in ticks], [label for _, label in ticks])
    ax.set_xlim(BASE_X - 0.5 if base else AUTO_X - 0.5 if auto else 0.7, n + 0.3)
    if has_ref:
        ax.axvline(0.5, color="grey", lw=0.8)
    ax.set_ylim(-0.04, 1.04)
    ax.set_xlabel("clicks")
    ax.set_ylabel("mean Dice (after each click)")
    ax.set_title(title or f"Dice vs clicks ({summary['settings']['protocol']} protocol)")
    ax.grid(alpha=0.3)
    if handles:
        ax.legend(handles=handles, fontsize=7.5, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    with io_utils.atomic_path(target) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    return Path(target)


@_default_style
def plot_mip_overlay(
    pet_zyx,
    panels: Mapping[str, object],
    spacing_zyx,
    target: Path,
    label_names: Mapping[int, str] | None = None,
    title: str | None = None,
) -> Path:
    """Writes a PNG of coronal maximum-intensity projections of the PET, one panel per label map, masks outlined.

    Args:
        pet_zyx: PET (SUV) array in array order (z, y, x), as ``sitk.GetArrayFromImage``.
        panels: panel title -> integer label map on the same grid (z, y, x); each label is projected along y
            (anterior-posterior) and drawn as a coloured contour over the PET MIP.
        spacing_zyx: voxel spacing in mm in the same (z, y, x) order, for the aspect ratio.
        target: PNG path (written atomically).
        label_names: optional label id -> name for the legend.
        title: optional figure title.

    Returns:
        ``target``.
    """
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    pet_mip = np.asarray(pet_zyx, dtype=np.float32).max(axis=1)  # (z, x): coronal MIP
    vmax = float(np.percentile(pet_mip, 99.5)) or 1.0
    aspect = float(spacing_zyx[0]) / float(spacing_zyx[2])
    fig = Figure(figsize=(3.2 * (len(panels) + 1), 6.0), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels) + 1, squeeze=False)[0]
    labels_seen: set[int] = set()
    for ax, (name, seg) in zip(axes, [("PET MIP (SUV)", None), *panels.items()], strict=True):
        ax.imshow(pet_mip, cmap="gray_r", vmin=0, vmax=vmax, origin="lower", aspect=aspect)
        ax.set_title(name, fontsize=9)
        ax.set_axis_off()
        if seg is None:
            continue
        seg = np.asarray(seg)
        for label in (int(v) for v in np.unique(seg) if v > 0):
            ax.contour((seg == label).any(axis=1), levels=[0.5], colors=[_colour(label)], linewidths=0.8)
            labels_seen.add(label)
    names = label_names or {}
    handles = [Line2D([], [], color=_colour(lab), label=names.get(lab, str(lab))) for lab in sorted(labels_seen)]
    if handles:
        fig.legend(handles=handles, fontsize=7, loc="lower center", ncol=min(len(handles), 6))
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    with io_utils.atomic_path(target) as tmp:
        fig.savefig(tmp, format="png")
    return Path(target)
