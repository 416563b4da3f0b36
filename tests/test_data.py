"""Tests of nestedae_core.data: registry, lookup, checksums, fetch, load, schema, status.

No test touches the network: an autouse fixture uses the ``offline`` fixture
(``urllib.request.urlopen`` lets only ``file://`` URLs through). Real datasets are
read from the ``data_dir`` fixture; those tests skip when the folder is absent.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from nestedae_core import data
from nestedae_core.data import download, files, loading
from nestedae_core.errors import DataError, DataMissingError, NestedAEError, SchemaError

pytestmark = pytest.mark.unit


# --------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch, offline):
    """Empty cache, no data dir, no network, fresh in-process caches."""
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    monkeypatch.setenv(data.CACHE_DIR_ENV, str(tmp_path / "cache"))
    data.reset_caches()
    yield
    data.reset_caches()


def write_csv(path: Path, columns, n_rows: int = 3) -> Path:
    """Write a small numeric CSV with ``columns`` and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame({c: [float(i + j) for i in range(n_rows)] for j, c in enumerate(columns)})
    frame.to_csv(path, index=False)
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fake_dataset(monkeypatch, tmp_path, name: str = "mhp-pbe", columns=("a", "b"), n_rows: int = 3):
    """Point registry entry ``name`` at a small CSV served from a file:// URL; return (info, source file)."""
    old = data.REGISTRY[name]
    source = write_csv(tmp_path / "server" / old.filename, columns, n_rows)
    info = dataclasses.replace(
        old, url=source.as_uri(), sha256=sha(source), rows=n_rows, required_columns=tuple(columns)
    )
    monkeypatch.setitem(data.REGISTRY, name, info)
    return info, source


# --------------------------------------------------------------------------- registry


def test_registry_has_documented_datasets():
    assert list(data.REGISTRY) == [
        "mhp-pbe-paper", "mhp-pbe", "mhp-hse", "mhp-dft", "psc-devices", "psc-gaps", "elem-prop", "synthetic",
    ]
    for name, info in data.REGISTRY.items():
        assert info.name == name
        assert info.kind in ("file", "generated", "derived")
        assert info.citation and info.license and info.title
        if info.kind == "file":
            assert len(info.sha256) == 64 and set(info.sha256) <= set("0123456789abcdef")
            assert info.url.startswith("https://raw.githubusercontent.com/") and info.url.endswith(info.filename)
            assert info.rows and info.rows > 0
            assert info.doi.startswith("10.")
            assert info.sources == ()
        if info.kind == "derived":
            assert not info.filename and not info.url and not info.sha256
            assert info.sources and all(data.REGISTRY[s].kind == "file" for s in info.sources)
            assert info.rows and info.doi.startswith("10.") and info.targets
    assert data.REGISTRY["psc-gaps"].sources == ("psc-devices",)
    assert data.REGISTRY["mhp-dft"].sources == ("mhp-pbe", "mhp-hse")
    assert data.short_citation("psc-gaps") == "Jacobsson et al. 2022; Thota et al. 2024"
    assert data.short_citation("mhp-dft") == "Mannodi-Kanakkithodi & Chan 2022"
    assert data.REGISTRY["synthetic"].kind == "generated"
    assert data.REGISTRY["mhp-pbe"].targets["Gap"] == "eV"
    assert data.REGISTRY["psc-devices"].targets["JV_reverse_scan_PCE"] == "%"
    assert "CC BY 4.0" in data.REGISTRY["psc-devices"].license
    assert "10.1039/D3MH01484C" in data.REGISTRY["mhp-pbe-paper"].citation  # the NestedAE paper
    assert "10.1039/D1EE02971A" in data.REGISTRY["mhp-pbe-paper"].citation  # the data paper


def test_required_columns():
    paper = data.REGISTRY["mhp-pbe-paper"].required_columns
    assert len(paper) == 3 + 14 + 36 and paper[:3] == ("Formula", "Gap", "Decomp")
    assert paper[-1] == "X_period" and "A_ion_rad" in paper
    for name in ("mhp-pbe", "mhp-hse"):
        cols = data.REGISTRY[name].required_columns
        assert set(cols) == set(paper) | {"Cubic", "Tetra", "Ortho", "Hex"}
    dev = data.REGISTRY["psc-devices"].required_columns
    assert len(dev) == 25 and "X_atom_wt" in dev and "Tolerance Factor" in dev and "JV_reverse_scan_PCE" in dev


def test_dataset_info_is_frozen_and_hashable():
    info = data.dataset_info("mhp-pbe")
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.rows = 1  # type: ignore[misc]
    assert hash(info) == hash(dataclasses.replace(info))


def test_unknown_dataset_lists_known_names():
    with pytest.raises(DataError) as err:
        data.dataset_info("mhp-pbee")
    msg = str(err.value)
    assert "mhp-pbee" in msg and "did you mean 'mhp-pbe'" in msg
    for name in data.REGISTRY:
        assert name in msg
    assert "\n" not in msg


def test_cache_dir_env_xdg_home(tmp_path, monkeypatch):
    monkeypatch.setenv(data.CACHE_DIR_ENV, str(tmp_path / "c1"))
    assert data.cache_dir() == tmp_path / "c1"
    monkeypatch.delenv(data.CACHE_DIR_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.cache_dir() == tmp_path / "xdg" / "nestedae"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.cache_dir() == tmp_path / "home" / ".cache" / "nestedae"
    assert not (tmp_path / "home").exists()  # cache_dir() never creates anything


def test_file_sha256(tmp_path):
    p = tmp_path / "x.bin"
    p.write_bytes(os.urandom(200_000))
    assert data.file_sha256(p) == hashlib.sha256(p.read_bytes()).hexdigest()


def test_citation_text():
    text = data.citation_text("psc-devices")
    assert "10.1038/s41560-021-00941-3" in text and "CC BY 4.0" in text
    assert data.REGISTRY["psc-devices"].url in text


def test_citation_text_of_derived_datasets_names_the_source_files():
    gaps = data.citation_text("psc-gaps")
    assert "Jacobsson" in gaps and "10.1039/D3MH01484C" in gaps
    assert "derived at load time from psc-devices (PSC_efficiencies_dataset.csv)" in gaps
    assert data.REGISTRY["psc-devices"].url in gaps and data.REGISTRY["psc-devices"].sha256 in gaps
    dft = data.citation_text("mhp-dft")
    assert "Mannodi-Kanakkithodi" in dft and "PBE_data.csv" in dft and "HSE_data.csv" in dft
    assert data.derived_from_text("mhp-pbe") == ""
    with pytest.raises(DataError):
        data.citation_text("nope")


# --------------------------------------------------------------------------- locate


def test_lookup_order_explicit_then_env_then_cache(tmp_path, monkeypatch):
    info, source = fake_dataset(monkeypatch, tmp_path)
    env_dir, cache, own = tmp_path / "env", tmp_path / "cache", tmp_path / "own"
    for folder in (env_dir, cache, own):
        folder.mkdir(exist_ok=True)
        (folder / info.filename).write_bytes(source.read_bytes())
    monkeypatch.setenv(data.DATA_DIR_ENV, str(env_dir))

    assert data.locate("mhp-pbe", own / info.filename) == own / info.filename  # explicit file
    assert data.locate("mhp-pbe", own) == own / info.filename  # explicit folder
    assert data.locate("mhp-pbe") == env_dir / info.filename
    (env_dir / info.filename).unlink()
    assert data.locate("mhp-pbe") == cache / info.filename
    (cache / info.filename).unlink()
    assert data.locate("mhp-pbe") is None
    monkeypatch.delenv(data.DATA_DIR_ENV)
    assert data.locate("mhp-pbe") is None


def test_explicit_path_is_not_hash_checked(tmp_path, monkeypatch):
    info, _ = fake_dataset(monkeypatch, tmp_path)
    mine = write_csv(tmp_path / "mine.csv", ["a", "b", "extra"], 5)
    assert data.locate("mhp-pbe", mine) == mine
    assert len(data.load("mhp-pbe", mine)) == 5


def test_explicit_path_missing_raises(tmp_path, monkeypatch):
    fake_dataset(monkeypatch, tmp_path)
    with pytest.raises(DataMissingError, match="does not exist"):
        data.locate("mhp-pbe", tmp_path / "nope.csv")
    with pytest.raises(DataMissingError, match="does not hold PBE_data.csv"):
        data.locate("mhp-pbe", tmp_path)


def test_checksum_mismatch_in_data_dir(tmp_path, monkeypatch):
    info, _ = fake_dataset(monkeypatch, tmp_path)
    env_dir = tmp_path / "env"
    bad = write_csv(env_dir / info.filename, ["a", "b"], 7)
    monkeypatch.setenv(data.DATA_DIR_ENV, str(env_dir))
    with pytest.raises(DataError) as err:
        data.locate("mhp-pbe")
    msg = str(err.value)
    assert str(bad) in msg and info.sha256 in msg and sha(bad) in msg
    assert "delete it" in msg and data.DATA_DIR_ENV in msg and "\n" not in msg
    with pytest.raises(DataError):
        data.load("mhp-pbe")  # load never silently uses a wrong file


def test_checksum_mismatch_in_cache_suggests_refetch(tmp_path, monkeypatch):
    info, _ = fake_dataset(monkeypatch, tmp_path)
    write_csv(tmp_path / "cache" / info.filename, ["a", "b"], 9)
    with pytest.raises(DataError, match="nestedae data fetch mhp-pbe --force"):
        data.locate("mhp-pbe")


def test_hash_is_memoised_per_path_size_mtime(tmp_path, monkeypatch):
    info, source = fake_dataset(monkeypatch, tmp_path)
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    target = env_dir / info.filename
    target.write_bytes(source.read_bytes())
    monkeypatch.setenv(data.DATA_DIR_ENV, str(env_dir))
    calls = []
    real = data.file_sha256
    monkeypatch.setattr(files, "file_sha256", lambda p: calls.append(p) or real(p))
    for _ in range(5):
        assert data.locate("mhp-pbe") == target
    assert len(calls) == 1
    target.write_bytes(source.read_bytes() + b"9,9\n")  # changed size and mtime
    with pytest.raises(DataError, match="SHA-256"):
        data.locate("mhp-pbe")
    assert len(calls) == 2


def test_locate_generated_is_none():
    assert data.locate("synthetic") is None


# --------------------------------------------------------------------------- fetch


def test_fetch_file_url_writes_atomically_and_verifies(tmp_path, monkeypatch):
    info, source = fake_dataset(monkeypatch, tmp_path, n_rows=5000)
    replaced = []
    real_replace = os.replace
    monkeypatch.setattr(download.os, "replace", lambda a, b: replaced.append((Path(a), Path(b))) or real_replace(a, b))
    seen = []
    path = data.fetch("mhp-pbe", progress=lambda done, total: seen.append((done, total)))

    cache = tmp_path / "cache"
    assert path == cache / info.filename
    assert path.read_bytes() == source.read_bytes()
    assert sorted(p.name for p in cache.iterdir()) == [info.filename]  # no temp file left
    assert len(replaced) == 1
    src, dst = replaced[0]
    assert src.parent == cache and src != dst and dst == path  # temp file in the same folder
    size = source.stat().st_size
    assert seen and seen[-1] == (size, size)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert data.locate("mhp-pbe") == path


def test_fetch_skips_verified_copy_unless_forced(tmp_path, monkeypatch, offline):
    fake_dataset(monkeypatch, tmp_path)
    opened = []
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: opened.append(a) or offline(*a, **k))
    first = data.fetch("mhp-pbe")
    assert data.fetch("mhp-pbe") == first and len(opened) == 1
    assert data.fetch("mhp-pbe", force=True) == first and len(opened) == 2


def test_fetch_replaces_corrupt_cached_copy(tmp_path, monkeypatch):
    info, source = fake_dataset(monkeypatch, tmp_path)
    write_csv(tmp_path / "cache" / info.filename, ["a", "b"], 11)
    path = data.fetch("mhp-pbe")
    assert sha(path) == info.sha256


def test_fetch_wrong_checksum_leaves_nothing(tmp_path, monkeypatch):
    info, _ = fake_dataset(monkeypatch, tmp_path)
    monkeypatch.setitem(data.REGISTRY, "mhp-pbe", dataclasses.replace(info, sha256="0" * 64))
    with pytest.raises(DataError) as err:
        data.fetch("mhp-pbe")
    assert "0" * 64 in str(err.value) and info.sha256 in str(err.value)
    assert not isinstance(err.value, DataMissingError)
    cache = tmp_path / "cache"
    assert not cache.exists() or list(cache.iterdir()) == []


def test_failed_forced_fetch_keeps_good_copy(tmp_path, monkeypatch):
    info, source = fake_dataset(monkeypatch, tmp_path)
    good = data.fetch("mhp-pbe")
    source.write_bytes(b"a,b\n1,2\n")  # the "server" now serves something else
    with pytest.raises(DataError):
        data.fetch("mhp-pbe", force=True)
    assert sha(good) == info.sha256
    assert sorted(p.name for p in good.parent.iterdir()) == [info.filename]


def test_fetch_unreachable_raises_data_missing(tmp_path, monkeypatch):
    info, _ = fake_dataset(monkeypatch, tmp_path)
    url = (tmp_path / "gone" / "PBE_data.csv").as_uri()
    monkeypatch.setitem(data.REGISTRY, "mhp-pbe", dataclasses.replace(info, url=url))
    with pytest.raises(DataMissingError) as err:
        data.fetch("mhp-pbe")
    msg = str(err.value)
    assert "mhp-pbe" in msg and url in msg and data.DATA_DIR_ENV in msg and "\n" not in msg
    cache = tmp_path / "cache"
    assert not cache.exists() or list(cache.iterdir()) == []


def test_offline_real_url_raises_data_missing():
    info = data.dataset_info("mhp-hse")
    with pytest.raises(DataMissingError) as err:
        data.fetch("mhp-hse")
    assert info.url in str(err.value) and data.DATA_DIR_ENV in str(err.value)
    with pytest.raises(DataMissingError, match=data.DATA_DIR_ENV):
        data.load("mhp-hse")  # download allowed, but offline


def test_fetch_generated_dataset_is_an_error():
    with pytest.raises(DataError, match="generated"):
        data.fetch("synthetic")


def test_fetch_unwritable_cache(tmp_path, monkeypatch):
    fake_dataset(monkeypatch, tmp_path)
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    monkeypatch.setenv(data.CACHE_DIR_ENV, str(blocker / "cache"))
    with pytest.raises(DataError, match=data.CACHE_DIR_ENV):
        data.fetch("mhp-pbe")


# --------------------------------------------------------------------------- load / schema


def test_load_missing_without_download(tmp_path, monkeypatch):
    info = data.dataset_info("mhp-pbe")
    with pytest.raises(DataMissingError) as err:
        data.load("mhp-pbe", download=False)
    msg = str(err.value)
    for part in ("mhp-pbe", info.filename, info.url, data.DATA_DIR_ENV, "nestedae data fetch mhp-pbe"):
        assert part in msg
    assert "\n" not in msg
    assert isinstance(err.value, NestedAEError) and isinstance(err.value, FileNotFoundError)
    assert not (tmp_path / "cache").exists()


def test_load_downloads_when_missing(tmp_path, monkeypatch):
    info, _ = fake_dataset(monkeypatch, tmp_path, columns=("x", "y", "z"), n_rows=4)
    df = data.load("mhp-pbe")
    assert list(df.columns) == ["x", "y", "z"] and len(df) == 4
    assert (tmp_path / "cache" / info.filename).is_file()


def test_load_returns_copies_and_caches(tmp_path, monkeypatch):
    info, source = fake_dataset(monkeypatch, tmp_path)
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    (env_dir / info.filename).write_bytes(source.read_bytes())
    monkeypatch.setenv(data.DATA_DIR_ENV, str(env_dir))
    reads = []
    real = loading._read_table
    monkeypatch.setattr(loading, "_read_table", lambda i, p: reads.append(p) or real(i, p))
    first = data.load("mhp-pbe")
    first.loc[0, "a"] = -999.0
    first["new"] = 1
    second = data.load("mhp-pbe")  # served from the in-process cache
    assert second.loc[0, "a"] == 0.0 and "new" not in second.columns
    second.loc[0, "a"] = -1.0
    third = data.load("mhp-pbe")
    assert third.loc[0, "a"] == 0.0 and third is not second
    assert len(reads) == 1


def test_load_cache_follows_file_changes(tmp_path, monkeypatch):
    fake_dataset(monkeypatch, tmp_path)
    mine = write_csv(tmp_path / "mine.csv", ["a", "b"], 3)
    assert len(data.load("mhp-pbe", mine)) == 3
    write_csv(mine, ["a", "b"], 6)
    st = mine.stat()
    os.utime(mine, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert len(data.load("mhp-pbe", mine)) == 6


def test_schema_error_lists_every_missing_column():
    df = pd.DataFrame(columns=["Formula", "tolerance factor", "Gap"])
    with pytest.raises(SchemaError) as err:
        data.validate_schema(df, ["Formula", "Gap", "Decomp", "Tolerance Factor", "X_period"], "demo")
    msg = str(err.value)
    assert "'demo'" in msg and "3 required" in msg
    for col in ("'Decomp'", "'Tolerance Factor'", "'X_period'"):
        assert col in msg
    assert "'Formula'" not in msg.split("found similar")[0]
    assert "'tolerance factor' for 'Tolerance Factor'" in msg
    assert "\n" not in msg
    data.validate_schema(df, ["Formula", "Gap"], "demo")  # nothing missing: no error


def test_load_explicit_file_with_wrong_schema(tmp_path, monkeypatch):
    mine = write_csv(tmp_path / "mine.csv", ["Formula", "Gap"])
    with pytest.raises(SchemaError, match="Decomp"):
        data.load("mhp-pbe-paper", mine)


def test_load_unparseable_file(tmp_path):
    junk = tmp_path / "Elem_prop.xlsx"
    junk.write_bytes(b"this is not a spreadsheet")
    with pytest.raises(DataError, match="cannot parse"):
        data.load("elem-prop", junk)


# --------------------------------------------------------------------------- real datasets


@pytest.mark.parametrize(
    "name, n_rows, n_cols",
    [
        ("mhp-pbe", 570, 59),
        ("mhp-pbe-paper", 494, 55),
        ("mhp-hse", 347, 59),
        ("psc-devices", 2018, 71),
        ("elem-prop", 12, 15),
    ],
)
def test_load_real_dataset(name, n_rows, n_cols, monkeypatch, data_dir):
    info = data.dataset_info(name)
    path = data_dir / info.filename
    monkeypatch.setenv(data.DATA_DIR_ENV, str(data_dir))
    assert data.file_sha256(path) == info.sha256
    assert data.locate(name) == path
    df = data.load(name, download=False)
    assert df.shape == (n_rows, n_cols)
    assert len(df) == info.rows
    assert set(info.required_columns) <= set(df.columns)
    for target in info.targets:
        assert pd.api.types.is_numeric_dtype(df[target])


def test_real_psc_devices_has_canonical_x_weight(monkeypatch, data_dir):
    monkeypatch.setenv(data.DATA_DIR_ENV, str(data_dir))
    df = data.load("psc-devices", download=False)
    assert "X_atom_wt" in df.columns and "X_at_wt" in df.columns
    assert df["X_at_wt"].equals(df["X_atom_wt"])
    assert df["Perovskite_band_gap"].notna().sum() == 1429


def test_real_device_table_carries_fractions_and_phase(monkeypatch, data_dir):
    from nestedae_core.chemistry.composition import parse_formula
    from nestedae_core.vocabulary import DEVICE_COMPOSITION, IONS, PHASE

    monkeypatch.setenv(data.DATA_DIR_ENV, str(data_dir))
    raw = data.load("psc-devices", download=False)
    table = data.load_dataset_table("psc-devices", download=False)
    assert len(table) == len(raw) and list(table.columns[: raw.shape[1]]) == list(raw.columns)
    # no value of the file changes, except the 4 fill factors above 1 that the training rule masks
    ff = "JV_reverse_scan_FF"
    masked = pd.to_numeric(raw[ff], errors="coerce") > 1
    assert int(masked.sum()) == 4 and table.loc[masked, ff].isna().all()
    pd.testing.assert_frame_equal(table.loc[~masked, raw.columns], raw.loc[~masked], check_dtype=False)
    assert set(IONS) | {PHASE} <= set(table.columns)
    assert (table[PHASE] == "Cubic").all()
    first = table.iloc[0]
    expected = parse_formula(first[DEVICE_COMPOSITION]).fraction_vector()
    assert first[list(IONS)].to_numpy(dtype=float) == pytest.approx(expected)
    assert table[list(IONS)].notna().all(axis=1).all()  # every composition of the file parses
    for site in ("A", "B"):
        from nestedae_core.vocabulary import SITE_IONS

        assert table[list(SITE_IONS[site])].sum(axis=1).to_numpy() == pytest.approx(1.0, abs=0.02)


def test_device_table_fractions_are_nan_where_the_composition_does_not_parse(tmp_path, monkeypatch):
    from nestedae_core.vocabulary import DEVICE_COMPOSITION, IONS, PHASE

    columns = data.REGISTRY["psc-devices"].required_columns
    frame = pd.DataFrame({c: [1.0, 2.0] for c in columns})
    frame[DEVICE_COMPOSITION] = ["MAPbI3", "(PEA)2PbI4 not a perovskite"]
    path = tmp_path / data.REGISTRY["psc-devices"].filename
    frame.to_csv(path, index=False)
    table = data.load_dataset_table("psc-devices", tmp_path)
    assert table.loc[0, "MA"] == 1.0 and table.loc[0, "I"] == 1.0
    assert table.loc[1, list(IONS)].isna().all()
    assert (table[PHASE] == "Cubic").all()


def test_real_phase_columns_are_one_hot(monkeypatch, data_dir):
    monkeypatch.setenv(data.DATA_DIR_ENV, str(data_dir))
    df = data.load("mhp-pbe", download=False)
    assert (df[["Cubic", "Tetra", "Ortho", "Hex"]].sum(axis=1) == 1).all()


def test_synthetic_loads():
    df = data.load("synthetic")
    assert isinstance(df, pd.DataFrame) and len(df) > 0
    assert set(data.REGISTRY["synthetic"].targets) <= set(df.columns)
    (status,) = data.dataset_status("synthetic")
    assert status.available and status.path is None


# --------------------------------------------------------------------------- status


def test_dataset_status_missing_never_raises():
    statuses = data.dataset_status()
    assert [s.name for s in statuses] == list(data.REGISTRY)
    for s in statuses:
        if data.REGISTRY[s.name].kind == "file":
            assert not s.available and s.path is None
            assert f"nestedae data fetch {s.name}" in s.message and data.DATA_DIR_ENV in s.message
            assert s.rows == data.REGISTRY[s.name].rows and s.url and s.citation
        if data.REGISTRY[s.name].kind == "derived":
            assert not s.available and s.path is None and s.derived_from == data.REGISTRY[s.name].sources
            assert f"nestedae data fetch {s.name}" in s.message and data.DATA_DIR_ENV in s.message
            assert all(source in s.message for source in s.derived_from)
    (only,) = data.dataset_status("mhp-hse")
    assert only.name == "mhp-hse" and not only.available


def test_dataset_status_bad_and_good_files(tmp_path, monkeypatch):
    info, source = fake_dataset(monkeypatch, tmp_path)
    env_dir = tmp_path / "env"
    bad = write_csv(env_dir / info.filename, ["a", "b"], 8)
    monkeypatch.setenv(data.DATA_DIR_ENV, str(env_dir))
    (status,) = data.dataset_status("mhp-pbe")
    assert not status.available and status.path == bad and "SHA-256" in status.message
    bad.write_bytes(source.read_bytes())
    (status,) = data.dataset_status("mhp-pbe")
    assert status.available and status.path == bad and data.DATA_DIR_ENV in status.message


def test_derived_status_follows_its_sources(tmp_path, monkeypatch):
    info, source = fake_dataset(monkeypatch, tmp_path, "psc-devices")
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    monkeypatch.setenv(data.DATA_DIR_ENV, str(env_dir))
    (status,) = data.dataset_status("psc-gaps")
    assert not status.available and "psc-devices" in status.message
    (env_dir / info.filename).write_bytes(b"not the pinned file")
    (status,) = data.dataset_status("psc-gaps")
    assert not status.available and "SHA-256" in status.message  # why the source is not usable
    (env_dir / info.filename).write_bytes(source.read_bytes())
    (status,) = data.dataset_status("psc-gaps")
    assert status.available and status.path is None and status.derived_from == ("psc-devices",)
    assert "derived at load time from psc-devices (PSC_efficiencies_dataset.csv)" in status.message


def test_dataset_stamp(tmp_path, monkeypatch):
    assert data.dataset_stamp("synthetic") == "generated"
    assert data.dataset_stamp("psc-devices") == "missing"
    assert data.dataset_stamp("mhp-dft") == "missing|missing"
    info, source = fake_dataset(monkeypatch, tmp_path, "psc-devices")
    monkeypatch.setenv(data.DATA_DIR_ENV, str(source.parent))
    stamp = data.dataset_stamp("psc-devices")
    assert stamp.startswith(str(source.resolve())) and data.dataset_stamp("psc-gaps") == stamp
    os.utime(source, ns=(1, 1))
    assert data.dataset_stamp("psc-gaps") != stamp


def test_derived_datasets_have_no_file_and_nothing_to_download(tmp_path, monkeypatch):
    assert data.locate("psc-gaps") is None and data.locate("mhp-dft") is None
    with pytest.raises(DataError, match="derived at load time.*psc-devices"):
        data.fetch("psc-gaps")
    with pytest.raises(DataMissingError, match="'psc-gaps' is derived from psc-devices.*nestedae data fetch psc-devices"):
        data.load("psc-gaps", download=False)


def test_dataset_status_never_downloads(monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("dataset_status downloaded"))
    data.dataset_status()


def test_dataset_status_unknown_name():
    with pytest.raises(DataError, match="known datasets"):
        data.dataset_status("nope")
