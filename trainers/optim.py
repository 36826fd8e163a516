"""One optimizer object with two update rules: nnU-Net's SGD for the conv backbone, AdamW for the prompt head.

nnU-Net checkpoints and restores exactly one ``self.optimizer`` and its ``PolyLRScheduler`` writes the same lr into
every param group. ``SGDAdamW`` keeps both contracts: it is a single ``torch.optim.Optimizer`` (standard
``state_dict`` / ``load_state_dict``), and each group's effective step size is ``lr * lr_scale``, so the poly decay
applies to both rules while the AdamW group runs at a fraction of nnU-Net's SGD lr. Attention layers train poorly with
SGD + momentum 0.99 in a short budget; AdamW is what SAM / SAM-Med3D use for them.
"""

from __future__ import annotations

from typing import Iterable

import torch


class SGDAdamW(torch.optim.Optimizer):
    """Per-group rule ``"sgd"`` (torch SGD semantics, nesterov, L2 weight decay) or ``"adamw"`` (decoupled decay).

    Args:
        params: param groups (dicts); group keys override the defaults below.
        lr: base learning rate (the scheduler overwrites ``group["lr"]``).
        momentum: SGD momentum (nesterov).
        weight_decay: SGD: L2 added to the gradient; AdamW: decoupled, multiplied by the effective lr.
        betas, eps: AdamW moments.
        rule: default rule of groups that name none.
        lr_scale: default multiplier of ``group["lr"]``.
    """

    def __init__(
        self,
        params: Iterable[dict],
        lr: float,
        *,
        momentum: float = 0.99,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        rule: str = "sgd",
        lr_scale: float = 1.0,
    ) -> None:
        defaults = dict(
            lr=lr, momentum=momentum, weight_decay=weight_decay, betas=betas, eps=eps, rule=rule, lr_scale=lr_scale
        )
        super().__init__(params, defaults)
        for group in self.param_groups:
            if group["rule"] not in ("sgd", "adamw"):
                raise ValueError(f"SGDAdamW: rule must be 'sgd' or 'adamw', got {group['rule']!r}")

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, wd = group["lr"] * group["lr_scale"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is not None:
                    (self._sgd if group["rule"] == "sgd" else self._adamw)(p, group, lr, wd)
        return loss

    def _sgd(self, p: torch.Tensor, group: dict, lr: float, wd: float) -> None:
        d = p.grad.add(p, alpha=wd) if wd else p.grad
        state = self.state[p]
        buf = state.get("momentum_buffer")
        if buf is None:
            buf = state["momentum_buffer"] = d.detach().clone()
        else:
            buf.mul_(group["momentum"]).add_(d)
        p.add_(d.add(buf, alpha=group["momentum"]), alpha=-lr)

    def _adamw(self, p: torch.Tensor, group: dict, lr: float, wd: float) -> None:
        state = self.state[p]
        if not state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
        state["step"] += 1
        b1, b2 = group["betas"]
        if wd:
            p.mul_(1 - lr * wd)
        state["exp_avg"].lerp_(p.grad, 1 - b1)
        state["exp_avg_sq"].mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
        denom = (state["exp_avg_sq"] / (1 - b2 ** state["step"])).sqrt_().add_(group["eps"])
        p.addcdiv_(state["exp_avg"], denom, value=-lr / (1 - b1 ** state["step"]))
