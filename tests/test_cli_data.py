"""Tests of ``nestedae data list|fetch|path`` (no network: only file:// URLs are served)."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import urllib.request

import pytest

from nestedae_core import cli, data

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch, offline):
    """Only the data command, empty cache, no data dir, no network."""
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("data_cmd",))
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    monkeypatch.setenv(data.CACHE_DIR_ENV, str(tmp_path / "cache"))
    data.reset_caches()
    yield
    data.reset_caches()


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = cli.main(list(argv))
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def serve(monkeypatch, tmp_path, name: str, payload: bytes, sha256: str | None = None):
    """Point registry entry ``name`` at a file:// URL serving ``payload``."""
    info = data.REGISTRY[name]
    source = tmp_path / "server" / info.filename
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(payload)
    new = dataclasses.replace(info, url=source.as_uri(), sha256=sha256 or hashlib.sha256(payload).hexdigest())
    monkeypatch.setitem(data.REGISTRY, name, new)
    return new


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


# --------------------------------------------------------------------------- list


def test_list_all_missing(capsys):
    rc, out, err = run(capsys, "data", "list")
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "ROWS", "LOCATION", "CITATION"]
    for name in data.REGISTRY:
        assert any(line.startswith(name + " ") for line in lines[1:])
    row = next(line for line in lines if line.startswith("psc-devices "))
    assert "2018" in row and "missing" in row and "Jacobsson" in row
    assert "nestedae data fetch mhp-pbe" in out and data.DATA_DIR_ENV in out
    gaps = next(line for line in lines if line.startswith("psc-gaps "))
    assert "151" in gaps and "derived from psc-devices (missing)" in gaps and "Jacobsson et al. 2022" in gaps
    dft = next(line for line in lines if line.startswith("mhp-dft "))
    assert "568" in dft and "derived from mhp-pbe, mhp-hse" in dft and "Mannodi-Kanakkithodi" in dft
    assert "nestedae data fetch psc-gaps" in out


def test_list_shows_derived_datasets_with_real_data(capsys, monkeypatch, data_dir):
    monkeypatch.setenv(data.DATA_DIR_ENV, str(data_dir))
    rc, out, _ = run(capsys, "data", "list")
    assert rc == 0
    gaps = next(line for line in out.splitlines() if line.startswith("psc-gaps "))
    assert gaps.split()[:5] == ["psc-gaps", "151", "derived", "from", "psc-devices"]
    assert "(missing)" not in gaps and "Jacobsson et al. 2022; Thota et al. 2024" in gaps


def test_list_json_with_real_data(capsys, monkeypatch, data_dir):
    monkeypatch.setenv(data.DATA_DIR_ENV, str(data_dir))
    rc, out, _ = run(capsys, "data", "list", "--json")
    assert rc == 0
    rows = {row["name"]: row for row in json.loads(out)}
    assert set(rows) == set(data.REGISTRY)
    pbe = rows["mhp-pbe"]
    assert pbe["available"] is True and pbe["path"] == str(data_dir / "PBE_data.csv")
    assert pbe["rows"] == 570 and pbe["doi"] == "10.1039/D1EE02971A" and pbe["url"].endswith("PBE_data.csv")
    assert pbe["kind"] == "file" and pbe["derived_from"] == []
    gaps = rows["psc-gaps"]
    assert gaps["kind"] == "derived" and gaps["available"] is True and gaps["path"] is None
    assert gaps["derived_from"] == [{"name": "psc-devices", "filename": "PSC_efficiencies_dataset.csv"}]
    assert gaps["rows"] == 151 and "Jacobsson" in gaps["citation"] and gaps["short_citation"].startswith("Jacobsson")
    assert "derived at load time from psc-devices" in gaps["message"]
    dft = rows["mhp-dft"]
    assert [s["filename"] for s in dft["derived_from"]] == ["PBE_data.csv", "HSE_data.csv"]
    assert dft["rows"] == 568 and dft["doi"] == "10.1039/D1EE02971A"


def test_list_shows_bad_file(capsys, tmp_path, monkeypatch):
    info = serve(monkeypatch, tmp_path, "mhp-hse", b"a,b\n1,2\n")
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    (env_dir / info.filename).write_bytes(b"a,b\n3,4\n")
    monkeypatch.setenv(data.DATA_DIR_ENV, str(env_dir))
    rc, out, _ = run(capsys, "data", "list")
    assert rc == 0
    row = next(line for line in out.splitlines() if line.startswith("mhp-hse "))
    assert "BAD FILE" in row
    assert info.sha256 in out


# --------------------------------------------------------------------------- path


def test_path_found(capsys, tmp_path, monkeypatch):
    info = serve(monkeypatch, tmp_path, "mhp-pbe", b"a,b\n1,2\n")
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    (env_dir / info.filename).write_bytes(b"a,b\n1,2\n")
    monkeypatch.setenv(data.DATA_DIR_ENV, str(env_dir))
    rc, out, err = run(capsys, "data", "path", "mhp-pbe")
    assert rc == 0 and out.strip() == str(env_dir / info.filename) and err == ""


def test_path_missing_exit_2_one_line(capsys):
    info = data.dataset_info("mhp-pbe")
    rc, out, err = run(capsys, "data", "path", "mhp-pbe")
    assert rc == 2 and out == ""
    lines = error_lines(err)
    assert len(lines) == 1 and lines[0].startswith("nestedae: error: ")
    assert data.DATA_DIR_ENV in err and info.url in err and "nestedae data fetch mhp-pbe" in err
    assert "Traceback" not in err


def test_path_unknown_and_generated(capsys):
    rc, _, err = run(capsys, "data", "path", "nope")
    assert rc == 2 and "known datasets" in err and len(error_lines(err)) == 1
    rc, _, err = run(capsys, "data", "path", "synthetic")
    assert rc == 2 and "generated" in err and len(error_lines(err)) == 1


def test_path_of_a_derived_dataset_says_it_is_derived(capsys, monkeypatch, data_dir):
    monkeypatch.setenv(data.DATA_DIR_ENV, str(data_dir))
    rc, out, err = run(capsys, "data", "path", "psc-gaps")
    assert rc == 2 and out == ""
    (line,) = error_lines(err)
    assert "derived at load time from psc-devices (PSC_efficiencies_dataset.csv)" in line
    assert "nestedae data path psc-devices" in line


def test_path_missing_in_subprocess_has_no_traceback(tmp_path):
    env = dict(os.environ)
    env.pop(data.DATA_DIR_ENV, None)
    env[data.CACHE_DIR_ENV] = str(tmp_path / "empty-cache")
    code = (
        "import sys; from nestedae_core import cli; cli.COMMAND_MODULES = ('data_cmd',); "
        "sys.exit(cli.main(['data', 'path', 'psc-devices']))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = error_lines(proc.stderr)
    assert len(lines) == 1 and "psc-devices" in lines[0] and data.DATA_DIR_ENV in lines[0]


# --------------------------------------------------------------------------- fetch


def test_fetch_file_url(capsys, tmp_path, monkeypatch, offline):
    payload = b"a,b\n" + b"".join(b"%d,%d\n" % (i, i * i) for i in range(20_000))
    info = serve(monkeypatch, tmp_path, "mhp-pbe", payload)
    rc, out, err = run(capsys, "data", "fetch", "mhp-pbe")
    saved = tmp_path / "cache" / info.filename
    assert rc == 0, err
    assert str(saved) in out and saved.read_bytes() == payload
    assert "Traceback" not in err

    opened = []
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: opened.append(a) or offline(*a, **k))
    rc, out, _ = run(capsys, "data", "fetch", "mhp-pbe")
    assert rc == 0 and "already present" in out and opened == []
    rc, out, _ = run(capsys, "data", "fetch", "mhp-pbe", "--force")
    assert rc == 0 and str(saved) in out and len(opened) == 1


def test_fetch_bad_checksum_exit_2(capsys, tmp_path, monkeypatch):
    serve(monkeypatch, tmp_path, "mhp-pbe", b"a,b\n1,2\n", sha256="f" * 64)
    rc, out, err = run(capsys, "data", "fetch", "mhp-pbe")
    assert rc == 2 and "f" * 64 in err and "Traceback" not in err
    assert "nestedae: error:" in err
    cache = tmp_path / "cache"
    assert not cache.exists() or list(cache.iterdir()) == []


def test_fetch_offline_exit_2(capsys):
    rc, _, err = run(capsys, "data", "fetch", "mhp-hse")
    assert rc == 2 and data.DATA_DIR_ENV in err and data.REGISTRY["mhp-hse"].url in err
    assert "Traceback" not in err


def test_fetch_argument_errors(capsys):
    rc, _, err = run(capsys, "data", "fetch")
    assert rc == 2 and "--all" in err
    rc, _, err = run(capsys, "data", "fetch", "mhp-pbe", "--all")
    assert rc == 2 and "not both" in err
    rc, _, err = run(capsys, "data", "fetch", "nope")
    assert rc == 2 and "unknown dataset 'nope'" in err and "Traceback" not in err


def test_fetch_synthetic_says_nothing_to_do(capsys):
    rc, out, _ = run(capsys, "data", "fetch", "synthetic")
    assert rc == 0 and "nothing to download" in out


def test_fetch_derived_fetches_its_sources(capsys, tmp_path, monkeypatch):
    pbe = serve(monkeypatch, tmp_path / "pbe", "mhp-pbe", b"a,b\n1,2\n")
    hse = serve(monkeypatch, tmp_path / "hse", "mhp-hse", b"a,b\n3,4\n")
    rc, out, _ = run(capsys, "data", "fetch", "mhp-dft")
    assert rc == 0
    assert (tmp_path / "cache" / pbe.filename).is_file() and (tmp_path / "cache" / hse.filename).is_file()
    assert "mhp-pbe: saved" in out and "mhp-hse: saved" in out
    assert "mhp-dft: derived at load time from mhp-pbe (PBE_data.csv) and mhp-hse (HSE_data.csv)" in out
    rc, out, _ = run(capsys, "data", "fetch", "mhp-dft")
    assert rc == 0 and out.count("already present and verified") == 2


def test_fetch_derived_offline_exit_2(capsys):
    rc, _, err = run(capsys, "data", "fetch", "psc-gaps")
    assert rc == 2 and data.REGISTRY["psc-devices"].url in err


def test_fetch_all_reports_each_failure(capsys, tmp_path, monkeypatch):
    served = {}
    for i, name in enumerate(n for n, info in data.REGISTRY.items() if info.kind == "file"):
        served[name] = serve(monkeypatch, tmp_path / name, name, b"a,b\n%d,1\n" % i)
    broken = dataclasses.replace(data.REGISTRY["elem-prop"], sha256="0" * 64)
    monkeypatch.setitem(data.REGISTRY, "elem-prop", broken)
    rc, out, err = run(capsys, "data", "fetch", "--all")
    assert rc == 2
    assert "elem-prop" in err and "0" * 64 in err
    for name, info in served.items():
        if name != "elem-prop":
            assert (tmp_path / "cache" / info.filename).is_file()
            assert f"{name}: saved" in out
    assert not (tmp_path / "cache" / "Elem_prop.xlsx").exists()
    assert "psc-gaps" not in out and "mhp-dft" not in out  # derived: their sources were fetched above


def test_fetch_with_bad_data_dir_copy_is_refused(capsys, tmp_path, monkeypatch):
    info = serve(monkeypatch, tmp_path, "mhp-pbe", b"a,b\n1,2\n")
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    (env_dir / info.filename).write_bytes(b"tampered")
    monkeypatch.setenv(data.DATA_DIR_ENV, str(env_dir))
    rc, _, err = run(capsys, "data", "fetch", "mhp-pbe")
    assert rc == 2 and str(env_dir / info.filename) in err and "delete it" in err
