"""Small trained chains shared by the core tests (trained once per session)."""
from __future__ import annotations

import functools
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def data_available() -> bool:
    d = Path(os.environ.get("NESTEDAE_DATA_DIR") or REPO.parent / "shared" / "data")
    return (d / "PSC_efficiencies_dataset.csv").is_file() and (d / "PSC_bandgaps_dataset.csv").is_file()


@functools.lru_cache(maxsize=4)
def tiny_paper(epochs: int = 40, seed: int = 0):  # type: ignore[no-untyped-def]
    """The paper chain trained for a few epochs (needs the datasets)."""
    from nestedae_core.model.presets import preset
    from nestedae_core.train import cross_validate

    if not os.environ.get("NESTEDAE_DATA_DIR"):
        os.environ["NESTEDAE_DATA_DIR"] = str(REPO.parent / "shared" / "data")
    return cross_validate(preset("paper", epochs=epochs, seed=seed), device="cpu")


@functools.lru_cache(maxsize=2)
def tiny_synthetic(epochs: int = 30):  # type: ignore[no-untyped-def]
    """The synthetic chain trained for a few epochs (no dataset needed)."""
    from nestedae_core.model.presets import preset
    from nestedae_core.train import cross_validate

    return cross_validate(preset("synthetic", epochs=epochs, folds=3), device="cpu")
