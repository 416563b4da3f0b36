"""Adam over one flat buffer: the training loop's optimiser, a few tensor operations per step.

:class:`FlatAdam` is :class:`torch.optim.Adam`'s update (``amsgrad=False``, L2 weight decay
added to the gradient, bias-corrected moments; the tests compare the two step by step) on
one contiguous buffer that holds every parameter of a network: the parameters become views
of that buffer and their gradients views of one gradient buffer, so a step is seven
element-wise operations whatever the number of parameter tensors, and zeroing the gradients
is one. Learning rates are plain numbers set before each step (:func:`cosine_lr` for the
cosine schedule, ``torch.optim.lr_scheduler.CosineAnnealingLR``'s closed form).

Why not ``torch.optim.Adam(fused=True)``: its first step imports ``torch._dynamo`` (about
1.2 s of CPU on our machine, paid by every training process), and each step adds Python
bookkeeping (hooks, state groups) that was a tenth of a small stage's step. Call
:meth:`FlatAdam.release` when training ends: the parameters get storage of their own again
(bundles are written with safetensors, which refuses tensors that share memory).
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

__all__ = ["FlatAdam", "cosine_lr"]


def cosine_lr(base_lr: float, step: int, total_steps: int) -> float:
    """The cosine-annealed learning rate after ``step`` of ``total_steps`` steps (to 0 at the end), in the units of ``base_lr``."""
    return base_lr * (1.0 + math.cos(math.pi * min(step, total_steps) / max(total_steps, 1))) / 2.0


class FlatAdam:
    """Adam on every parameter of ``params`` at once (see the module docstring).

    ``lr``: the step size (changed between steps through :attr:`lr`); ``weight_decay``:
    the L2 coefficient added to the gradient (as ``torch.optim.Adam``'s ``weight_decay``);
    ``betas``, ``eps``: Adam's moment decay rates and denominator guard.
    """

    def __init__(self, params: Iterable[nn.Parameter], *, lr: float, weight_decay: float = 0.0,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.params = [p for p in params if p.requires_grad]
        if not self.params:
            raise ValueError("FlatAdam needs at least one parameter that requires a gradient")
        first = self.params[0]
        if any(p.dtype != first.dtype or p.device != first.device for p in self.params):
            raise ValueError("FlatAdam needs parameters of one dtype on one device")
        self.lr, self.weight_decay, self.betas, self.eps = float(lr), float(weight_decay), betas, float(eps)
        total = sum(p.numel() for p in self.params)
        self.flat = torch.empty(total, dtype=first.dtype, device=first.device)
        self.grad = torch.zeros_like(self.flat)
        self.exp_avg = torch.zeros_like(self.flat)
        self.exp_avg_sq = torch.zeros_like(self.flat)
        self.steps = 0
        start = 0
        for p in self.params:
            n = p.numel()
            self.flat[start : start + n].copy_(p.detach().reshape(-1))
            p.data = self.flat[start : start + n].view_as(p)
            p.grad = self.grad[start : start + n].view_as(p)  # backward accumulates into the view, in place
            start += n

    def zero_grad(self) -> None:
        """Zero every gradient (one operation on the gradient buffer)."""
        self.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        """One Adam step with the current :attr:`lr` on the gradients accumulated since :meth:`zero_grad`."""
        self.steps += 1
        b1, b2 = self.betas
        g = self.grad if self.weight_decay == 0 else self.grad.add(self.flat, alpha=self.weight_decay)
        self.exp_avg.lerp_(g, 1 - b1)
        self.exp_avg_sq.mul_(b2).addcmul_(g, g, value=1 - b2)
        bias1, bias2 = 1 - b1**self.steps, 1 - b2**self.steps
        denom = self.exp_avg_sq.sqrt().div_(math.sqrt(bias2)).add_(self.eps)
        self.flat.addcdiv_(self.exp_avg, denom, value=-self.lr / bias1)

    def release(self) -> None:
        """Give every parameter storage of its own again and drop the gradients (call once training is over)."""
        for p in self.params:
            p.data = p.data.clone()
            p.grad = None
