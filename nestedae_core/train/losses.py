"""The training loss of one stage: target errors, reconstruction, categorical cross-entropy, L1.

All members of a stage are trained at once; :func:`stage_losses` returns one loss
per member. Targets are standardised (per member), so the loss is unitless.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..model.config import StageSpec
from ..model.nn import StageNet

__all__ = ["StageData", "distinct_rows", "elementwise_loss", "stage_losses"]


@dataclass
class StageData:
    """Training tensors of one stage.

    Rows with identical inputs (e.g. many devices of one recipe) share one row of
    ``x``: the network runs once per distinct input and ``inverse`` maps each
    table row to its distinct input. The loss is the same as over all rows.
    """

    x: torch.Tensor  # (M, U, W) distinct inputs
    inverse: torch.Tensor  # (N,) long: distinct-input index of each row
    y: torch.Tensor  # (M, N, T) standardised, NaN -> 0
    ymask: torch.Tensor  # (M, N, T) 1 where the target is present
    cat_idx: list[torch.Tensor]  # each (U,) long: category index per categorical input


def distinct_rows(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the first row of each distinct key (in order of appearance) and each row's distinct index."""
    codes, _ = pd.factorize(keys)
    _, first = np.unique(codes, return_index=True)  # codes number keys in order of appearance
    return first.astype(np.int64), codes.astype(np.int64)


def elementwise_loss(kind: str, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-element loss ``mae``, ``mse`` or (anything else) Huber with beta 0.5, in squared/absolute target units."""
    if kind == "mae":
        return (pred - target).abs()
    if kind == "mse":
        return (pred - target) ** 2
    return F.smooth_l1_loss(pred, target, reduction="none", beta=0.5)


def _noisy(net: StageNet, spec: StageSpec, x: torch.Tensor) -> torch.Tensor:
    """Inputs with training noise on the continuous part (the reconstruction target stays clean)."""
    if not net.training or spec.input_noise <= 0:
        return x
    n_cont = net.layout.n_continuous
    noise = torch.zeros_like(x)
    noise[..., :n_cont] = torch.randn_like(x[..., :n_cont]) * spec.input_noise
    return x + noise


def stage_losses(net: StageNet, spec: StageSpec, d: StageData, rows: torch.Tensor | None, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-member total loss and per-member target loss.

    ``rows``: (M, B) row indices of the batch (None: all rows); ``w``: (M, B) row
    weights (0 for padding / rows not in the member's set).
    """
    M = d.x.shape[0]
    if rows is None:
        # full batch: run the net on the distinct inputs, spread predictions to rows,
        # and weight each distinct input by the summed weight of its rows
        x, y, ym = d.x, d.y, d.ymask
        cats = [c.unsqueeze(0).expand(M, -1) for c in d.cat_idx]
        z, pred_u, cont, logits = net(_noisy(net, spec, x))
        pred = pred_u[:, d.inverse]
        w_rows = w
        w = torch.zeros(M, x.shape[1], device=x.device, dtype=w.dtype).index_add_(1, d.inverse, w)
    else:
        ar = torch.arange(M, device=d.x.device)[:, None]
        urows = d.inverse[rows]
        x, y, ym = d.x[ar, urows], d.y[ar, rows], d.ymask[ar, rows]
        cats = [c[urows] for c in d.cat_idx]
        z, pred, cont, logits = net(_noisy(net, spec, x))
        w_rows = w
    target_loss = torch.zeros(M, device=x.device)
    for t, tspec in enumerate(spec.targets):
        wt = w_rows * ym[..., t]
        denom = wt.sum(dim=1).clamp_min(1e-12)
        target_loss = target_loss + tspec.weight * (elementwise_loss(tspec.loss, pred[..., t], y[..., t]) * wt).sum(dim=1) / denom
    wsum = w.sum(dim=1).clamp_min(1e-12)
    total = target_loss
    n_cont = net.layout.n_continuous
    if cont is not None and spec.reconstruction_weight > 0:
        err = elementwise_loss(spec.reconstruction_loss, cont, x[..., :n_cont]).mean(dim=-1)
        total = total + spec.reconstruction_weight * (err * w).sum(dim=1) / wsum
    if logits and spec.categorical_weight > 0:
        for lg, ci in zip(logits, cats):
            ce = F.cross_entropy(lg.reshape(-1, lg.shape[-1]), ci.reshape(-1), reduction="none").reshape(ci.shape)
            total = total + spec.categorical_weight * (ce * w).sum(dim=1) / wsum
    if spec.l1 > 0:
        total = total + spec.l1 * net.l1_penalty()
    return total, target_loss
