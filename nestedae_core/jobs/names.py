"""Names of saved models: what a user may call a model bundle folder."""
from __future__ import annotations

import re

from ..errors import InputError

__all__ = ["MODEL_NAME_PATTERN", "validate_model_name"]

#: Allowed model (bundle folder) names: letters, digits and ``-_.``; 1 to 64
#: characters; starting with a letter or digit.
MODEL_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def validate_model_name(name: str) -> str:
    """Return ``name`` stripped if it can name a saved model, else raise :class:`InputError`.

    A name is 1 to 64 letters, digits, ``-``, ``_`` or ``.``, starts with a letter
    or digit and is not the name of a shipped bundle.
    """
    from ..store import SHIPPED_BUNDLE_NAMES

    text = (name or "").strip()
    if not text:
        raise InputError("give the model a name, e.g. paper-200ep")
    if not MODEL_NAME_PATTERN.fullmatch(text) or ".." in text:
        bad = sorted({c for c in text if not (c.isascii() and (c.isalnum() or c in "-_."))})
        what = (f"it contains {' '.join(repr(c) for c in bad)}" if bad else
                "it must start with a letter or digit, be at most 64 characters and not contain '..'")
        raise InputError(f"model name '{text}' is not allowed: {what}; use letters, digits, '-', '_' and '.' only")
    if text.lower() in {n.lower() for n in SHIPPED_BUNDLE_NAMES}:
        raise InputError(f"'{text}' is the name of a built-in model; choose another name")
    return text
