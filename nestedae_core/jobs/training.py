"""Training job kinds: ``train`` (cross-validate a chain) and ``latent_size_scan`` (one run per latent size).

Payloads are JSON, built with :func:`train_payload` and :func:`latent_size_scan_payload`:

* ``spec``: the :class:`~nestedae_core.model.config.ChainSpec` as JSON;
* ``tables`` (optional): where each stage's table comes from instead of the
  registry: ``{"synthetic": {<SyntheticConfig fields>}, "table": "materials"|"devices"}``
  (regenerated in the worker: the generator is deterministic) or
  ``{"file": "<path of a .csv or .parquet file>"}``;
* ``data_dir``, ``device``.

A ``train`` job writes into its work folder the staged bundle (``bundle/``,
:func:`nestedae_core.store.save_bundle`) and the out-of-fold predictions with
their true values (``oof.csv``, a ``stage`` column first); its result holds the
metrics, the run record, the seconds per stage and the bundle path.
:func:`train_output` reads it all back as a :class:`TrainOutput`.

A ``latent_size_scan`` job trains the runs of
:func:`nestedae_core.sweep.latent_size.latent_size_scan_runs` one after the other and
returns the rows of :func:`~nestedae_core.sweep.latent_size.latent_size_scan_rows`.
Jobs recorded under its former name, ``latent_sweep``, still run and read back
(:data:`LEGACY_KIND_NAMES`).
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from .jobstore import JobRecord
from .kinds import JobContext, register_kind
from .limits import check_chain
from .settings import JobSettings

if TYPE_CHECKING:
    import pandas as pd

    from ..model.config import ChainSpec

__all__ = [
    "train_payload",
    "latent_size_scan_payload",
    "LATENT_SIZE_SCAN_KIND",
    "synthetic_tables",
    "TrainOutput",
    "train_output",
    "progress_events",
    "payload_spec",
]

_TABLE_FILES = (".csv", ".parquet")

#: The job kind of the latent-size scan.
LATENT_SIZE_SCAN_KIND = "latent_size_scan"
#: Former kind names (as recorded in existing job stores) -> the kind that runs them now.
LEGACY_KIND_NAMES = {"latent_sweep": LATENT_SIZE_SCAN_KIND}


# --------------------------------------------------------------------------- payloads
def synthetic_tables(config: Any = None, *, stages: dict[str, str] | None = None, **overrides: Any) -> dict[str, dict[str, Any]]:
    """Table sources of the synthetic data set: stage name -> ``{"synthetic": settings, "table": "materials"|"devices"}``.

    ``config``: a :class:`~nestedae_core.data.synthetic.SyntheticConfig` or a dict of its fields;
    ``overrides``: fields on top (e.g. ``noise=0.1, seed=3``); ``stages``: stage name -> table
    (default ``{"materials": "materials", "devices": "devices"}``).
    """
    base = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config or {})
    base.update(overrides)
    base = {k: (list(v) if isinstance(v, tuple) else v) for k, v in base.items()}
    mapping = stages if stages is not None else {"materials": "materials", "devices": "devices"}
    for stage, table in mapping.items():
        if table not in ("materials", "devices"):
            raise InputError(f"synthetic table for stage '{stage}' must be 'materials' or 'devices', got '{table}'")
    return {stage: {"synthetic": base, "table": table} for stage, table in mapping.items()}


def train_payload(spec: "ChainSpec", *, tables: dict[str, dict[str, Any]] | None = None, data_dir: str | None = None,
                  device: str = "auto") -> dict[str, Any]:
    """The JSON payload of a ``train`` job (see the module docstring for ``tables``)."""
    from ..model.config import ChainSpec

    if not isinstance(spec, ChainSpec):
        raise InputError(f"train_payload expects a ChainSpec, got {type(spec).__name__}")
    return {"spec": json.loads(spec.to_json()), "tables": tables, "data_dir": None if data_dir is None else str(data_dir),
            "device": str(device or "auto")}


def latent_size_scan_payload(spec: "ChainSpec", sizes: list[int], *, seeds: list[int] | None = None, stage: int = 0,
                         epochs: int | None = None, folds: int | None = None, tables: dict[str, dict[str, Any]] | None = None,
                         data_dir: str | None = None, device: str = "auto") -> dict[str, Any]:
    """The JSON payload of a ``latent_size_scan`` job: stage ``stage`` of ``spec`` trained once per size and seed."""
    out = train_payload(spec, tables=tables, data_dir=data_dir, device=device)
    out.update({"sizes": [int(s) for s in sizes], "seeds": [int(s) for s in (seeds or [0])], "stage": int(stage),
                "epochs": None if epochs is None else int(epochs), "folds": None if folds is None else int(folds)})
    return out


def payload_spec(payload: dict[str, Any]) -> "ChainSpec":
    """The ChainSpec of a training payload (ConfigError when invalid)."""
    from ..model.config import ChainSpec

    if not isinstance(payload.get("spec"), dict):
        raise InputError("a training job's payload needs its chain configuration under 'spec'")
    return ChainSpec.from_json(json.dumps(payload["spec"]))


def _load_tables(payload: dict[str, Any], names: list[str]) -> "dict[str, pd.DataFrame] | None":
    import pandas as pd

    sources = payload.get("tables")
    if not sources:
        return None
    from ..data import synthetic

    out: dict[str, pd.DataFrame] = {}
    generated: dict[str, Any] = {}
    for stage in names:
        src = sources.get(stage)
        if src is None:
            continue
        if "synthetic" in src:
            key = json.dumps(src["synthetic"], sort_keys=True)
            if key not in generated:
                cfg = dict(src["synthetic"])
                if "device_categories" in cfg and isinstance(cfg["device_categories"], list):
                    cfg["device_categories"] = tuple(cfg["device_categories"])
                generated[key] = synthetic.generate(**cfg)
            out[stage] = getattr(generated[key], str(src.get("table", "materials"))).copy()
        elif "file" in src:
            path = Path(str(src["file"]))
            if path.suffix.lower() not in _TABLE_FILES or not path.is_file():
                raise InputError(f"stage '{stage}': table file {path} is missing or not a .csv/.parquet file")
            out[stage] = pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(path)
        else:
            raise InputError(f"stage '{stage}': a table source needs 'synthetic' settings or a 'file'")
    return out or None


def _write_oof(oof: "dict[str, pd.DataFrame]", path: Path) -> None:
    import pandas as pd

    frames = [df.assign(stage=stage)[["stage", *df.columns]] for stage, df in oof.items()]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["stage"])
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_csv(tmp, index=False)
    tmp.replace(path)


# --------------------------------------------------------------------------- kinds
def check_train(payload: dict[str, Any], settings: JobSettings) -> None:
    """Submission check of a ``train`` job: a valid spec within the size and epochs x folds limits."""
    check_chain(payload_spec(payload), settings)


def run_train(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Kind ``train``: cross-validate the payload's chain; stage its bundle and out-of-fold predictions in ``ctx.work_dir``."""
    from .. import store
    from .. import perovskite  # noqa: F401  (registers the registry datasets as the training tables)
    from ..train.cross_validation import cross_validate

    spec = payload_spec(payload)
    tables = _load_tables(payload, [s.name for s in spec.stages])
    start = time.perf_counter()
    result = cross_validate(spec, tables, data_dir=payload.get("data_dir"), device=payload.get("device") or "auto",
                            callback=ctx.progress, should_stop=ctx.should_stop, threads=ctx.threads)
    bundle = ctx.work_dir / "bundle"
    store.save_bundle(result, bundle, overwrite=True)
    _write_oof(result.oof, ctx.work_dir / "oof.csv")
    return {"metrics": result.metrics, "record": result.model.record, "seconds": result.seconds,
            "elapsed_s": time.perf_counter() - start, "bundle": str(bundle)}


def _scan_runs(payload: dict[str, Any]) -> list[Any]:
    from ..sweep import latent_size

    return latent_size.latent_size_scan_runs(payload_spec(payload), payload.get("sizes") or [], payload.get("seeds") or [0],
                                             stage=int(payload.get("stage") or 0), epochs=payload.get("epochs"), folds=payload.get("folds"))


def check_latent_size_scan(payload: dict[str, Any], settings: JobSettings) -> None:
    """Submission check of a ``latent_size_scan`` job: every run within the size limit, all runs within epochs x folds."""
    runs = _scan_runs(payload)
    for run in runs[-1:]:  # the largest latent size is last
        check_chain(run.spec, settings, runs=len(runs))


def run_latent_size_scan(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Kind ``latent_size_scan``: train each run of the scan; progress over all runs; returns the scan's rows."""
    from ..sweep import latent_size
    from .. import perovskite  # noqa: F401  (registers the registry datasets as the training tables)
    from ..train.cross_validation import cross_validate

    runs = _scan_runs(payload)
    rows: list[dict[str, Any]] = []
    n = len(runs)
    for i, run in enumerate(runs):
        tables = _load_tables(payload, [s.name for s in run.spec.stages])

        def report(event: Any, i: int = i, size: int = run.size) -> None:
            plain = dataclasses.asdict(event)
            plain.update(fraction=(i + float(event.fraction)) / n, run=i, runs=n, latent_size=size)
            ctx.progress(plain)

        start = time.perf_counter()
        result = cross_validate(run.spec, tables, data_dir=payload.get("data_dir"), device=payload.get("device") or "auto",
                                callback=report, should_stop=ctx.should_stop, threads=ctx.threads)
        rows.extend(latent_size.latent_size_scan_rows(run, result, time.perf_counter() - start))
    return {"rows": rows}


register_kind("train", run_train, check=check_train)
register_kind(LATENT_SIZE_SCAN_KIND, run_latent_size_scan, check=check_latent_size_scan)
register_kind("latent_sweep", run_latent_size_scan, check=check_latent_size_scan)  # jobs recorded under the former name


# --------------------------------------------------------------------------- reading results
def progress_events(events: list[dict[str, Any]]) -> list[Any]:
    """Stored progress events of a training job as :class:`~nestedae_core.train.ProgressEvent` objects."""
    from ..train.progress import ProgressEvent

    names = {f.name for f in dataclasses.fields(ProgressEvent)}
    out = []
    for e in events:
        try:
            kw = {k: v for k, v in e.items() if k in names}
            kw["member_losses"] = tuple(kw.get("member_losses") or ())
            out.append(ProgressEvent(**kw))
        except TypeError:
            continue
    return out


@dataclass
class TrainOutput:
    """A finished ``train`` job's outcome, read back from its work folder.

    ``model``: the staged chain (never mutate it when shared); ``metrics`` and
    ``oof`` as in :class:`~nestedae_core.train.cross_validation.TrainResult`;
    ``record``: the run record; ``seconds``: training time per stage (s).
    """

    model: Any
    metrics: dict[str, Any]
    oof: "dict[str, pd.DataFrame]"
    record: dict[str, Any]
    seconds: dict[str, float]


def train_output(rec: JobRecord) -> TrainOutput:
    """Read a done ``train`` job's staged model, metrics and out-of-fold predictions.

    Raises:
        InputError: the job is not a finished ``train`` job or its files are gone.
        BundleError: the staged bundle is corrupt.
    """
    import pandas as pd

    from .. import store

    if rec.kind != "train" or rec.status != "done" or not isinstance(rec.result, dict):
        raise InputError(f"job '{rec.name}' is not a finished training run")
    bundle = Path(rec.bundle or rec.result.get("bundle") or "")
    if not (bundle / "manifest.json").is_file():
        raise InputError(f"the trained model of run '{rec.name}' is no longer on the server; train it again")
    model = store.load_bundle(bundle)
    oof: dict[str, pd.DataFrame] = {}
    path = Path(rec.work_dir) / "oof.csv"
    if path.is_file():
        frame = pd.read_csv(path)
        for stage, part in frame.groupby("stage", sort=False):
            oof[str(stage)] = part.drop(columns=["stage"]).reset_index(drop=True)
    return TrainOutput(model, rec.result.get("metrics") or {}, oof, rec.result.get("record") or {}, rec.result.get("seconds") or {})
