"""Knobs of the explainers: :class:`ExplainSettings` (background size, permutations,
quadrature nodes, float precision, threads)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from ..errors import InputError

__all__ = ["ExplainSettings"]


@dataclass(frozen=True)
class ExplainSettings:
    """Knobs of the explainers (defaults meet the speed targets on 2 CPU cores).

    Attributes:
        background_size: rows of the background multiset (None: as many as the
            stored k-means background, 32). Larger is a finer weighting, slower.
        exact_max_rows: cap on ``2**F x background rows`` for one exact explanation
            (memory ~ ``F x 8`` bytes per row); above it the background is shrunk.
        auto_exact_rows: ``auto`` uses ``exact`` when ``rows x 2**F x background``
            is at most this many model evaluations (2**18: ~0.3 s on 2 cores),
            else ``permutation``.
        permutations: antithetic permutations per row for ``permutation`` when
            explaining at most ``many_rows`` rows (local views).
        permutations_many: the same for more rows (global views: per-row noise
            averages out over rows, and 200 chain rows stay under 10 s).
        many_rows: row count above which ``permutations_many`` applies.
        gradient_steps: quadrature nodes of the integrated gradients.
        kernel_samples: coalitions sampled per row by ``kernel``.
        seed: seed of the permutation/kernel sampling (the global numpy state is
            restored afterwards).
        chunk_rows: model rows per batch inside the explained function.
        dtype: ``float32`` (fast; the model's own weights) or ``float64`` (for
            exactness checks; a double-precision copy of the weights).
        threads: CPU threads of the calling thread while an explanation runs
            (:func:`nestedae_core.threads.limit_cpu_threads`; restored afterwards;
            None: no change). The layers are small, so one thread avoids
            synchronisation stalls: on a busy 2-core machine it was 10-15x faster.
    """

    background_size: int | None = None
    exact_max_rows: int = 1 << 20
    auto_exact_rows: int = 1 << 18
    permutations: int = 10
    permutations_many: int = 4
    many_rows: int = 10
    gradient_steps: int = 64
    kernel_samples: int = 512
    seed: int = 0
    chunk_rows: int = 4096
    dtype: Literal["float32", "float64"] = "float32"
    threads: int | None = 1

    def __post_init__(self) -> None:
        if self.background_size is not None and self.background_size < 1:
            raise InputError("background_size must be at least 1")
        for name in ("exact_max_rows", "auto_exact_rows", "permutations", "permutations_many", "many_rows", "gradient_steps", "kernel_samples", "chunk_rows"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be at least 1")
        if self.dtype not in ("float32", "float64"):
            raise InputError("dtype must be 'float32' or 'float64'")
        if self.threads is not None and self.threads < 1:
            raise InputError("threads must be at least 1 (or None)")

    @property
    def torch_dtype(self) -> torch.dtype:
        """The torch dtype of :attr:`dtype`."""
        return torch.float64 if self.dtype == "float64" else torch.float32
