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


def _why_absent(name: str) -> str:
    """Why the device ``name`` is absent here, in a few words ('' when there is nothing to add)."""
    if name.startswith("cuda"):
        if torch.version.cuda is None:
            return f"torch {torch.__version__} is a CPU-only build; install a CUDA build of torch for a GPU"
        if not torch.cuda.is_available():
            return "no CUDA GPU is visible (check the driver and CUDA_VISIBLE_DEVICES)"
        return f"this machine has {torch.cuda.device_count()} CUDA device(s)"
    if name == "mps":
        return "Apple Metal (MPS) needs a Mac with Apple silicon"
    return ""


def resolve_device(name: str = "auto") -> torch.device:
    """Map ``auto``/``cpu``/``cuda``/``cuda:N``/``mps`` to a torch device.

    ``auto`` picks CUDA, then MPS, then CPU. Asking for a device that is not
    present raises :class:`InputError`, one line naming why and the ones that are.
    """
    asked = (name or "auto").strip().lower()
    present = [n for n, _ in available_devices()]
    if asked == "auto":
        return torch.device(present[0])
    name = "cuda:0" if asked == "cuda" else asked
    if name not in present:
        known = asked in ("cpu", "mps") or asked.startswith("cuda")
        why = _why_absent(name) if known else "known names: auto, cpu, cuda, cuda:N, mps"
        raise InputError(
            f"device '{asked}' is not available on this machine ({why}); available: {', '.join(present)} (or 'auto')"
        )
    return torch.device(name)
