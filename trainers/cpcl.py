"""Training with mixed-quality labels: cross-prompting confident learning (CPCL) as hook overrides.

Low-quality cases are marked per case (``seganypet_nnunet.label_quality``: ``low_quality_cases.json`` beside
``dataset.json``, searched in the preprocessed dataset folder, then in ``$nnUNet_raw/DatasetXXX_Name``; or a
``label_quality`` map in dataset.json). Expert cases train exactly as in the parent trainer. For a low-quality sample
(nnU-Net's batch ``keys``) the trainer predicts its prompt target under ``cpcl.num_prompt_sets`` prompt sets (a box and
click sets, ``cross_prompt_sets``) with no gradient, from the SAME image embedding (only extra decoder passes), and
``cpcl_targets`` turns their uncertainty into per-voxel targets and weights (``cpcl_loss.py``). The prompted loss and,
for ``SegAnyPETTrainerCPCL``, nnU-Net's automatic-head loss (``weighted_nnunet_loss``) use those weights.

After each step ``last_cpcl`` holds ``{"samples", "confident_fraction", "mean_prompt_weight", "mean_auto_weight"}``
over the low-quality samples of the step (None when the step had none).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from seganypet_nnunet.label_quality import low_quality_cases
from seganypet_nnunet.model.network import ImageEmbedding
from seganypet_nnunet.trainers.base import TINY_BUDGET
from seganypet_nnunet.trainers.cpcl_loss import CPCLConfig, cpcl_targets, cross_prompt_sets, weighted_nnunet_loss
from seganypet_nnunet.trainers.SamMed3DTrainer import SamMed3DTrainer, SamMed3DTrainer_frozenEncoder
from seganypet_nnunet.trainers.SegAnyPETTrainer import SegAnyPETTrainer


class LabelQualityMixin:
    """Reads the low-quality case list at ``initialize`` (unknown names fail there) and flags batch samples."""

    cpcl: ClassVar[CPCLConfig] = CPCLConfig()

    def initialize(self) -> None:
        super().initialize()
        base = Path(self.preprocessed_dataset_folder_base)
        folders = [base]
        if os.environ.get("nnUNet_raw"):
            folders.append(Path(os.environ["nnUNet_raw"]) / self.plans_manager.dataset_name)
        self.low_quality_ids = low_quality_cases(
            dataset_json=self.dataset_json,
            dataset_json_source=str(base / "dataset.json"),
            list_folders=folders,
            case_ids=self.dataset_class.get_identifiers(self.preprocessed_dataset_folder),
        )
        self.last_cpcl: dict | None = None
        self.print_to_log_file(f"CPCL: {len(self.low_quality_ids)} low-quality training cases, {self.cpcl}")

    def cross_samples(self, batch: dict, valid: np.ndarray) -> np.ndarray:
        """(B,) bool: samples with a prompt target whose case is low quality (after the warm-up epochs)."""
        keys = [str(k) for k in batch.get("keys", ())]
        if len(keys) != len(valid) or self.current_epoch < self.cpcl.warmup_epochs:
            return np.zeros(len(valid), bool)
        return valid & np.array([k in self.low_quality_ids for k in keys], bool)

    def cpcl_weights(self, label: torch.Tensor, probs: torch.Tensor, cross: np.ndarray):
        """Full-batch (prompt target, prompt weight, auto weight) from the cross samples' K predictions ``probs``
        (K, n_cross, 1, P0, P1, P2); other samples keep ``label`` (B, 1, P0, P1, P2) at weight 1."""
        idx = torch.as_tensor(np.flatnonzero(cross), device=label.device)
        t, pw, aw, confident = cpcl_targets(label[idx], probs, config=self.cpcl)
        target, prompt_w, auto_w = label.clone(), torch.ones_like(label), torch.ones_like(label)
        target[idx], prompt_w[idx], auto_w[idx] = t, pw, aw
        self.last_cpcl = {
            "samples": int(idx.numel()),
            "confident_fraction": float(confident.mean()),
            "mean_prompt_weight": float(pw.mean()),
            "mean_auto_weight": float(aw.mean()),
        }
        return target, prompt_w, auto_w


class ExpertOnlyMixin(LabelQualityMixin):
    """Trains on the expert cases only: low-quality cases leave the training keys (validation keeps its split)."""

    def do_split(self):
        tr_keys, val_keys = super().do_split()
        kept = [k for k in tr_keys if k not in self.low_quality_ids]
        if not kept:
            raise RuntimeError(f"{type(self).__name__}: every training case of fold {self.fold} is low quality")
        self.print_to_log_file(f"expert only: {len(kept)} of {len(tr_keys)} training cases")
        return kept, val_keys


class CPCLMixin(LabelQualityMixin):
    """CPCL for ``SegAnyPETTrainer`` (put before it in the bases); ``cpcl`` holds the settings."""

    def step_loss(self, embedding: ImageEmbedding, target, batch: dict) -> torch.Tensor:
        seg = target[0] if isinstance(target, list) else target
        masks, valid, state = self.first_prompts(seg)
        cross = self.cross_samples(batch, valid)
        self.last_cpcl = None
        if not cross.any():
            auto = self.loss(embedding.auto_output, target)
            return auto + self.prompt_loss_weight * self.click_loop_loss(
                embedding, masks, valid, state, data=batch.get("data")
            )
        label = torch.as_tensor(masks, device=self.device).unsqueeze(1).float()
        probs = self.cross_prompt_probabilities(embedding, masks, cross)
        prompt_target, prompt_w, auto_w = self.cpcl_weights(label, probs, cross)
        auto = weighted_nnunet_loss(self.loss, embedding.auto_output, target, auto_w)
        prompted = self.click_loop_loss(
            embedding, masks, valid, state, target=prompt_target, voxel_weight=prompt_w, data=batch.get("data")
        )
        return auto + self.prompt_loss_weight * prompted

    def cross_prompt_probabilities(
        self, embedding: ImageEmbedding, masks: np.ndarray, cross: np.ndarray
    ) -> torch.Tensor:
        """(K, n_cross, 1, P0, P1, P2) sigmoid outputs of the decoder under the K prompt sets (no gradient), for the
        ``cross`` samples of ``masks`` (B, P0, P1, P2) bool; the embedding is sliced, not recomputed."""
        idx = np.flatnonzero(cross)
        t_idx = torch.as_tensor(idx, device=embedding.image_tokens.device)
        sub = dataclasses.replace(
            embedding,
            image_tokens=embedding.image_tokens[t_idx],
            highres_map=embedding.highres_map[t_idx],
            highres_unit=None if embedding.highres_unit is None else embedding.highres_unit[t_idx],
            auto_logits=embedding.auto_logits[t_idx],
        )
        sets = cross_prompt_sets(
            masks[idx],
            self.prompt_rng,
            num_sets=self.cpcl.num_prompt_sets,
            clicks_per_set=self.cpcl.clicks_per_set,
            include_box=self.cpcl.include_box,
        )
        net = self._module()
        with torch.no_grad():
            out = [net.decode(sub, s.to_prompts(None, self.device, masks.shape[1:]))[0] for s in sets]
        return torch.sigmoid(torch.stack(out).float())


class SamMed3DCPCLMixin(LabelQualityMixin):
    """CPCL for ``SamMed3DTrainer`` (prompt-only network, so only the prompted loss is weighted). Each prompt set is
    ``cpcl.clicks_per_set`` random interior clicks (SAM-Med3D's box prompts do not run; ``include_box`` is ignored)."""

    def loss_targets(self, embedding, masks: np.ndarray, valid: np.ndarray, batch: dict, target: torch.Tensor):
        cross = self.cross_samples(batch, valid)
        self.last_cpcl = None
        if not cross.any():
            return target, None
        net, idx = self._module(), np.flatnonzero(cross)
        sets = cross_prompt_sets(
            masks[idx],
            self.prompt_rng,
            num_sets=self.cpcl.num_prompt_sets,
            clicks_per_set=self.cpcl.clicks_per_set,
            include_box=False,
        )
        zeros = torch.zeros((len(idx), 1, *net.prompt_encoder.mask_shape), device=self.device)
        t_idx = torch.as_tensor(idx, device=self.device)
        sub = dataclasses.replace(embedding, image_embeddings=embedding.image_embeddings[t_idx])
        probs = []
        with torch.no_grad():
            for s in sets:
                points = net.points_to_weights_order(torch.as_tensor(s.points, dtype=torch.float32, device=self.device))
                low, _ = net.decode_lowres(sub, points, torch.as_tensor(s.labels, device=self.device), zeros)
                probs.append(torch.sigmoid(net.upsample(low).float()))
        prompt_target, prompt_w, _ = self.cpcl_weights(target.float(), torch.stack(probs), cross)
        return prompt_target, prompt_w


class SegAnyPETTrainerCPCL(CPCLMixin, SegAnyPETTrainer):
    """CPCL with the defaults: K = 4 prompt sets (a box + 3 x 3 clicks), entropy, threshold 0.5, down-weight 0.1."""


class SegAnyPETTrainerCPCL_variance(CPCLMixin, SegAnyPETTrainer):
    """The released code's uncertainty: variance over the prompt sets instead of entropy."""

    cpcl = CPCLConfig(uncertainty="variance")


class SegAnyPETTrainerCPCL_rectify(CPCLMixin, SegAnyPETTrainer):
    """Uncertain voxels take the ensemble's prediction as label (after 5 warm-up epochs of plain training)."""

    cpcl = CPCLConfig(mode="rectify", warmup_epochs=5)


class SegAnyPETTrainer_expertOnly(ExpertOnlyMixin, SegAnyPETTrainer):
    """CPCL's baseline: the plain trainer on the expert cases only (the low-quality ones left out)."""


class SegAnyPETTrainer_expertOnly_tiny(SegAnyPETTrainer_expertOnly):
    """Tests: TINY_BUDGET."""

    budget = TINY_BUDGET


class SegAnyPETTrainerCPCL_tiny(SegAnyPETTrainerCPCL):
    """Tests: TINY_BUDGET."""

    budget = TINY_BUDGET


class SamMed3DTrainerCPCL(SamMed3DCPCLMixin, SamMed3DTrainer):
    """SAM-Med3D fine-tuning with CPCL on low-quality cases."""


class SamMed3DTrainerCPCL_frozenEncoder(SamMed3DCPCLMixin, SamMed3DTrainer_frozenEncoder):
    """Only the prompt encoder and mask decoder learn; CPCL on low-quality cases."""
