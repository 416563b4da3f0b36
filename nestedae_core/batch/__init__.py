"""Batch predictions and explanations: a table of compositions (and device stacks) in, a table out.

One input row is one query: a formula column and, optionally, an ETL and an HTL
column (a blank cell takes the model's most common stack, as a single query does).
The output starts with the input's formula column and the predictions, then the
bookkeeping, then the other input columns (all kept); per row:

* ``row``: the input's data row number (1 = the first row under the header);
* ``composition``: the canonical formula; ``etl`` / ``htl``: the stacks used;
  ``phase``: the crystal phase the DFT gaps are for (the model's default, cubic;
  blank for a model without a phase input); ``stacks_defaulted``: the stacks that took their default (``;``-separated,
  e.g. ``etl;htl``);
* per target, ``<key>_mean``, ``_lower`` and ``_upper`` (the prediction interval
  at ``interval_level``; blank without calibration) and ``_std`` (the fold
  models' disagreement). ``<key>`` is the quantity's name in every output
  (:mod:`nestedae_core.schema`): ``bandgap_eV`` (measured), ``bandgap_pbe_eV``,
  ``bandgap_hse_soc_eV``, ``pce_percent``, ``voc_V``, ``jsc_mA_per_cm2``, ``ff``,
  ``decomposition_eV_per_fu`` (when the model has that head);
* ``in_domain``, ``domain_stage`` (the first stage whose training domain the row
  leaves, blank inside), ``domain_message`` (why) and ``<stage>_in_domain`` per stage;
* ``error``: blank for a row that was predicted, else one line naming the column
  and what is wrong (the prediction columns are then blank);
* ``model_name``, ``model_sha256`` (of the bundle's ``manifest.json``) and
  ``nestedae_version``: the model that produced the row
  (:func:`nestedae_core.predict.model_provenance`). Provenance is in columns, not
  a comment line, so every CSV reader reads the file as it is.

An input column whose name clashes with an output column is kept as
``input_<name>``. A bad row never stops the file: its ``error`` says why and the
rest are predicted. Files are read and written in chunks (``chunk_rows``), so
memory stays bounded whatever the number of rows, and the output is written to
a temp file renamed at the end (:mod:`nestedae_core.io_safe`): a failure leaves
no partial file. In the CSV written, a text cell a spreadsheet would run as a
formula (``=``, ``+``, ``-``, ``@``...) gets a ``'`` in front; the input read is
bounded in columns and line length (:mod:`nestedae_core.csv_safe`).

Explanations (:func:`explain_csv`, :func:`explain_rows`) come ``long`` (one line
per row, output and feature) or ``wide`` (one line per row, a column per output
and feature). Units: band gaps eV, PCE %, other targets their own unit;
attributions in the explained output's unit.
"""
from __future__ import annotations

from .explanations import explain_csv, explain_outputs, explain_rows
from .predictions import predict_columns, predict_csv, predict_rows
from .tables import (
    DEFAULT_CHUNK_ROWS,
    DEFAULT_EXPLAIN_CHUNK_ROWS,
    PROVENANCE_COLUMNS,
    BatchColumns,
    BatchSummary,
    ExplainFormat,
    read_small_table,
    read_table,
)

__all__ = [
    "BatchColumns",
    "BatchSummary",
    "DEFAULT_CHUNK_ROWS",
    "DEFAULT_EXPLAIN_CHUNK_ROWS",
    "ExplainFormat",
    "PROVENANCE_COLUMNS",
    "explain_csv",
    "explain_outputs",
    "explain_rows",
    "predict_columns",
    "predict_csv",
    "predict_rows",
    "read_table",
    "read_small_table",
]
