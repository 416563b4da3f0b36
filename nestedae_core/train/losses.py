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

__all__ = ["LossWeights", "StageData", "distinct_rows", "elementwise_loss", "loss_weights", "member_rows_only", "stage_losses"]


@dataclass
class StageData:
    """Training tensors of one stage.

    Rows with identical inputs (e.g. many devices of one recipe) share one row of
    ``x``: the network runs once per distinct input and ``inverse`` maps each
    table row to its distinct input. The loss is the same as over all rows.
    """

    x: torch.Tensor  # (M, U, W) distinct inputs
    inverse: torch.Tensor  # (N,) long: distinct-input index of each row; (M, N) after member_rows_only
    y: torch.Tensor  # (M, N, T) standardised, NaN -> 0
    ymask: torch.Tensor  # (M, N, T) 1 where the target is present
    cat_idx: list[torch.Tensor]  # each (U,) long: category index per categorical input; (M, U) after member_rows_only
    ceilings: torch.Tensor | None = None  # (M, U, T) limits of ceiling targets per distinct input (None: no ceilings)


def member_rows_only(d: StageData, masks: list[torch.Tensor]) -> tuple[StageData, list[torch.Tensor]]:
    """Each member's data reduced to its own rows: those where any of ``masks`` (each (M, N) row weights) is positive.

    Member ``m`` keeps its rows and the distinct inputs they use, in their order,
    padded to the longest member's (padding repeats a row, a kept one where the member has any, with weight 0 in every
    returned mask, so every loss is the same); a cross-validation member never runs on
    its held-out fold. Returns the reduced data (per-member ``inverse`` and ``cat_idx``)
    and the masks on its rows.
    """
    M = d.x.shape[0]
    dev = d.x.device
    keep = torch.stack([m > 0 for m in masks]).any(dim=0).cpu()
    inverse = d.inverse.cpu()
    rows = [torch.nonzero(keep[m]).flatten() for m in range(M)]
    distinct = [torch.unique(inverse[r], return_inverse=True) for r in rows]  # sorted distinct inputs, each row's place
    n_rows, n_inputs = max(max(len(r) for r in rows), 1), max(max(len(u) for u, _ in distinct), 1)

    def padded(idx: torch.Tensor, n: int) -> torch.Tensor:
        return torch.cat([idx, idx[:1].expand(n - len(idx)) if len(idx) else torch.zeros(n, dtype=idx.dtype)])

    row_idx = torch.stack([padded(r, n_rows) for r in rows]).to(dev)  # (M, N')
    in_idx = torch.stack([padded(u, n_inputs) for u, _ in distinct]).to(dev)  # (M, U')
    inv = torch.stack([padded(i, n_rows) for _, i in distinct]).to(dev)
    real = (torch.arange(n_rows)[None, :] < torch.tensor([len(r) for r in rows])[:, None]).to(dev)
    ar = torch.arange(M, device=dev)[:, None]
    out = StageData(
        x=d.x[ar, in_idx],
        inverse=inv,
        y=d.y[ar, row_idx],
        ymask=d.ymask[ar, row_idx],
        cat_idx=[c[in_idx] for c in d.cat_idx],
        ceilings=None if d.ceilings is None else d.ceilings[ar, in_idx],
    )
    return out, [torch.where(real, m[ar, row_idx], torch.zeros((), dtype=m.dtype, device=dev)) for m in masks]


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


@dataclass
class LossWeights:
    """The row weights of one loss evaluation, normalised once (full-batch weights never change between steps).

    ``rows``: (M, B) row indices of a mini-batch, or None for all rows; ``targets``:
    (M, rows, T) weight of each row's target error (zero where the target is
    missing), each target's weights summing to its ``TargetSpec.weight``; ``inputs``:
    (M, network rows) weight of each row the network runs on (distinct inputs in a
    full batch) in the reconstruction losses, summing to 1.
    """

    rows: torch.Tensor | None
    targets: torch.Tensor
    inputs: torch.Tensor


def loss_weights(spec: StageSpec, d: StageData, rows: torch.Tensor | None, w: torch.Tensor) -> LossWeights:
    """Normalised :class:`LossWeights` from raw row weights ``w`` (M, B) of the batch ``rows`` (None: all rows).

    ``w`` is 0 for padding and for rows outside a member's set.
    """
    M = d.x.shape[0]
    if rows is None:
        ym = d.ymask
        # the network runs once per distinct input: its weight is the summed weight of its rows
        w_in = torch.zeros(M, d.x.shape[1], device=w.device, dtype=w.dtype)
        w_in = w_in.index_add_(1, d.inverse, w) if d.inverse.dim() == 1 else w_in.scatter_add_(1, d.inverse, w)
    else:
        ar = torch.arange(M, device=d.x.device)[:, None]
        ym = d.ymask[ar, rows]
        w_in = w
    wt = w[..., None] * ym
    tweight = torch.tensor([t.weight for t in spec.targets], dtype=wt.dtype, device=wt.device)
    wt = wt * (tweight / wt.sum(dim=1).clamp_min(1e-12))[:, None, :]
    return LossWeights(rows=rows, targets=wt, inputs=w_in / w_in.sum(dim=1, keepdim=True).clamp_min(1e-12))


def stage_losses(net: StageNet, spec: StageSpec, d: StageData, lw: LossWeights) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-member total loss and per-member target loss, with the weights ``lw`` (see :func:`loss_weights`)."""
    M = d.x.shape[0]
    rows = lw.rows
    if rows is None:
        # full batch: run the net on the distinct inputs and spread predictions to rows
        x, y = d.x, d.y
        cats = [c.unsqueeze(0).expand(M, -1) if c.dim() == 1 else c for c in d.cat_idx]
        z, pred_u, cont, logits = net(_noisy(net, spec, x), d.ceilings)
        if d.inverse.dim() == 1:
            pred = pred_u[:, d.inverse]
        else:  # each member's own rows (member_rows_only)
            pred = torch.gather(pred_u, 1, d.inverse[..., None].expand(-1, -1, pred_u.shape[-1]))
    else:
        ar = torch.arange(M, device=d.x.device)[:, None]
        urows = d.inverse[rows]
        x, y = d.x[ar, urows], d.y[ar, rows]
        cats = [c[urows] for c in d.cat_idx]
        z, pred, cont, logits = net(_noisy(net, spec, x), None if d.ceilings is None else d.ceilings[ar, urows])
    kinds = {t.loss for t in spec.targets}
    if len(kinds) == 1:
        target_loss = (elementwise_loss(kinds.pop(), pred, y) * lw.targets).sum(dim=(1, 2))
    else:
        target_loss = sum(
            (elementwise_loss(t.loss, pred[..., j], y[..., j]) * lw.targets[..., j]).sum(dim=1) for j, t in enumerate(spec.targets)
        )
    total = target_loss
    n_cont = net.layout.n_continuous
    if cont is not None and spec.reconstruction_weight > 0:
        err = elementwise_loss(spec.reconstruction_loss, cont, x[..., :n_cont]).mean(dim=-1)
        total = total + spec.reconstruction_weight * (err * lw.inputs).sum(dim=1)
    if logits and spec.categorical_weight > 0:
        for lg, ci in zip(logits, cats):
            # cross-entropy of the category ci: logsumexp of the logits minus the picked logit (F.cross_entropy's
            # log_softmax over a few categories costs twice as much)
            ce = torch.logsumexp(lg, dim=-1) - lg.gather(-1, ci[..., None]).squeeze(-1)
            total = total + spec.categorical_weight * (ce * lw.inputs).sum(dim=1)
    if spec.l1 > 0:
        total = total + spec.l1 * net.l1_penalty()
    return total, target_loss
