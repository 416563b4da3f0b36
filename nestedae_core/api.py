"""The front door: the public names the dashboard (``app/``, ``pages/``) and the ``nestedae`` command use.

``from nestedae_core.api import NestedAEModel, predict_composition, dataset_info`` and so on: the
dashboard and the command line import the library only through this module (an import-linter
contract and ``tests/test_architecture.py`` keep it so; ``tools/front_door_imports.py`` rewrites
imports to come through here and lists the names this module lacks). The groups:

* **model & prediction**: :class:`NestedAEModel`, the chain (:class:`NestedAE`, :class:`ChainSpec`,
  presets), predictions of one composition or a grid, line scans, screening, devices, metrics.
* **explanation**: attributions (SHAP and friends), explainer settings, latent-space analysis.
* **data & chemistry**: compositions, site descriptors, the dataset registry, loading and fetching,
  data quality flags, dataset lookups, stage rows, the synthetic data set, device physics (SQ limit).
* **jobs & sweeps**: the job store and manager, job payloads and outputs, browser identities,
  hyperparameter sweeps, latent-size scans.
* **store & bundles**: saved models on disk.
* **reports & files**: HTML reports, batch CSV files, benchmark reports, safe file writing.
* **design**: inverse design (a :class:`DesignProblem`, the search, its proposals, jobs and reports).
* **errors**: the exception hierarchy (every user-facing error is a :class:`NestedAEError`).
* **schema & vocabulary**: column names, labels and units, the output schema's keys.

A few names are renamed here so that a flat namespace stays readable (e.g. ``read_dataset`` is
:func:`nestedae_core.data.load`, ``column_label`` is :func:`nestedae_core.vocabulary.label`).

Every name is imported on first access and looked up again on each access (never cached here):
``import nestedae_core.api`` imports nothing heavy, and a test that patches the defining module
is seen through the front door too.
"""
from __future__ import annotations

import importlib
from typing import Any

#: group -> {public name: defining module under nestedae_core ("" = the package), or "module:attribute"
#: where the public name differs from the module's}. tools/front_door_imports.py reads and extends this.
_GROUPS: dict[str, dict[str, str]] = {
    "model & prediction": {
        "NestedAEModel": "estimator",
        "Query": "query",
        "NestedAE": "model",
        "ChainSpec": "model",
        "StageSpec": "model.config",
        "TargetSpec": "model.config",
        "load_chain_spec": "model.config",
        "PRESETS": "perovskite.presets",
        "preset": "perovskite.presets",
        "target_fidelity": "perovskite.fidelity",
        "available_devices": "model",
        "resolve_device": "model.devices",
        "DEFAULT_LEVEL": "model.intervals",
        "cross_validate": "train.cross_validation",
        "regression_metrics": "train.metrics",
        "predict_composition": "predict",
        "bandgaps": "predict",
        "line_scan": "predict",
        "screen_compositions": "predict:screen",
        "screening_gap_column": "predict",
        "model_provenance": "predict",
        "NO_MEASURED_GAP_NOTE": "predict",
        "query_frame": "query",
        "composition_problem": "query",
        "resolve_categorical": "query",
    },
    "explanation": {
        "Attribution": "explain",
        "ExplainSettings": "explain",
        "EXPLAINER_NOTES": "explain",
        "explain_chain": "explain",
        "explain_stage_output": "explain",
        "explain_latents": "explain",
        "explainer_comparison": "explain",
        "global_importance": "explain.attribution",
        "warm_up_explainer": "explain:warm_up",
        "ActiveLatents": "explain.latents",
        "active_latents": "explain.latents",
        "factor_recovery": "explain.latents",
        "latent_correlations": "explain.latents",
        "latent_traversal": "explain.latents",
        "pca_projection": "explain.latents",
        "traversal_sensitivity": "explain.latents",
    },
    "data & chemistry": {
        "GAP_BASIS": "data.gap_quality",
        "GAP_FIT": "data.gap_quality",
        "GAP_NEIGHBOURS": "data.gap_quality",
        "LABEL_QUALITY": "data.gap_quality",
        "LABEL_REASON": "data.gap_quality",
        "LABEL_WEIGHT": "data.gap_quality",
        "N_NEIGHBOURS": "data.gap_quality",
        "QUALITY_RULE": "data.gap_quality",
        "WEIGHT_RULE": "data.gap_quality",
        "label_quality_counts": "data.gap_quality",
        "Composition": "chemistry.composition",
        "parse_formula": "chemistry.composition",
        "grid_size": "chemistry.composition",
        "SiteTotalError": "chemistry.composition",
        "SITE_IONS": "chemistry.composition",
        "featurize": "chemistry.features",
        "featurize_table": "chemistry.features",
        "octahedral_factor": "chemistry.features",
        "tolerance_factor": "chemistry.features",
        "OCTAHEDRAL_RANGE": "chemistry.features",
        "TOLERANCE_RANGE": "chemistry.features",
        "DESCRIPTORS": "chemistry.features",
        "DESCRIPTOR_LABELS": "chemistry.features",
        "DESCRIPTOR_UNITS": "chemistry.features",
        "sq_limit": "physics",
        "REGISTRY": "data",
        "DATA_DIR_ENV": "data",
        "CACHE_ORIGIN": "data",
        "DatasetStatus": "data",
        "dataset_info": "data",
        "dataset_stamp": "data",
        "dataset_status": "data",
        "derived_from_text": "data",
        "citation_text": "data",
        "short_citation": "data",
        "missing_message": "data",
        "cache_dir": "data",
        "candidate_paths": "data",
        "verify_file": "data",
        "read_dataset": "data:load",
        "fetch_dataset": "data:fetch",
        "locate_dataset": "data:locate",
        "load_dataset_table": "data",
        "device_flags": "data.quality",
        "flag_counts": "data.quality",
        "sq_pce_limit": "data.quality",
        "FLAG_COLUMNS": "data.quality",
        "FF_ABOVE_1": "data.quality",
        "PCE_ABOVE_SQ": "data.quality",
        "REASON": "data.quality",
        "TRAINING_RULE": "data.quality",
        "formula_column": "data.lookup",
        "matching_rows": "data.lookup",
        "nearest_devices": "data.lookup",
        "site_fractions": "data.lookup",
        "DISTANCE": "data.lookup",
        "SAME_COMPOSITION": "data.lookup",
        "SAME_STACK": "data.lookup",
        "StageRows": "perovskite.rows",
        "stage_rows": "perovskite.rows",
        "SyntheticData": "data.synthetic",
        "generate_synthetic": "data.synthetic:generate",
        "material_feature_names": "data.synthetic",
        "DEVICE_TARGET": "data.synthetic",
        "MATERIAL_TARGET": "data.synthetic",
        "TRUTH_PREFIX": "data.synthetic",
    },
    "jobs & sweeps": {
        "ACTIVE_STATUSES": "jobs",
        "JobManager": "jobs",
        "JobRecord": "jobs",
        "JobSettings": "jobs",
        "JobStoreError": "jobs.jobstore",
        "PermissionRefused": "jobs",
        "TrainOutput": "jobs",
        "LATENT_SIZE_SCAN_KIND": "jobs.training",
        "job_store_path": "jobs",
        "load_settings": "jobs",
        "latent_size_scan_payload": "jobs",
        "payload_spec": "jobs",
        "progress_events": "jobs",
        "synthetic_tables": "jobs",
        "train_output": "jobs",
        "train_payload": "jobs",
        "validate_model_name": "jobs.names",
        "browser_identity_from_cookie": "jobs.identity",
        "cookie_for_identity": "jobs.identity",
        "identity_secret": "jobs.identity",
        "is_browser_identity": "jobs.identity",
        "new_browser_identity": "jobs.identity",
        "MAX_TRIALS": "sweep",
        "SearchSpace": "sweep",
        "Sweep": "sweep",
        "SweepConfig": "sweep",
        "list_sweeps": "sweep",
        "job_manager_for_cli": "sweep.runner",
        "validate_study_name": "sweep.storage",
        "read_scan": "sweep.latent_size",
    },
    "store & bundles": {
        "BundleInfo": "store",
        "SHIPPED_BUNDLE_NAMES": "store",
        "bundle_info": "store",
        "check_save_target": "store",
        "clean_stale_temp": "store",
        "default_bundle_path": "store",
        "list_bundles": "store",
        "load_bundle": "store",
        "load_default_bundle": "store",
        "models_dir": "store",
        "save_bundle": "store",
        "shipped_bundle_path": "store",
    },
    "reports & files": {
        "trends_benchmark": "benchmark",
        "LITERATURE_TOLERANCE_EV": "benchmark.trends",
        "figure_filename": "report",
        "prediction_report": "report",
        "screening_report": "report",
        "training_report": "report",
        "write_report": "report",
        "BatchColumns": "batch",
        "explain_csv": "batch",
        "explain_outputs": "batch",
        "predict_csv": "batch",
        "predict_rows": "batch",
        "read_small_table": "batch",
        "MODELS": "benchmark",
        "TASKS": "benchmark",
        "VERDICT_RULE": "benchmark",
        "accuracy_benchmark": "benchmark",
        "bundle_paper_scoring": "benchmark",
        "calibration_benchmark": "benchmark",
        "load_benchmark": "benchmark",
        "paired_comparison": "benchmark",
        "parse_benchmark": "benchmark.reports",
        "shipped_benchmark_paths": "benchmark",
        "speed_benchmark": "benchmark",
        "split_reports": "benchmark",
        "csv_bytes": "csv_safe",
        "open_checked": "csv_safe",
        "write_csv": "csv_safe",
        "OutputError": "io_safe",
        "atomic_open": "io_safe",
        "atomic_write_text": "io_safe",
        "os_error_message": "io_safe",
        "refuse_input_as_output": "io_safe",
        "refuse_special": "io_safe",
    },
    "design": {
        "DesignProblem": "design",
        "Objective": "design",
        "QuantityRange": "design",
        "SAMPLERS": "design",
        "DesignResult": "design.optimise",
        "run_design": "design",
        "proposal_table": "design",
        "measured_reference": "design.proposals",
        "DESIGN_KIND": "design.job",
        "design_payload": "design.job",
        "design_output": "design.job",
        "design_figures": "design.report",
        "design_report": "design.report",
        "run_design_benchmark": "benchmark.design",
        "design_table": "benchmark.design",
    },
    "errors": {
        "NestedAEError": "errors",
        "BundleError": "errors",
        "CompositionError": "errors",
        "ConfigError": "errors",
        "DataError": "errors",
        "DataMissingError": "errors",
        "InputError": "errors",
        "TrainingError": "errors",
    },
    "schema & vocabulary": {
        "COMPOSITION_KEY": "vocabulary",
        "__version__": "",
        "GAP_KEYS": "schema",
        "input_key": "schema",
        "quantity_key": "schema",
        "target_key": "schema",
        "column_label": "vocabulary:label",
        "column_unit": "vocabulary:unit",
        "column_display": "vocabulary:display",
        "input_groups": "vocabulary",
        "ETL": "vocabulary",
        "HTL": "vocabulary",
        "IONS": "vocabulary",
        "PCE": "vocabulary",
        "VOC": "vocabulary",
        "JSC": "vocabulary",
        "FF": "vocabulary",
        "SLME": "vocabulary",
        "PHASE": "vocabulary",
        "PHASE_LABEL": "vocabulary",
        "SUBSTRATE": "vocabulary",
        "BANDGAP_HSE": "vocabulary",
        "BANDGAP_PBE": "vocabulary",
        "BANDGAP_PBE_DFT": "vocabulary",
        "MEASURED_BANDGAP": "vocabulary",
        "DECOMPOSITION": "vocabulary",
        "DEVICE_COMPOSITION": "vocabulary",
        "DEVICE_OCTAHEDRAL_FACTOR": "vocabulary",
        "DEVICE_TOLERANCE_FACTOR": "vocabulary",
        "DEVICE_TARGETS": "vocabulary",
        "FACTOR_COLUMNS": "vocabulary",
        "GAP_DEVICES": "vocabulary",
        "GAP_SPREAD": "vocabulary",
        "PAPER_DESCRIPTORS": "vocabulary",
        "SITE_FRACTION_LABELS": "vocabulary",
        "SITE_FRACTION_UNIT": "vocabulary",
        "SITE_OF_ION": "vocabulary",
        "SITE_TOTALS": "vocabulary",
    },
}

#: public name -> (module, attribute), from the groups.
_EXPORTS: dict[str, tuple[str, str]] = {
    name: ((spec.split(":")[0], spec.split(":")[1]) if ":" in spec else (spec, name))
    for names in _GROUPS.values()
    for name, spec in names.items()
}

__all__ = sorted(n for n in _EXPORTS if not n.startswith("__"))


def __getattr__(name: str) -> Any:
    """The public ``name``, from its defining module (imported on first use, looked up on each access)."""
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    return getattr(importlib.import_module(f"nestedae_core.{module}" if module else "nestedae_core"), attribute)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
