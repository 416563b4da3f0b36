"""Cold commands stay cheap: heavy packages are imported only where they are needed.

Each check runs in a fresh Python process and asserts on ``sys.modules`` (what was
imported), never on timings. shap (and its numba kernels), scikit-learn, scipy,
Streamlit, plotly, Optuna and Dask cost seconds to import; a single prediction or
explanation needs none of them.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

HEAVY = ("shap", "numba", "sklearn", "scipy", "streamlit", "plotly", "optuna", "dask", "distributed", "matplotlib")


def _imported_after(code: str) -> set[str]:
    """Top-level packages in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    probe = (
        "import sys, io, contextlib, json\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        + "".join(f"    {line}\n" for line in code.splitlines())
        + "sys.stdout.write(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


def _modules_after_cold_predict(prefixes: tuple[str, ...]) -> set[str]:
    """Modules whose names start with ``prefixes`` in ``sys.modules`` after ``nestedae predict MAPbI3`` in a fresh
    interpreter."""
    probe = ("import sys, io, contextlib, json\nfrom nestedae_core.cli import main\n"
             "with contextlib.redirect_stdout(io.StringIO()):\n    assert main(['predict', 'MAPbI3']) == 0\n"
             f"sys.stdout.write(json.dumps(sorted(m for m in sys.modules if m.startswith({prefixes!r}))))\n")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_importing_the_package_and_its_command_imports_no_heavy_package() -> None:
    mods = _imported_after("import nestedae_core, nestedae_core.cli\nfrom nestedae_core import NestedAEError")
    assert not mods & {"torch", "pandas", *HEAVY}, sorted(mods & {"torch", "pandas", *HEAVY})


def test_the_front_door_imports_a_name_s_module_only_when_the_name_is_used() -> None:
    mods = _imported_after("import nestedae_core.api as api\nfrom nestedae_core.api import NestedAEError, __version__")
    assert not mods & {"torch", "pandas", *HEAVY}, sorted(mods & {"torch", "pandas", *HEAVY})


@pytest.mark.parametrize("command", ["predict", "explain"])
def test_a_cold_predict_or_explain_imports_none_of_the_heavy_packages(command: str) -> None:
    mods = _imported_after(f"from nestedae_core.cli import main\nassert main(['{command}', 'MAPbI3']) == 0")
    assert "torch" in mods  # the probe did run the command
    assert not mods & set(HEAVY), sorted(mods & set(HEAVY))


#: What a single prediction needs no more: pandas (and the pyarrow it loads) cost about 0.3 s of a cold predict.
NOT_FOR_ONE_PREDICTION = ("pandas", "pyarrow")


@pytest.mark.parametrize("args", [["MAPbI3"], ["CsPbCl3", "--json"], ["MAPbI3", "--phase", "tetra", "--etl", "TiO2-c"],
                                  ["FASnI3", "--model", "paper-default"]])
def test_a_cold_single_prediction_imports_no_pandas(args: list[str]) -> None:
    """One formula goes through featurisation, preprocessing, the chain, its intervals and the domain check as numpy
    arrays; pandas is for tables (CSV batches, screens, explanations)."""
    mods = _imported_after(f"from nestedae_core.cli import main\nassert main(['predict', *{args!r}]) == 0")
    assert "torch" in mods  # the probe did predict
    assert not mods & set(NOT_FOR_ONE_PREDICTION), sorted(mods & set(NOT_FOR_ONE_PREDICTION))


def test_the_notebook_front_door_predicts_without_the_heavy_packages() -> None:
    mods = _imported_after("from nestedae_core import NestedAEModel\nNestedAEModel.load().predict('MAPbI3')")
    assert not mods & set(HEAVY), sorted(mods & set(HEAVY))


def test_the_warm_up_compiles_only_the_exact_explainer() -> None:
    """The app's background warm-up imports shap (for the exact explainer) and returns its seconds."""
    mods = _imported_after(
        "from nestedae_core.explain.shap_backend import warm_up\nseconds = warm_up()\nassert seconds > 0"
    )
    assert "shap" in mods


def test_a_cold_predict_registers_only_its_own_command() -> None:
    """`nestedae predict` builds the parser of predict alone: no benchmark, training or sweep code is imported."""
    mods = _modules_after_cold_predict(("nestedae_core",))
    assert "nestedae_core.cli.predict_cmd" in mods and "nestedae_core.model.chain" in mods  # the probe did predict
    unwanted = {"nestedae_core.benchmark", "nestedae_core.cli.benchmark_cmd", "nestedae_core.cli.train_cmd",
                "nestedae_core.cli.sweep_cmd", "nestedae_core.cli.data_cmd", "nestedae_core.sweep", "nestedae_core.data.status"}
    assert not mods & unwanted, sorted(mods & unwanted)


def test_bundle_json_fast_parse_reads_the_same_and_still_refuses_non_finite(tmp_path) -> None:
    from nestedae_core.errors import BundleError
    from nestedae_core.store.loading import _finite_float, _no_constant, _read_json

    path = tmp_path / "x.json"
    path.write_text('{"a": [0.1, -2.5e-07, 3, 1.7976931348623157e+308], "b": {"c": 123456789.123456789}}')
    assert _read_json(path, finite=True) == json.loads(path.read_text(), parse_float=_finite_float, parse_constant=_no_constant)
    for bad in ('{"a": 1e999}', '{"a": NaN}', '{"a": -Infinity}', '{"a": ' + "9" * 400 + '.5}'):
        path.write_text(bad)
        with pytest.raises(BundleError, match="NaN or infinite"):
            _read_json(path, finite=True)


def test_a_cold_predict_imports_no_dataset_or_training_code() -> None:
    """The registry tables register without the dataset stack: a prediction imports no data.*, train.* (but the
    light table-source hook), jobs, sweep or design module; a training run still finds the registry's tables."""
    mods = _modules_after_cold_predict(("nestedae_core", "threadpoolctl"))
    assert "threadpoolctl" not in mods  # one thread for torch alone: no scan of the loaded libraries
    assert "nestedae_core.perovskite.tables" in mods and "nestedae_core.model.chain" in mods  # registered, predicted
    unwanted = sorted(m for m in mods if m.startswith(("nestedae_core.data", "nestedae_core.jobs", "nestedae_core.sweep",
                                                       "nestedae_core.design", "nestedae_core.explain", "nestedae_core.batch"))
                      or (m.startswith("nestedae_core.train.") and m != "nestedae_core.train.tables"))
    assert not unwanted, unwanted


def test_the_registry_tables_stay_the_training_default_and_load_on_demand() -> None:
    """Importing the perovskite layer registers the registry tables (no dataset code yet); asking loads it."""
    probe = ("import sys, json\nimport nestedae_core.perovskite\nfrom nestedae_core.train.tables import table_source\n"
             "src = table_source()\nbefore = sorted(m for m in sys.modules if m.startswith('nestedae_core.data'))\n"
             "checksum = src.checksum('mhp-pbe-paper')\n"
             "after = 'nestedae_core.data.registry' in sys.modules\n"
             "sys.stdout.write(json.dumps([src.row_name_columns[0], before, after, isinstance(checksum, str) and len(checksum) == 64]))\n")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    first_name_column, data_before, data_after, checksum_ok = json.loads(proc.stdout.strip().splitlines()[-1])
    from nestedae_core.vocabulary import FORMULA
    assert first_name_column == FORMULA
    assert data_before == [] and data_after and checksum_ok


def test_bundle_overflow_screen_equals_its_regular_expression() -> None:
    """The byte-level screen for numbers that may overflow finds exactly what the regular expression finds."""
    import random
    import re

    from nestedae_core.store.loading import _may_overflow

    pattern = re.compile(r"[eE][+-]?[0-9]{3,}|[0-9]{300,}")
    rng = random.Random(0)
    alphabet = "0123456789eE+-.,[]{}\" xé"
    found = 0
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.choice([3, 12, 60])))
        if rng.random() < 0.1:
            text += "7" * rng.choice([299, 300, 301])
        expected = bool(pattern.search(text))
        found += expected
        assert _may_overflow(text.encode("utf-8")) == expected, text
    assert 0 < found < 5000  # both answers were exercised


def test_a_single_predict_pauses_the_cyclic_collector_and_restores_it(monkeypatch, capsys) -> None:
    """`nestedae predict FORMULA` runs without the cyclic garbage collector (its passes over torch's objects cost
    a cold start 0.1-0.3 s) and turns it back on, also after an error; a batch keeps it on."""
    import gc

    from nestedae_core.cli import main
    from nestedae_core.cli import predict_cmd

    seen = []
    real = predict_cmd.run
    monkeypatch.setattr(predict_cmd, "run", lambda args: seen.append(gc.isenabled()) or real(args))
    assert gc.isenabled()
    assert main(["predict", "MAPbI3"]) == 0 and gc.isenabled()
    assert main(["predict", "XyZ3"]) == 2 and gc.isenabled()
    assert main(["predict", "--csv", "missing.csv", "--out", "x.csv"]) == 2 and gc.isenabled()
    assert main(["predict", "--cs", "missing.csv", "--out", "x.csv"]) == 2 and gc.isenabled()  # an abbreviated --csv
    assert seen == [False, False, True, True]
    capsys.readouterr()
