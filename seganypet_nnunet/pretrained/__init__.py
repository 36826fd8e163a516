"""Models shipped inside the package, loaded by name wherever a model folder is accepted.

A packaged model is an nnU-Net model folder under ``seganypet_nnunet/pretrained/<name>/``: ``plans.json``,
``dataset.json``, ``fold_0/checkpoint_final.pth`` holding the network weights only (no optimizer state; readable by
the safe loader) and ``MODEL_CARD.md`` (data, budget, figures, intended use). ``resolve_model`` turns ``-m NAME``
into that folder; an existing folder of the same name (relative to the working directory) wins.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from seganypet_nnunet.errors import InputNotFoundError, SeganypetError

PACKAGED_ROOT = Path(__file__).resolve().parent
REFERENCE_MODEL = "seganypet_reference"
CARD = "MODEL_CARD.md"
MAX_WEIGHTS_MB = 20.0
_CHECKPOINT_KEYS = ("network_weights", "init_args", "trainer_name", "inference_allowed_mirroring_axes")


def packaged_models(root: Path = PACKAGED_ROOT) -> dict[str, Path]:
    """Name -> folder of every packaged model (folders under ``root`` holding a ``plans.json``), sorted by name."""
    return {p.name: p for p in sorted(root.iterdir()) if p.is_dir() and (p / "plans.json").is_file()}


def resolve_model(folder_or_name: str | Path, root: Path = PACKAGED_ROOT) -> Path:
    """A model folder path, or the folder of the packaged model of that name.

    Raises:
        InputNotFoundError: neither an existing folder nor a packaged model's name (the message lists the names).
    """
    path = Path(folder_or_name)
    if path.exists() or len(path.parts) != 1:
        return path
    models = packaged_models(root)
    if path.name in models:
        return models[path.name]
    names = ", ".join(models) or "none installed"
    raise InputNotFoundError(f"{folder_or_name}: model folder not found, and not a packaged model ({names})")


def export_packaged_model(
    model_folder: str | Path,
    name: str,
    card: str,
    *,
    generator: dict | None = None,
    fold: int = 0,
    checkpoint: str = "checkpoint_final.pth",
    root: Path = PACKAGED_ROOT,
) -> Path:
    """Copy a trained model folder's plans, dataset.json and one fold's weights (only) to ``root/name`` with ``card``
    and ``generator.json`` (the synthetic generator settings it was trained on: ``preset``, ``tracer``, ``spacing_mm``;
    ``seganypet_demo --pretrained`` makes its test cases with them).

    The checkpoint keeps the keys ``load_model_folder`` reads (weights, configuration, trainer name, mirroring axes)
    and the trainer's tag; written under a temporary name, then renamed over any earlier version.

    Raises:
        SeganypetError: a bad name, or weights above ``MAX_WEIGHTS_MB``.
        CheckpointError / InputNotFoundError: the checkpoint is unreadable or missing.
    """
    import torch

    from seganypet_nnunet.checkpoint_io import load_checkpoint
    from seganypet_nnunet.io_utils import write_json
    from seganypet_nnunet.validation import check_path_name

    check_path_name(name, field="name")
    source = Path(model_folder) / f"fold_{fold}" / checkpoint
    if not source.is_file():
        raise InputNotFoundError(f"{source}: checkpoint not found")
    ckpt = load_checkpoint(source)
    slim = {k: ckpt[k] for k in _CHECKPOINT_KEYS if k in ckpt}
    slim.update({k: v for k, v in ckpt.items() if k.startswith("seganypet")})  # trainers.base.tag_checkpoint
    slim["network_weights"] = {k: v.detach().clone() for k, v in ckpt["network_weights"].items()}
    target, tmp = root / name, root / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "fold_0").mkdir(parents=True)
    try:
        for file in ("plans.json", "dataset.json"):
            shutil.copyfile(Path(model_folder) / file, tmp / file)
        torch.save(slim, tmp / "fold_0" / "checkpoint_final.pth")
        size_mb = (tmp / "fold_0" / "checkpoint_final.pth").stat().st_size / 1e6
        if size_mb > MAX_WEIGHTS_MB:
            raise SeganypetError(f"{source}: weights are {size_mb:.1f} MB, packaged models hold <= {MAX_WEIGHTS_MB} MB")
        (tmp / CARD).write_text(card)
        if generator is not None:
            write_json(generator, tmp / "generator.json")
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
