"""The ``gradient`` method: integrated gradients averaged over background baselines.

Aumann-Shapley path attributions: for each baseline ``b`` of the background
multiset, the gradient of the explained function is integrated along the straight
path from ``b`` to the explained row ``x`` (Gauss-Legendre quadrature with
:attr:`~nestedae_core.explain.ExplainSettings.gradient_steps` nodes), times
``x - b``, and the results are averaged with the baselines' weights.

* Categorical inputs follow the straight path between one-hot vectors (the model
  is evaluated between the one-hot vertices only along that path, through a
  relaxed one-hot block) and the per-category terms are summed into one value.
* Upstream latents move per member (each fold model has its own latents); the
  member terms are summed (the explained output is the mean over members).

Equals Shapley values only for additive models; additivity holds up to the
quadrature error (first order in 1/nodes because of the ReLU kinks).
Units: values and base values in the explained output's unit.
"""
from __future__ import annotations

import numpy as np
import torch

from .explained_function import UPSTREAM_OFFSETS, ExplainedFunction

__all__ = ["integrated_gradients"]


def integrated_gradients(fn: ExplainedFunction, X: np.ndarray, B: np.ndarray, weights: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Integrated gradients of ``fn`` at the encoded rows ``X`` (n, F), averaged over
    the encoded baselines ``B`` (nb, F) with ``weights`` (sum 1).

    Returns values (n, F, K) and base values (K,) (the weighted mean of ``fn`` over
    the baselines), in the outputs' units.
    """
    dtype = fn.dtype
    nodes, qw = np.polynomial.legendre.leggauss(steps)
    alphas = fn.as_tensor((nodes + 1) / 2)
    qweights = fn.as_tensor(qw / 2)
    bw = fn.as_tensor(weights)
    n, F = X.shape
    nb, K = len(B), len(fn.outputs)
    xs = fn.tensors(fn.as_tensor(X))
    bs = fn.tensors(fn.as_tensor(B))
    per = max(1, fn.settings.chunk_rows // (nb * steps))
    values = np.zeros((n, F, K))
    a = alphas.view(1, 1, steps)
    for r0 in range(0, n, per):
        r1 = min(n, r0 + per)
        m = r1 - r0
        # path points: (row, baseline, step) flattened
        leaves: dict[str, torch.Tensor] = {}
        deltas: dict[str, torch.Tensor] = {}
        for f in fn.features:
            x, b0 = xs[f.name], bs[f.name]
            if f.kind == "numeric":
                xv, bv = x[r0:r1].view(m, 1, 1), b0.view(1, nb, 1)
                leaves[f.name] = (bv + a * (xv - bv)).reshape(-1).detach().requires_grad_(True)
                deltas[f.name] = (xv - bv).expand(m, nb, steps).reshape(-1)
            elif f.kind == "categorical":
                C = len(f.categories)
                xo = torch.nn.functional.one_hot(x[r0:r1], C).to(dtype).view(m, 1, 1, C)
                bo = torch.nn.functional.one_hot(b0, C).to(dtype).view(1, nb, 1, C)
                leaves[f.name] = (bo + a.unsqueeze(-1) * (xo - bo)).reshape(-1, C).detach().requires_grad_(True)
                deltas[f.name] = (xo - bo).expand(m, nb, steps, C).reshape(-1, C)
            else:
                Ms = x.shape[0]
                xv, bv = x[:, r0:r1].view(Ms, m, 1, 1), b0.view(Ms, 1, nb, 1)
                leaves[f.name] = (bv + a * (xv - bv)).reshape(Ms, -1).detach().requires_grad_(True)
                deltas[f.name] = (xv - bv).expand(Ms, m, nb, steps).reshape(Ms, -1)
        offsets = UPSTREAM_OFFSETS in xs
        if offsets:
            # not a feature: the upstream stage's residual offsets of the latents' source rows move along the path with
            # the latents; their part of the change is shared equally by the latent features (each latent column
            # carries 1/L of the offsets, see ExplainedFunction.tensors), so the attributions still add up
            Ms = xs[UPSTREAM_OFFSETS].shape[0]
            xv = xs[UPSTREAM_OFFSETS][:, r0:r1].unsqueeze(2).unsqueeze(2)  # (Ms, m, 1, 1, T)
            bv = bs[UPSTREAM_OFFSETS].unsqueeze(1).unsqueeze(3)  # (Ms, 1, nb, 1, T)
            leaves[UPSTREAM_OFFSETS] = (bv + a.unsqueeze(-1) * (xv - bv)).reshape(Ms, m * nb * steps, -1).detach().requires_grad_(True)
            deltas[UPSTREAM_OFFSETS] = (xv - bv).expand(-1, m, nb, steps, -1).reshape(Ms, m * nb * steps, -1)
        with torch.enable_grad():
            y = fn.evaluate(leaves)  # (m*nb*steps, K)
            wts = (bw.view(1, nb, 1) * qweights.view(1, 1, steps)).expand(m, nb, steps).reshape(-1)
            for k in range(K):
                grads = torch.autograd.grad(y[:, k].sum(), [leaves[f.name] for f in fn.features] + ([leaves[UPSTREAM_OFFSETS]] if offsets else []),
                                            retain_graph=k < K - 1)
                shared = (grads[-1] * deltas[UPSTREAM_OFFSETS]).sum(dim=(0, 2)) / len(fn.latent_cols) if offsets else None
                for j, (f, g) in enumerate(zip(fn.features, grads)):
                    contrib = g * deltas[f.name]
                    if f.kind == "categorical":
                        contrib = contrib.sum(dim=-1)
                    elif f.kind == "latent":
                        contrib = contrib.sum(dim=0)
                        if shared is not None:
                            contrib = contrib + shared
                    values[r0:r1, j, k] = (contrib * wts).view(m, nb * steps).sum(dim=1).detach().double().cpu().numpy()
    base = (fn(B).reshape(nb, K) * weights[:, None]).sum(axis=0)
    return values, base
