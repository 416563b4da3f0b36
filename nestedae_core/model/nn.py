"""Neural-network building blocks: ensemble-batched layers and the stage network.

Every layer holds the weights of ``members`` independent models side by side
(a leading ensemble dimension), so the k fold models of a cross-validation train
and predict in one batched matrix product. Member ``m`` only ever sees its own
weights: its gradients, and Adam's per-weight state, are independent of the
others', so training k members at once is the same as training k models one
after another (up to floating-point summation order).

Tensors flow as ``(members, rows, features)``. Every forward method takes an
optional ``members`` slice: the layers then use only those members' weights, and
the tensors carry only those members (``(len(selected), rows, features)``). The
attributions (:mod:`nestedae_core.explain`) run one fold model this way through
the very modules that make predictions.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import Activation, StageSpec

__all__ = ["EnsembleDropout", "EnsembleLinear", "affine", "dropped_positions", "EnsembleMLP", "StageNet", "StageLayout", "make_activation", "POSITIVE_SHARPNESS"]

#: Bounded heads bend with sharpness ``beta = POSITIVE_SHARPNESS / scale`` (scale: the target's
#: training standard deviation): a "positive" head's softplus differs from the identity by
#: less than 5e-6 scale from one standard deviation above zero, and only bends near zero;
#: a "fraction" head likewise near 0 and 1.
POSITIVE_SHARPNESS = 10.0


def _soft_unit_interval(u: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """``softplus_beta(u) - softplus_beta(u - 1)``: in (0, 1], the identity away from 0 and 1.

    Written as ``1 + softplus_beta(-u) - softplus_beta(1 - u)`` above 1/2, so it
    neither cancels nor leaves [0, 1] for large ``u``; clamped to the smallest
    positive number where it underflows (``u`` far below 0).
    """
    def sp(v: torch.Tensor) -> torch.Tensor:
        return F.softplus(v * beta) / beta

    low = sp(u) - sp(u - 1)
    high = 1 + sp(-u) - sp(1 - u)
    return torch.where(u < 0.5, low, high).clamp(torch.finfo(u.dtype).tiny, 1.0)

#: A selection of ensemble members: a slice of member indices, or None for all of them.
Members = slice | None


def make_activation(name: Activation) -> nn.Module:
    """The torch module for an activation name of :data:`nestedae_core.config.Activation`."""
    table: dict[str, Callable[[], nn.Module]] = {
        "relu": functools.partial(nn.ReLU, inplace=True),  # its input is always a fresh EnsembleLinear output
        "tanh": nn.Tanh,
        "gelu": nn.GELU,
        "silu": nn.SiLU,
        "elu": nn.ELU,
        "sigmoid": nn.Sigmoid,
        "identity": nn.Identity,
    }
    return table[name]()


def affine(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``x @ weight + bias`` batched over members: (M, rows, in) x (M, in, out) + (M, 1, out) -> (M, rows, out).

    A layer much wider than its input gets its bias as one more input (a column of ones):
    the product then writes the output once, where ``baddbmm`` first copies the bias into it.
    """
    if weight.shape[-1] > 4 * (x.shape[-1] + 1):
        ones = torch.ones(x.shape[:-1] + (1,), dtype=x.dtype, device=x.device)
        return torch.bmm(torch.cat([x, ones], dim=-1), torch.cat([weight, bias], dim=-2))
    return torch.baddbmm(bias, x, weight)


class EnsembleLinear(nn.Module):
    """``members`` independent affine maps: ``y[m] = x[m] @ weight[m] + bias[m]``.

    Initialised like :class:`torch.nn.Linear` (uniform in ±1/sqrt(in_features)).
    """

    def __init__(self, members: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.members, self.in_features, self.out_features = members, in_features, out_features
        bound = 1.0 / math.sqrt(max(in_features, 1))
        self.weight = nn.Parameter(torch.empty(members, in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, 1, out_features).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor, members: Members = None, scale: float = 1.0) -> torch.Tensor:
        """``x``: (members, rows, in_features) -> (members, rows, out_features).

        With ``members`` (a slice), ``x`` holds only the selected members and only
        their weights are used. ``scale``: multiplies ``x`` (a dropout's ``1 / (1 - p)``,
        applied to the weights, the smaller tensor).
        """
        weight, bias = (self.weight, self.bias) if members is None else (self.weight[members], self.bias[members])
        return affine(x, weight if scale == 1.0 else weight * scale, bias)

    def extra_repr(self) -> str:
        return f"members={self.members}, in_features={self.in_features}, out_features={self.out_features}"


def dropped_positions(n: int, p: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """Sorted flat indices in ``[0, n)``, each index in independently with probability ``p`` (int64).

    Drawn as the gaps between dropped elements, ``Geometric(p)`` (``floor(log(u) / log(1 - p)) + 1``
    with ``u`` uniform in (0, 1) at a resolution of 2**-31, one 32-bit draw of torch's default
    generator per gap): about ``n * p`` draws instead of one per element, so a tenth of the
    random numbers for ``p = 0.1``; the rate is ``p`` to within 2**-31.
    """
    if n <= 0 or p <= 0.0:
        return torch.empty(0, dtype=torch.int64, device=device)
    log_keep = math.log1p(-p)
    mean = n * p
    k = int(mean + 6.0 * math.sqrt(mean * (1.0 - p)) + 16)
    chunks: list[torch.Tensor] = []
    start = -1.0  # the position before the first gap
    while True:
        r = torch.empty(k, dtype=torch.int32, device=device).random_()  # uniform in [0, 2**31)
        gaps = r.to(torch.float64).add_(0.5).mul_(2.0**-31).log_().div_(log_keep).floor_().add_(1.0)
        pos = gaps.cumsum_(0).add_(start)
        chunks.append(pos)
        start = float(pos[-1])
        if start >= n:  # past the end: every dropped position below n is drawn (rarely needs a second round)
            break
    pos = chunks[0] if len(chunks) == 1 else torch.cat(chunks)
    return pos[: int(torch.searchsorted(pos, float(n)))].to(torch.int64)


def _zero_at(out: torch.Tensor, drop: torch.Tensor) -> torch.Tensor:
    """``out`` (contiguous) with the elements ``drop`` (flat int64 indices, or a bool mask of its shape) set to 0, in place."""
    if drop.dtype == torch.bool:
        return out.masked_fill_(drop, 0.0)
    out.view(-1).index_fill_(0, drop, 0.0)
    return out


class _ReluDrop(torch.autograd.Function):
    """``relu(x)`` with the elements ``drop`` set to 0 (unscaled), in place on ``x`` (a fresh layer output).

    Forward one pass over ``x`` plus a write per dropped element; backward one pass, the
    gradient where the output is positive (as ReLU's own backward); only the output is saved.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, drop: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.mark_dirty(x)
        _zero_at(x.clamp_min_(0.0), drop)
        ctx.save_for_backward(x)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        (out,) = ctx.saved_tensors
        return torch.ops.aten.threshold_backward(grad, out, 0.0), None


class _Drop(torch.autograd.Function):
    """``x * scale`` with the elements ``drop`` set to 0; backward the same map of the gradient."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, drop: torch.Tensor, scale: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(drop)
        ctx.scale = scale
        return _zero_at(x.contiguous() * scale if scale != 1.0 else x.clone(memory_format=torch.contiguous_format), drop)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # type: ignore[override]
        (drop,) = ctx.saved_tensors
        g = grad.contiguous() * ctx.scale if ctx.scale != 1.0 else grad.clone(memory_format=torch.contiguous_format)
        return _zero_at(g, drop), None, None


class EnsembleDropout(nn.Module):
    """Dropout: zero each element with probability ``p`` (independently; the rate exact to 2**-31), scale the rest by ``1 / (1 - p)``.

    On a CPU the dropped elements are drawn as their positions (:func:`dropped_positions`,
    about ``p * n`` random numbers instead of ``n``) and zeroed in place; elsewhere as a
    mask ``rand < p``. Inside an :class:`EnsembleMLP` it is fused with the activation
    before it, and its scale is folded into the next layer's weights (:meth:`after`): the
    same function with two passes over the hidden layer fewer. The identity in ``eval()`` mode.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        self.scale = 1.0 / (1.0 - p)

    @property
    def active(self) -> bool:
        """True when it drops anything (training mode and ``p > 0``)."""
        return self.training and self.p > 0.0

    def draw(self, x: torch.Tensor) -> torch.Tensor:
        """Which elements of ``x`` to drop: flat int64 indices (CPU) or a bool mask of ``x``'s shape (other devices)."""
        if x.device.type == "cpu":
            return dropped_positions(x.numel(), self.p, x.device)
        return torch.rand(x.shape, device=x.device) < self.p

    def after(self, activation: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """``activation(x)`` with dropped elements zeroed and the rest NOT scaled (the next layer applies :attr:`scale`).

        ``x`` must be a fresh layer output (ReLU is applied in place on it). Training mode only.
        """
        drop = self.draw(x)
        if isinstance(activation, nn.ReLU):
            return _ReluDrop.apply(x.contiguous(), drop)
        return _Drop.apply(activation(x), drop, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` with dropout applied (training mode) or unchanged (eval mode)."""
        if not self.active:
            return x
        return _Drop.apply(x, self.draw(x), self.scale)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class EnsembleMLP(nn.Module):
    """Stack of :class:`EnsembleLinear` layers with activations (and dropout after hidden layers)."""

    def __init__(
        self,
        members: int,
        in_features: int,
        hidden: list[int],
        out_features: int,
        activation: Activation = "relu",
        out_activation: Activation = "identity",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        d = in_features
        for h in hidden:
            layers += [EnsembleLinear(members, d, h), make_activation(activation)]
            if dropout > 0:
                layers.append(EnsembleDropout(dropout))
            d = h
        layers.append(EnsembleLinear(members, d, out_features))
        if out_activation != "identity":
            layers.append(make_activation(out_activation))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, members: Members = None) -> torch.Tensor:
        """(members, rows, in_features) -> (members, rows, out_features); ``members``: see :class:`EnsembleLinear`."""
        layers = list(self.net)
        scale, i = 1.0, 0
        while i < len(layers):
            layer = layers[i]
            if isinstance(layer, EnsembleLinear):
                x, scale = layer(x, members, scale), 1.0
            elif i + 1 < len(layers) and isinstance(layers[i + 1], EnsembleDropout) and layers[i + 1].active:
                drop = layers[i + 1]  # activation and dropout in one step; the next layer scales
                x, scale = drop.after(layer, x), drop.scale
                i += 1
            elif not isinstance(layer, EnsembleDropout):  # an inactive dropout is the identity
                x = layer(x)
            i += 1
        return x

    def linear_layers(self) -> list[EnsembleLinear]:
        """The affine layers, input side first."""
        return [m for m in self.net if isinstance(m, EnsembleLinear)]


@dataclass(frozen=True)
class StageLayout:
    """Column layout of a stage's model input.

    The input vector is ``[upstream latents | numeric inputs | one-hot categoricals]``;
    the first ``n_upstream + n_numeric`` entries are standardised and reconstructed
    with the numeric loss, the one-hot blocks with cross-entropy.
    """

    n_upstream: int
    n_numeric: int
    categories: tuple[tuple[str, ...], ...]

    @property
    def n_continuous(self) -> int:
        """Number of standardised, numerically reconstructed inputs."""
        return self.n_upstream + self.n_numeric

    @property
    def width(self) -> int:
        """Total model input width."""
        return self.n_continuous + sum(len(c) for c in self.categories)

    def category_slices(self) -> list[slice]:
        """Slices of the one-hot blocks inside the input vector."""
        out, start = [], self.n_continuous
        for cats in self.categories:
            out.append(slice(start, start + len(cats)))
            start += len(cats)
        return out


class StageNet(nn.Module):
    """One NestedAE stage for ``members`` ensemble members.

    encoder: input -> latent (``latent_activation``); heads: latent -> each target;
    decoder: latent -> continuous inputs; one categorical decoder per categorical
    input: latent -> logits over its categories.

    Targets in their units. Each head's raw output ``h`` is a standardised value;
    the target is ``link(h * scale + mean)`` with the member's training mean and
    standard deviation of the target (:meth:`set_target_standardisation`) and the
    target's ``bounds`` (:class:`~nestedae_core.model.config.TargetSpec`):

    * ``real``: the identity (the prediction is ``h * scale + mean``);
    * ``positive``: a softplus of slope ``beta = POSITIVE_SHARPNESS / scale``,
      ``log(1 + exp(beta u)) / beta``: never negative, the identity inside the data;
    * ``fraction``: a smooth clamp to the unit interval with the same slope,
      ``softplus_beta(u) - softplus_beta(u - 1)``: in (0, 1], the identity inside the data;
    * a target with a ``ceiling`` ``C`` (a function of the upstream stage's prediction,
      passed to :meth:`target_units` as ``ceilings``): ``C`` times the same clamp of ``u / C``,
      so in (0, C], the identity inside the data; with the ceiling's ``link`` ``logit``,
      ``C * sigmoid(h + offset)``: the head predicts the logit of the fraction of its limit,
      around ``offset`` (a buffer saved with the weights, each member's mean logit of
      value / limit over its training rows, :meth:`set_fraction_offsets`), so the
      prediction follows the limit and approaches it smoothly, never with a corner;
    * a ``product`` target has no head: it is ``scale`` times the product of its factors.

    A residual target (:class:`~nestedae_core.model.config.ResidualSpec`) is a
    correction to add to the previous stage's prediction (the chain adds it); with
    a ``bound`` its link is ``mean + bound * tanh(h * scale / bound)``.

    :meth:`target_units` applies it (predictions, explanations),
    :meth:`standardised_targets` gives ``(link(...) - mean) / scale``, what the
    training loss compares with the standardised target (``h`` itself for a real
    target). The mean and scale are buffers that are not saved with the weights:
    they come from the stage's :class:`~nestedae_core.model.preprocessing.StagePreprocessing`.
    """

    def __init__(self, spec: StageSpec, layout: StageLayout, members: int) -> None:
        super().__init__()
        self.spec, self.layout, self.members = spec, layout, members
        self.bounds: tuple[str, ...] = tuple(t.bounds for t in spec.targets)
        # residual targets: the head predicts a correction, capped at this distance from its mean (None: not capped)
        caps = {r.target: r.bound for r in spec.residual}
        self.correction_caps: tuple[float | None, ...] = tuple(caps.get(t.column) for t in spec.targets)
        #: target index of each head's output (a product target has no head)
        self.head_targets: tuple[int, ...] = tuple(spec.head_targets)
        self.has_ceilings = any(t.ceiling is not None for t in spec.targets)
        #: targets whose head predicts the logit of the fraction of their ceiling
        self.logit_fractions: tuple[bool, ...] = tuple(t.ceiling is not None and t.ceiling.link == "logit" for t in spec.targets)
        self._plain = (all(b == "real" for b in self.bounds) and len(self.head_targets) == len(self.bounds)
                       and all(c is None for c in self.correction_caps))
        # every target has a head and is real, positive or fraction (no ceiling, product or correction cap): its
        # links apply to all columns at once
        self._columnwise = (len(self.head_targets) == len(self.bounds) and all(c is None for c in self.correction_caps)
                            and all(t.ceiling is None and t.product is None for t in spec.targets))
        self._std_cache: tuple[tuple[object, ...], torch.Tensor, torch.Tensor] | None = None
        self.encoder = EnsembleMLP(members, layout.width, spec.encoder_hidden, spec.latent_dim, spec.activation, spec.latent_activation)
        self.heads = nn.ModuleList(
            EnsembleMLP(members, spec.latent_dim, spec.head_hidden, 1, "relu" if spec.activation == "identity" else spec.activation, dropout=spec.head_dropout)
            for _ in self.head_targets
        )
        self.decoder = (
            EnsembleMLP(members, spec.latent_dim, spec.decoder_hidden, layout.n_continuous, spec.activation) if layout.n_continuous else None
        )
        self.cat_decoders = nn.ModuleList(
            EnsembleMLP(members, spec.latent_dim, spec.decoder_hidden, len(cats), spec.activation) for cats in layout.categories
        )
        T = len(spec.targets)
        # float64, in the targets' units; not part of the state dict (bundles keep them in preprocessing.json)
        self.register_buffer("target_mean", torch.zeros(members, 1, T, dtype=torch.float64), persistent=False)
        self.register_buffer("target_scale", torch.ones(members, 1, T, dtype=torch.float64), persistent=False)
        if any(self.logit_fractions):  # saved with the weights: the logit of the typical fraction of each limit
            self.register_buffer("fraction_offset", torch.zeros(members, 1, T))

    def set_fraction_offsets(self, targets: np.ndarray, ceilings: np.ndarray, rows: np.ndarray) -> "StageNet":
        """Set each member's ``fraction_offset`` of its logit-link ceiling targets: the mean over its ``rows`` of
        ``logit(value / limit)``, the fraction clipped to [0.01, 0.99]; returns self (a no-op without such targets).

        ``targets``: (n, n_targets) raw values in target units (NaN where missing); ``ceilings``: (members, n,
        n_targets) each member's limits, same units; ``rows``: (members, n) weight or bool of each member's training rows.
        """
        if not any(self.logit_fractions):
            return self
        off = np.zeros((self.members, len(self.bounds)))
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.clip(np.asarray(targets, dtype=np.float64)[None] / np.asarray(ceilings, dtype=np.float64), 0.01, 0.99)
        logit = np.log(frac) - np.log1p(-frac)
        for j, on in enumerate(self.logit_fractions):
            for m in range(self.members):
                sel = (np.asarray(rows[m]) > 0) & np.isfinite(logit[m, :, j])
                off[m, j] = float(logit[m, sel, j].mean()) if on and sel.any() else 0.0
        buf = self.get_buffer("fraction_offset")
        self.fraction_offset = torch.as_tensor(off, dtype=buf.dtype, device=buf.device)[:, None, :].clone()
        return self

    def set_target_standardisation(self, mean: np.ndarray, scale: np.ndarray) -> "StageNet":
        """Set each member's target mean and standard deviation, (members, n_targets) in target units; returns self."""
        shape = (self.members, len(self.bounds))
        mean, scale = np.asarray(mean, dtype=np.float64), np.asarray(scale, dtype=np.float64)
        if mean.shape != shape or scale.shape != shape:
            raise ValueError(f"target mean/scale must have shape {shape}, got {mean.shape} and {scale.shape}")
        dev, dt = self.target_mean.device, self.target_mean.dtype
        self.target_mean = torch.as_tensor(mean, dtype=dt, device=dev)[:, None, :].clone()
        self.target_scale = torch.as_tensor(scale, dtype=dt, device=dev)[:, None, :].clone()
        return self

    def encode(self, x: torch.Tensor, members: Members = None) -> torch.Tensor:
        """(members, rows, width) -> latents (members, rows, latent_dim).

        ``members``: only these members (``x`` then holds only them); None: all.
        """
        return self.encoder(x, members)

    def predict_from_latent(self, z: torch.Tensor, members: Members = None) -> torch.Tensor:
        """Latents -> the heads' raw (standardised) outputs ``h`` (members, rows, n_heads); ``members`` as in :meth:`encode`.

        ``n_heads`` is the number of targets with a head of their own (every target but products).

        For a ``real`` target, ``h`` is the standardised prediction; for every
        target, :meth:`target_units` turns ``h`` into the prediction in its units.
        """
        if len(self.heads) > 1 and len(self.spec.head_hidden) == 1 and all(isinstance(h, EnsembleMLP) for h in self.heads):
            return self._fused_heads(z, members)
        return torch.cat([h(z, members) for h in self.heads], dim=-1)

    def _fused_heads(self, z: torch.Tensor, members: Members) -> torch.Tensor:
        """Every head (one hidden layer each) at once: the same function as running them one by one.

        The hidden layers are concatenated into one wide layer and the output layers
        into one block-diagonal layer: two batched products instead of two per head
        (fewer, larger operations: the device stage's four heads train about 1.5x faster).
        """
        sel = slice(None) if members is None else members
        layers = [h.linear_layers() for h in self.heads]
        w1 = torch.cat([first.weight[sel] for first, _ in layers], dim=-1)  # (M, L, T*H)
        b1 = torch.cat([first.bias[sel] for first, _ in layers], dim=-1)
        modules = list(self.heads[0].net)  # [linear, activation, (dropout), linear]
        drop = modules[2] if isinstance(modules[2], EnsembleDropout) and modules[2].active else None
        pre = affine(z, w1, b1)
        hidden = drop.after(modules[1], pre) if drop is not None else modules[1](pre)
        T = len(layers)
        w2 = torch.stack([last.weight[sel] for _, last in layers], dim=1)  # (M, T, H, 1)
        eye = torch.eye(T, dtype=w2.dtype, device=w2.device) * (drop.scale if drop is not None else 1.0)
        w2 = (w2 * eye[None, :, None, :]).reshape(w2.shape[0], -1, T)  # block diagonal (M, T*H, T), the dropout's scale in it
        b2 = torch.cat([last.bias[sel] for _, last in layers], dim=-1)  # (M, 1, T)
        return torch.baddbmm(b2, hidden, w2)

    def _standardisation(self, members: Members, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """The target mean and scale in ``dtype`` (converted once per dtype, not at every training step).

        Buffers made in ``torch.inference_mode`` (no version counter) are converted at every call, and a
        conversion made in inference mode is not kept (autograd could not use it afterwards).
        """
        src_mean, src_scale = self.target_mean, self.target_scale
        if src_mean.is_inference() or src_scale.is_inference():
            mean, scale = src_mean.to(dtype), src_scale.to(dtype)
        else:
            key = (dtype, src_mean, src_scale, src_mean._version, src_scale._version)
            cache = getattr(self, "_std_cache", None)  # (an object pickled before the cache existed has none)
            if cache is None or len(cache[0]) != len(key) or any(a is not b if isinstance(a, torch.Tensor) else a != b
                                                                 for a, b in zip(cache[0], key)):
                cache = (key, src_mean.to(dtype), src_scale.to(dtype))
                if not torch.is_inference_mode_enabled():
                    self._std_cache = cache
            mean, scale = cache[1], cache[2]
        if members is not None:
            mean, scale = mean[members], scale[members]
        return mean, scale

    def target_units(self, h: torch.Tensor, members: Members = None, ceilings: torch.Tensor | None = None) -> torch.Tensor:
        """Raw head outputs ``h`` (members, rows, n_heads) -> predictions (members, rows, n_targets) in the targets' units, in ``h``'s dtype.

        ``link(h * scale + mean)`` per target (see the class docstring); pass
        ``h.double()`` for float64 predictions. ``members`` as in :meth:`encode`.
        ``ceilings`` (members or 1, rows, n_targets): the limits of the targets with a
        :class:`~nestedae_core.model.config.Ceiling` (see
        :func:`~nestedae_core.model.ceilings.upstream_ceilings`); required when the
        stage has such targets. A ceiling target is ``C * f`` with ``f`` in (0, 1] the
        smooth unit-interval link of ``u / C`` (the identity inside the data, never
        above 1), so it never exceeds its limit ``C``; a product target is
        ``scale * prod(factors)``.
        """
        if self._plain:
            mean, scale = self._standardisation(members, h.dtype)
            return h * scale + mean
        if getattr(self, "_columnwise", False):
            return self._columnwise_units(h, *self._standardisation(members, h.dtype))
        if self.has_ceilings and ceilings is None:
            raise ValueError(f"stage '{self.spec.name}' has targets with a ceiling: pass the upstream ceilings")
        mean, scale = self._standardisation(members, h.dtype)
        cols: list[torch.Tensor | None] = [None] * len(self.bounds)
        for k, j in enumerate(self.head_targets):
            sj = scale[..., j : j + 1]
            uj = h[..., k : k + 1] * sj + mean[..., j : j + 1]
            t = self.spec.targets[j]
            cap = self.correction_caps[j]
            if cap is not None:  # a residual's correction: mean + cap * tanh((u - mean) / cap)
                uj = mean[..., j : j + 1] + cap * torch.tanh(h[..., k : k + 1] * sj / cap)
            elif t.ceiling is not None and self.logit_fractions[j]:
                assert ceilings is not None
                off = self.get_buffer("fraction_offset")
                off = (off if members is None else off[members])[..., j : j + 1].to(h.dtype)
                frac = torch.sigmoid(h[..., k : k + 1] + off).clamp_min(torch.finfo(h.dtype).tiny)
                uj = ceilings[..., j : j + 1].to(h.dtype) * frac
            elif t.ceiling is not None:
                assert ceilings is not None
                c = ceilings[..., j : j + 1].to(h.dtype)
                c_safe = c.clamp_min(torch.finfo(h.dtype).tiny)
                ratio = (uj / c_safe).clamp(-1e6, 1e6)
                uj = c * _soft_unit_interval(ratio, POSITIVE_SHARPNESS * c_safe / sj)
            elif t.bounds == "positive":
                beta = POSITIVE_SHARPNESS / sj
                uj = F.softplus(uj * beta) / beta
            elif t.bounds == "fraction":
                uj = _soft_unit_interval(uj, POSITIVE_SHARPNESS / sj)
            cols[j] = uj
        names = [t.column for t in self.spec.targets]
        for j, t in enumerate(self.spec.targets):
            if t.product is not None:
                value = cols[names.index(t.product.factors[0])]
                assert value is not None
                for f in t.product.factors[1:]:
                    value = value * cols[names.index(f)]  # type: ignore[operator]
                cols[j] = value * t.product.scale
        return torch.cat(cols, dim=-1)  # type: ignore[arg-type]

    def _columnwise_units(self, h: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """:meth:`target_units` of real, positive and fraction targets, every column at once (the same links)."""
        u = h * scale + mean
        if "positive" in self.bounds:
            beta = POSITIVE_SHARPNESS / scale
            u = torch.where(self._bound_columns("positive", h.device), F.softplus(u * beta) / beta, u)
        if "fraction" in self.bounds:
            u = torch.where(self._bound_columns("fraction", h.device), _soft_unit_interval(u, POSITIVE_SHARPNESS / scale), u)
        return u

    def _bound_columns(self, kind: str, device: torch.device) -> torch.Tensor:
        """Which target columns have bounds ``kind`` (bool, on ``device``), made once per device: no host-to-device
        copy (a GPU synchronisation) in every step; made outside inference mode, so autograd can save it later."""
        cache: dict[tuple[str, torch.device], torch.Tensor] = self.__dict__.setdefault("_bound_column_cache", {})
        key = (kind, device)
        if key not in cache:
            with torch.inference_mode(False):
                cache[key] = torch.tensor([b == kind for b in self.bounds], device=device)
        return cache[key]

    def standardised_targets(self, h: torch.Tensor, members: Members = None, ceilings: torch.Tensor | None = None) -> torch.Tensor:
        """Raw head outputs -> standardised predictions ``(target_units(h) - mean) / scale`` (``h`` itself when every target is real)."""
        if self._plain:
            return h
        mean, scale = self._standardisation(members, h.dtype)
        return (self.target_units(h, members, ceilings) - mean) / scale

    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor | None, list[torch.Tensor]]:
        """Latents -> (continuous reconstruction, list of categorical logits)."""
        cont = self.decoder(z) if self.decoder is not None else None
        return cont, [d(z) for d in self.cat_decoders]

    def forward(self, x: torch.Tensor, ceilings: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, list[torch.Tensor]]:
        """Returns (latents, standardised target predictions (bounds applied), continuous reconstruction, categorical logits).

        ``ceilings``: see :meth:`target_units`.
        """
        z = self.encode(x)
        cont, cats = self.decode(z)
        return z, self.standardised_targets(self.predict_from_latent(z), ceilings=ceilings), cont, cats

    def l1_penalty(self) -> torch.Tensor:
        """Mean |weight| of the encoder's affine layers, per member: shape (members,)."""
        layers = self.encoder.linear_layers()
        return sum(layer.weight.abs().mean(dim=(1, 2)) for layer in layers) / len(layers)
