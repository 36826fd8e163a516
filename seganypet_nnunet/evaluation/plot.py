"""Dice-vs-clicks plot for ``seganypet_evaluate`` (matplotlib, Agg canvas; no global backend switch)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Mapping

from seganypet_nnunet import io_utils


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


@_default_style
def plot_dice_vs_clicks(summary: Mapping, target: Path, title: str | None = None) -> Path:
    """Writes a PNG: mean Dice per click per structure (one line each, from ``summary["mean"]["per_structure"]``),
    with the automatic mode (dashed) and the nnU-Net baseline (dotted) as horizontal lines in the structure's colour.

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

    fig = Figure(figsize=(7.5, 4.5), dpi=110)
    FigureCanvasAgg(fig)  # Agg canvas for this figure only
    ax = fig.add_subplot(1, 1, 1)
    per_structure = summary["mean"]["per_structure"]
    auto = (summary.get("automatic") or {}).get("mean", {})
    base = (summary.get("baseline") or {}).get("mean", {})
    n = summary["settings"]["n_clicks"]
    colours = [_colour(i + 1) for i in range(len(per_structure))]
    for colour, (name, block) in zip(colours, sorted(per_structure.items()), strict=True):
        clicks = [row["click"] for row in block["per_click"]]
        ax.plot(
            clicks,
            [row["dice"] for row in block["per_click"]],
            "-o",
            color=colour,
            ms=3,
            label=f"{name} (n={block['n_targets']})",
        )
        if auto.get(name) is not None:
            ax.axhline(auto[name], color=colour, ls="--", lw=1)
        if base.get(name) is not None:
            ax.axhline(base[name], color=colour, ls=":", lw=1.2)
    handles, _ = ax.get_legend_handles_labels()
    if auto:
        handles.append(Line2D([], [], color="grey", ls="--", label="automatic mode"))
    if base:
        handles.append(Line2D([], [], color="grey", ls=":", label="nnU-Net baseline"))
    ax.set_xlim(0.8, n + 0.2)
    ax.set_xticks(range(1, n + 1))
    ax.set_ylim(0.0, 1.05)
    ax.set_xlabel("clicks")
    ax.set_ylabel("mean Dice (after each click)")
    ax.set_title(title or f"Dice vs clicks ({summary['settings']['protocol']} protocol)")
    ax.grid(alpha=0.3)
    if handles:
        ax.legend(handles=handles, fontsize=7, loc="lower right", ncol=2 if len(handles) > 8 else 1)
    fig.tight_layout()
    with io_utils.atomic_path(target) as tmp:
        fig.savefig(tmp, format="png")
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
