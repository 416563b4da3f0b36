"""Compute devices: which are present, and mapping a name (``auto``, ``cpu``, ``cuda``, ``mps``) to one."""
from __future__ import annotations

import torch

from ..errors import InputError

__all__ = ["available_devices", "resolve_device"]


def available_devices() -> list[tuple[str, str]]:
    """Compute devices present on this machine as ``(name, description)``, CPU last.

    Names are what :func:`resolve_device` and ``--device`` accept: ``cuda:0``, ``mps``, ``cpu``.
    """
    out: list[tuple[str, str]] = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            out.append((f"cuda:{i}", f"{props.name} ({props.total_memory / 2**30:.0f} GiB)"))
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append(("mps", "Apple Metal (MPS)"))
    out.append(("cpu", f"CPU ({torch.get_num_threads()} threads)"))
    return out


def resolve_device(name: str = "auto") -> torch.device:
    """Map ``auto``/``cpu``/``cuda``/``cuda:N``/``mps`` to a torch device.

    ``auto`` picks CUDA, then MPS, then CPU. Asking for a device that is not
    present raises :class:`InputError` naming the ones that are.
    """
    name = (name or "auto").strip().lower()
    present = [n for n, _ in available_devices()]
    if name == "auto":
        return torch.device(present[0])
    if name == "cuda":
        name = "cuda:0"
    if name not in present:
        raise InputError(f"device '{name}' is not available on this machine; available: {', '.join(present)} (or 'auto')")
    return torch.device(name)
