"""The layers hold: ``lint-imports`` checks the import-linter contracts of ``pyproject.toml``.

cli > api (the names the dashboard and the command use) > sweep, benchmark > front door (estimator, predict, batch, report, jobs, store) >
perovskite (perovskite, query, data, chemistry, vocabulary) > explain > train > model >
vocabulary-free base (errors, io_safe, threads, csv_safe); the library never imports the
dashboard or Streamlit, the nested-autoencoder core knows no chemistry, and the dashboard
(app/, pages/, streamlit_app.py) and the command line import the library only through nestedae_core.api.
"""
from __future__ import annotations

import ast
import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports() -> list[str]:
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    if not Path(exe).exists():
        pytest.skip("import-linter is not installed (pip install -r requirements-dev.txt)")
    return [exe]


def test_import_contracts_are_kept() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    proc = subprocess.run([*_lint_imports(), "--config", "pyproject.toml", "--no-cache"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout



# --------------------------------------------------------------------------- the front door
FRONT_DOOR = "nestedae_core.api"
#: The dashboard (app/, its pages and entry script) and the command line: they use the library only through the front door.
FRONT_DOOR_USERS = ("app", "pages", "nestedae_core/cli", "streamlit_app.py")


def _front_door_users(root: Path = ROOT) -> list[Path]:
    files: list[Path] = []
    for target in FRONT_DOOR_USERS:
        path = root / target
        files.extend([path] if path.is_file() else sorted(path.rglob("*.py")))
    return files


def _library_imports_past_the_front_door(path: Path, root: Path = ROOT) -> list[str]:
    """``file:line module`` for each import of a nestedae_core module other than the front door in ``path``."""
    rel = path.relative_to(root)
    package = list(rel.with_suffix("").parts[:-1])
    own = ".".join(package[:2]) if package[:1] == ["nestedae_core"] else None  # the command line's own modules
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            modules = [module] if node.module or not node.level else [f"{module}.{a.name}" for a in node.names]
            if module == "nestedae_core":  # `from nestedae_core import x`: x is a module or a name of the package
                modules = [f"nestedae_core.{a.name}" for a in node.names]
        else:
            continue
        for module in modules:
            inside = module == "nestedae_core" or module.startswith("nestedae_core.")
            if not inside or module == FRONT_DOOR or (own and (module == own or module.startswith(own + "."))):
                continue
            found.append(f"{rel}:{node.lineno} {module}")
    return found


def test_the_dashboard_and_the_command_line_import_the_library_only_through_its_front_door() -> None:
    """pages/ has no __init__.py (import-linter cannot see it): every import there, in app/ and in the command line
    goes through nestedae_core.api (python tools/front_door_imports.py rewrites those that do not)."""
    files = _front_door_users()
    assert len(files) > 20 and any(p.parent.name == "pages" for p in files)
    past = [hit for path in files for hit in _library_imports_past_the_front_door(path)]
    assert not past, "import these through nestedae_core.api (run tools/front_door_imports.py):\n" + "\n".join(past)


def test_the_front_door_check_sees_an_import_past_it(tmp_path: Path) -> None:
    """The check above can fail: a page, an app module and a command importing around the front door are found."""
    (tmp_path / "pages").mkdir()
    (tmp_path / "pages" / "p.py").write_text("from nestedae_core.api import preset\nfrom nestedae_core import data\n")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "m.py").write_text("import nestedae_core.store as store\nfrom app import ui\n")
    cli = tmp_path / "nestedae_core" / "cli"
    cli.mkdir(parents=True)
    (cli / "c.py").write_text("from ._common import x\nfrom ..api import y\nfrom ..errors import E\nfrom .. import data\n")
    hits = [h for p in _front_door_users(tmp_path) for h in _library_imports_past_the_front_door(p, tmp_path)]
    assert sorted(hits) == sorted([
        "pages/p.py:2 nestedae_core.data",
        "app/m.py:1 nestedae_core.store",
        "nestedae_core/cli/c.py:3 nestedae_core.errors",
        "nestedae_core/cli/c.py:4 nestedae_core.data",
    ])


def test_every_name_of_the_front_door_resolves_and_is_grouped() -> None:
    import nestedae_core.api as api

    groups = api._GROUPS
    assert {"model & prediction", "explanation", "data & chemistry", "jobs & sweeps", "store & bundles",
            "reports & files", "errors", "schema & vocabulary"} <= set(groups)
    names = [n for g in groups.values() for n in g]
    assert len(names) == len(set(names)), "a name is in two groups"
    unresolved = []
    for name in names:
        try:
            getattr(api, name)
        except (AttributeError, ImportError) as exc:
            unresolved.append(f"{name}: {exc}")
    assert not unresolved, unresolved
    assert api.column_label is importlib.import_module("nestedae_core.vocabulary").label  # a renamed name
    assert api.NestedAEModel is importlib.import_module("nestedae_core.estimator").NestedAEModel
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        api.not_a_name  # noqa: B018


def test_the_front_door_sees_a_patched_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """Names are looked up on each access, so a test that patches the defining module is seen through the door."""
    import nestedae_core.api as api
    import nestedae_core.physics as physics

    monkeypatch.setattr(physics, "sq_limit", "patched")
    assert api.sq_limit == "patched"


def test_no_module_uses_a_name_it_never_defines_or_imports() -> None:
    """pyflakes' undefined-name check over the library, the dashboard and the tools: a merge that removes an
    import its neighbour still uses (``quality.GAP_FIT`` after ``quality`` went) fails here, not in a user's page."""
    import pyflakes.api
    import pyflakes.messages
    import pyflakes.reporter

    class Collect(pyflakes.reporter.Reporter):
        def __init__(self) -> None:
            self.found: list[str] = []

        def flake(self, message) -> None:  # type: ignore[no-untyped-def]
            if isinstance(message, (pyflakes.messages.UndefinedName, pyflakes.messages.UndefinedLocal)):
                self.found.append(str(message))

        def unexpectedError(self, filename, msg) -> None:  # type: ignore[no-untyped-def]
            self.found.append(f"{filename}: {msg}")

        def syntaxError(self, filename, msg, lineno, offset, text) -> None:  # type: ignore[no-untyped-def]
            self.found.append(f"{filename}:{lineno}: {msg}")

    rep = Collect()
    root = Path(__file__).resolve().parents[1]
    files = [p for d in ("nestedae_core", "app", "pages", "tools", "benchmarks") for p in sorted((root / d).rglob("*.py"))]
    files.append(root / "streamlit_app.py")
    for path in files:
        pyflakes.api.checkPath(str(path), rep)
    assert not rep.found, "\n".join(rep.found)
