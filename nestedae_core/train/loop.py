"""The optimisation loop of one stage: all members at once, Adam, batches, early stopping.

* Each member is trained on its own rows (``train_mask``); full batch unless the
  stage spec sets ``batch_size``. A full batch runs each member on its own rows only
  (:func:`~.losses.member_rows_only`: rows of weight 0 in both masks are left out).
* Early stopping: when ``val_mask`` is given, the weights with the best validation
  loss are kept per member; with ``patience`` a member is done once it has not
  improved for that many epochs (its kept weights no longer change, as if it had
  been trained alone), and the loop stops once every member is done.
* A non-finite or diverging loss raises :class:`~nestedae_core.errors.TrainingError`;
  ``should_stop`` returning true raises :class:`~.progress.TrainingCancelled`.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable

import torch

from ..errors import TrainingError
from ..model.config import StageSpec
from ..model.nn import StageNet
from .losses import StageData, loss_weights, member_rows_only, stage_losses
from .optim import FlatAdam, cosine_lr
from .progress import TrainingCancelled

__all__ = ["EpochReport", "fit_stage"]

logger = logging.getLogger(__name__)

#: Called as ``report(epoch, member_losses, val_loss)`` about 100 times per stage.
EpochReport = Callable[[int, torch.Tensor, "float | None"], None]


def _snapshot(net: StageNet) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def fit_stage(
    net: StageNet,
    spec: StageSpec,
    d: StageData,
    train_mask: torch.Tensor,
    val_mask: torch.Tensor | None,
    *,
    seed: int,
    report: EpochReport,
    should_stop: Callable[[], bool] | None,
) -> int:
    """Train all members of one stage; returns the number of epochs run.

    ``train_mask`` / ``val_mask``: (members, rows), the weight with which a row trains /
    early-stops that member (0: not at all; 1 for every row unless the stage spec
    names a ``weight_column``). ``seed`` seeds the batch shuffling.
    """
    M, N = train_mask.shape
    dev = d.x.device
    n_train = (train_mask > 0).sum(dim=1)
    if spec.batch_size is None or spec.batch_size >= int(n_train.max()):
        steps_per_epoch, batch = 1, None
    else:
        batch = spec.batch_size
        steps_per_epoch = int(math.ceil(int(n_train.max()) / batch))
    used = train_mask > 0 if val_mask is None else (train_mask > 0) | (val_mask > 0)
    if batch is None and not bool(used.all()):
        # full batch: each member runs only on its own rows (never on a cross-validation member's held-out fold)
        masks = [train_mask] if val_mask is None else [train_mask, val_mask]
        d, masks = member_rows_only(d, masks)
        train_mask, val_mask = masks[0], (masks[1] if val_mask is not None else None)
    total_steps = spec.epochs * steps_per_epoch
    cosine = spec.schedule == "cosine"

    def step(member_losses: torch.Tensor) -> None:
        """One optimiser step on the summed member losses (the cosine schedule sets the learning rate after each)."""
        opt.zero_grad()
        member_losses.sum().backward()
        opt.step()
        if cosine:
            opt.lr = cosine_lr(spec.lr, opt.steps, total_steps)

    gen = torch.Generator(device="cpu").manual_seed(seed)
    # full-batch weights do not change between steps: normalise them once
    lw_full = loss_weights(spec, d, None, train_mask / train_mask.sum(dim=1).clamp_min(1e-12)[:, None]) if batch is None else None
    lw_val = loss_weights(spec, d, None, val_mask / val_mask.sum(dim=1).clamp_min(1e-12)[:, None]) if val_mask is not None else None
    train_weights = train_mask.cpu()
    train_rows = [torch.nonzero(train_mask[m].cpu()).flatten() for m in range(M)]

    best_val = torch.full((M,), float("inf"), device=dev)
    best_epoch = torch.zeros(M, dtype=torch.long)
    best_state = _snapshot(net) if val_mask is not None else None
    stopped = torch.zeros(M, dtype=torch.bool, device=dev)
    eval_every = max(1, spec.epochs // 200)
    report_every = max(1, spec.epochs // 100)
    # the loss is read back (a device sync, on a GPU) only every few epochs
    check_every = min(10, report_every)
    first_loss: float | None = None
    epoch = 0

    # Adam on one flat buffer of all the parameters: a handful of operations per step (see .optim); made just before
    # the try whose finally releases it, so the parameters never stay views of its buffer
    opt = FlatAdam(net.parameters(), lr=spec.lr, weight_decay=spec.l2)
    try:
        net.train()
        for epoch in range(1, spec.epochs + 1):
            if batch is None:
                loss_m, _ = stage_losses(net, spec, d, lw_full)
                step(loss_m)
            else:
                perms = []
                valid = []
                span = steps_per_epoch * batch
                for m in range(M):
                    r = train_rows[m][torch.randperm(len(train_rows[m]), generator=gen)]
                    pad = span - len(r)
                    perms.append(torch.cat([r, torch.zeros(pad, dtype=torch.long)]))
                    valid.append(torch.cat([train_weights[m, r], torch.zeros(pad)]))  # the rows' weights; 0 for padding
                idx = torch.stack(perms).to(dev)
                val_ = torch.stack(valid).to(dev)
                loss_acc = torch.zeros(M, device=dev)
                for s in range(steps_per_epoch):
                    rows = idx[:, s * batch : (s + 1) * batch]
                    wv = val_[:, s * batch : (s + 1) * batch]
                    loss_m, _ = stage_losses(net, spec, d, loss_weights(spec, d, rows, wv / wv.sum(dim=1, keepdim=True).clamp_min(1)))
                    step(loss_m)
                    loss_acc += loss_m.detach()
                loss_m = loss_acc / steps_per_epoch
            lm = loss_m.detach()
            evaluate = lw_val is not None and (epoch % eval_every == 0 or epoch == spec.epochs)
            reporting = epoch % report_every == 0 or epoch == spec.epochs
            if epoch == 1 or epoch % check_every == 0 or evaluate or reporting:
                if not bool(torch.isfinite(lm).all()):
                    raise TrainingError(
                        f"stage '{spec.name}': the loss became non-finite by epoch {epoch}; lower the learning rate "
                        f"(now {spec.lr:g}) or check the inputs for extreme values"
                    )
                mean_loss = float(lm.mean())
                if first_loss is None:
                    first_loss = mean_loss
                elif epoch > 10 and mean_loss > 100 * max(first_loss, 1e-3):
                    raise TrainingError(
                        f"stage '{spec.name}': the loss diverged (from {first_loss:.3g} to {mean_loss:.3g} at epoch {epoch}); "
                        f"lower the learning rate (now {spec.lr:g})"
                    )
            val_loss: float | None = None
            if evaluate:
                assert lw_val is not None and best_state is not None
                net.eval()
                with torch.inference_mode():
                    _, vt = stage_losses(net, spec, d, lw_val)
                net.train()
                # a member that has stalled for ``patience`` epochs is done, as if trained alone: the batch goes
                # on for the others, but its kept (best) weights no longer change
                improved = (vt < best_val) & ~stopped
                if bool(improved.any()):
                    best_val = torch.where(improved, vt, best_val)
                    best_epoch[improved.cpu()] = epoch
                    for k, v in net.state_dict().items():
                        if v.dim() > 0 and v.shape[0] == M:
                            sel = improved.view(M, *([1] * (v.dim() - 1)))
                            best_state[k] = torch.where(sel, v.detach(), best_state[k])
                val_loss = float(vt.mean())
                if spec.patience is not None:
                    stopped |= ((epoch - best_epoch) >= spec.patience).to(dev)
                if bool(stopped.all()):
                    report(epoch, lm, val_loss)
                    logger.info("stage %s: early stop at epoch %d", spec.name, epoch)
                    break
            if reporting:
                report(epoch, lm, val_loss)
            if should_stop is not None and should_stop():
                raise TrainingCancelled(f"training cancelled during stage '{spec.name}' at epoch {epoch}")
    finally:
        opt.release()  # the parameters own their storage again (also when cancelled or failed)
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return epoch
