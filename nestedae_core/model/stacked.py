"""Any ``nn.Module`` as an ensemble: k copies of one architecture run as one batched module.

The layers of :mod:`.nn` hold the weights of all members side by side by construction.
:class:`StackedModule` does the same for a module written for **one** model (a physics head,
say): the members' parameters are stacked (``torch.func.stack_module_state``, a leading
member dimension) and the forward pass is ``torch.vmap`` over ``torch.func.functional_call``
of one stateless copy. It takes and returns ``(members, rows, features)`` tensors and the
optional member slice of :class:`~.nn.EnsembleLinear`, so it can stand wherever an
:class:`~.nn.EnsembleMLP` stands (for instance in ``StageNet.heads``), and the training loop
trains it with the rest of the stage: one optimiser step for all members, each member's
gradients and Adam state its own.

Random draws inside the module (dropout) differ between members (``randomness="different"``).
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.func import functional_call, stack_module_state

__all__ = ["StackedModule"]


class StackedModule(nn.Module):
    """``members`` copies of one module (same architecture, own weights) evaluated as one batched call.

    Build it from the members (``StackedModule([Head() for _ in range(k)])``, each with its
    own initial weights) or with :meth:`from_factory`. The stacked parameters are ordinary
    parameters of this module (names with ``.`` written as ``__``), so they are saved,
    optimised and moved to a device like any other.
    """

    def __init__(self, modules: Sequence[nn.Module]) -> None:
        super().__init__()
        if not modules:
            raise ValueError("a stacked module needs at least one member")
        kinds = {type(m) for m in modules}
        if len(kinds) != 1:
            raise ValueError(f"stacked members must share one architecture, got {sorted(k.__name__ for k in kinds)}")
        self.members = len(modules)
        params, buffers = stack_module_state(list(modules))  # type: ignore[arg-type]
        self._names = list(params)
        self._buffer_names = list(buffers)
        for name, value in params.items():
            self.register_parameter(name.replace(".", "__"), nn.Parameter(value.detach().clone()))
        for name, value in buffers.items():
            self.register_buffer(name.replace(".", "__"), value.detach().clone())
        # one stateless copy that only supplies the code (its own weights are never used nor registered)
        self._template = [copy.deepcopy(modules[0]).to("meta")]

    @classmethod
    def from_factory(cls, factory: Callable[[], nn.Module], members: int) -> "StackedModule":
        """``members`` modules from ``factory()`` (each draws its own initial weights from torch's generator), stacked."""
        return cls([factory() for _ in range(members)])

    def forward(self, x: torch.Tensor, members: slice | None = None) -> torch.Tensor:
        """``x``: (members, rows, ...) -> (members, rows, ...): member ``m``'s module applied to ``x[m]``.

        With ``members`` (a slice), ``x`` holds only the selected members and only their weights are used.
        """
        sel = slice(None) if members is None else members
        params = {n: getattr(self, n.replace(".", "__"))[sel] for n in self._names}
        buffers = {n: getattr(self, n.replace(".", "__"))[sel] for n in self._buffer_names}
        template = self._template[0]
        template.train(self.training)

        def one(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], xi: torch.Tensor) -> torch.Tensor:
            return functional_call(template, (p, b), (xi,))

        return torch.vmap(one, randomness="different")(params, buffers, x)

    def member(self, m: int) -> nn.Module:
        """Member ``m`` as a standalone module (a copy holding its weights)."""
        out = copy.deepcopy(self._template[0]).to_empty(device=next(self.parameters()).device)
        state = {n: getattr(self, n.replace(".", "__"))[m].detach().clone() for n in self._names + self._buffer_names}
        out.load_state_dict(state)
        return out.train(self.training)

    def extra_repr(self) -> str:
        return f"members={self.members}, module={type(self._template[0]).__name__}"
