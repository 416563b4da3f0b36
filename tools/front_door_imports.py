"""Route the dashboard's and the command's library imports through the front door, ``nestedae_core.api``.

Re-runnable and idempotent (AST-based; only import statements and ``module.name`` uses change)::

    python tools/front_door_imports.py                # rewrite app/, pages/, nestedae_core/cli/, streamlit_app.py
    python tools/front_door_imports.py --check        # change nothing; exit 1 if a rewrite or a name is pending
    python tools/front_door_imports.py --add-missing  # also add the names api lacks (group "unsorted") and rewrite

What it rewrites, in those files only:

* ``from nestedae_core.X import a, b as c`` (and ``from ..X import a`` inside ``nestedae_core/cli``) becomes
  ``from nestedae_core.api import a, b as c`` (``from ..api import ...`` inside the library);
* a module imported from the library (``from nestedae_core import data`` and then ``data.dataset_info(...)``)
  becomes the names used from it (``from nestedae_core.api import dataset_info`` and ``dataset_info(...)``),
  when that is safe: the module's name is used only as ``module.name`` and no used name clashes with another
  name of the file; otherwise the file is listed under "rewrite by hand";
* the module-level imports from the front door of one file are merged into one statement.

A statement that needs a name ``api`` does not export is left as it is and the name is listed (with the line
to add to ``nestedae_core/api.py``), unless ``--add-missing`` is given. The exit status is 0 when every
library import in those files goes through the front door, 1 otherwise.
"""
from __future__ import annotations

import argparse
import ast
import builtins
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "nestedae_core"
FRONT_DOOR = f"{PACKAGE}.api"
API_FILE = ROOT / PACKAGE / "api.py"
EXPORTS_VARIABLE = "_GROUPS"
UNSORTED = "unsorted (added by tools/front_door_imports.py: move each name to its group)"
#: What goes through the front door: the dashboard, its pages and entry script, and the command line.
TARGETS = ("app", "pages", f"{PACKAGE}/cli", "streamlit_app.py")
WIDTH = 118


@dataclass
class Report:
    """What one file's rewrite did and what it could not do."""

    path: str
    changed: list[str] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)  # name -> module it was imported from
    by_hand: list[str] = field(default_factory=list)


def read_exports(api_file: Path = API_FILE) -> dict[str, dict[str, str]]:
    """The front door's groups: group -> {public name: module under nestedae_core ('' for the package)}."""
    tree = ast.parse(api_file.read_text(encoding="utf-8"))
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        if isinstance(target, ast.Name) and target.id == EXPORTS_VARIABLE and node.value is not None:
            return ast.literal_eval(node.value)
    raise SystemExit(f"{api_file}: no {EXPORTS_VARIABLE} = {{...}} found")


def add_exports(missing: dict[str, str], api_file: Path = API_FILE) -> None:
    """Add ``missing`` (name -> module) to the front door's group ``UNSORTED``, keeping the file's layout."""
    text = api_file.read_text(encoding="utf-8")
    groups = read_exports(api_file)
    known = {n for names in groups.values() for n in names}
    new = {n: (m[len(PACKAGE) + 1:] if m != PACKAGE else "") for n, m in sorted(missing.items()) if n not in known}
    if not new:
        return
    tree = ast.parse(text)
    node = next(n for n in tree.body if isinstance(n, (ast.Assign, ast.AnnAssign))
                and isinstance(n.targets[0] if isinstance(n, ast.Assign) else n.target, ast.Name)
                and (n.targets[0] if isinstance(n, ast.Assign) else n.target).id == EXPORTS_VARIABLE)
    outer = node.value
    assert isinstance(outer, ast.Dict)
    lines = text.splitlines(keepends=True)
    entries = "".join(f"        {n!r}: {m!r},\n" for n, m in new.items())
    keys = [ast.literal_eval(k) for k in outer.keys if k is not None]
    if UNSORTED in keys:
        inner = outer.values[keys.index(UNSORTED)]
        end = inner.end_lineno - 1  # the line holding the group's closing brace
        lines.insert(end, entries)
    else:
        end = outer.end_lineno - 1  # the line holding the closing brace of _GROUPS
        lines.insert(end, f"    {UNSORTED!r}: {{\n{entries}    }},\n")
    api_file.write_text("".join(lines), encoding="utf-8")


def _is_module(dotted: str, root: Path) -> bool:
    path = root.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _package_of(rel: Path) -> list[str]:
    parts = list(rel.with_suffix("").parts)
    return parts[:-1] if parts[-1] != "__init__" else parts[:-1]


def _absolute(node: ast.ImportFrom, rel: Path) -> str:
    if node.level == 0:
        return node.module or ""
    base = _package_of(rel)
    base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
    return ".".join([*base, *([node.module] if node.module else [])])


def _bindings(tree: ast.AST) -> dict[str, list[ast.AST]]:
    """Every name the file binds (anywhere), with the nodes that bind it."""
    out: dict[str, list[ast.AST]] = {}
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names = [node.id]
        elif isinstance(node, ast.arg):
            names = [node.arg]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names = [node.name]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [(a.asname or a.name).split(".")[0] for a in node.names]
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names = [node.name]
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            names = list(node.names)
        for n in names:
            out.setdefault(n, []).append(node)
    return out


def _offsets(source: bytes) -> list[int]:
    starts = [0]
    for i, b in enumerate(source):
        if b == 10:
            starts.append(i + 1)
    return starts


def _span(node: ast.AST, starts: list[int]) -> tuple[int, int]:
    return starts[node.lineno - 1] + node.col_offset, starts[node.end_lineno - 1] + node.end_col_offset


def _order(alias: tuple[str, str | None]) -> tuple[int, str]:
    """isort's order: dunders, CONSTANTS, Classes, functions."""
    name = alias[0]
    kind = 0 if name.startswith("__") else 1 if name.isupper() else 2 if name[:1].isupper() else 3
    return kind, name


def _import_text(module: str, aliases: list[tuple[str, str | None]], indent: int) -> str:
    names = [f"{n} as {a}" if a and a != n else n for n, a in aliases]
    one = f"from {module} import {', '.join(names)}"
    if indent + len(one) <= WIDTH:
        return one
    pad = " " * (indent + 4)
    lines, line = [], pad
    for name in names:
        piece = f"{name},"
        if line != pad and len(line) + 1 + len(piece) > WIDTH:
            lines.append(line)
            line = pad
        line = f"{line} {piece}" if line != pad else f"{pad}{piece}"
    lines.append(line)
    return f"from {module} import (\n" + "\n".join(lines) + f"\n{' ' * indent})"


def _front_door_for(rel: Path) -> str:
    """How ``rel`` names the front door: relative inside the library, absolute elsewhere."""
    package = _package_of(rel)
    if package and package[0] == PACKAGE:
        return "." * len(package) + "api"
    return FRONT_DOOR


def _through_front_door(node: ast.ImportFrom, rel: Path) -> bool:
    return _absolute(node, rel) == FRONT_DOOR


def _library_import(node: ast.ImportFrom, rel: Path) -> bool:
    """A ``from`` import of the library that should go through the front door (not the file's own package)."""
    module = _absolute(node, rel)
    if not (module == PACKAGE or module.startswith(PACKAGE + ".")) or module == FRONT_DOOR:
        return False
    own = _package_of(rel)
    if own and own[0] == PACKAGE:  # a module of the library (the command line): its own package is its own
        own_package = ".".join(own[:2])
        if module == own_package or module.startswith(own_package + "."):
            return False
    return True


def _public_name(exports: dict[str, str], module: str, name: str) -> str | None:
    """The front door's name for ``name`` of ``module`` (dotted, under the package): renamed, same, or None."""
    rel_module = module[len(PACKAGE) + 1:] if module != PACKAGE else ""
    for public, spec in exports.items():
        if spec == f"{rel_module}:{name}":
            return public
    return name if name in exports and ":" not in exports[name] else None


def rewrite_source(source: str, rel: Path, exports: dict[str, str], *, add_missing: bool = False,
                   root: Path = ROOT) -> tuple[str, Report]:
    """``source`` (the file ``rel`` of the repository) with its library imports through the front door.

    ``exports`` maps each public name of the front door to ``module`` or ``module:attribute`` (under the package).
    """
    report = Report(str(rel))
    data = source.encode("utf-8")
    tree = ast.parse(source)
    starts = _offsets(data)
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
    bound = _bindings(tree)
    loads: dict[str, list[ast.Name]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            loads.setdefault(node.id, []).append(node)
    edits: list[tuple[int, int, str]] = []
    door = _front_door_for(rel)
    library_imports = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and _library_import(n, rel)]
    library_bound = {(a.asname or a.name) for n in library_imports for a in n.names}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name == PACKAGE or a.name.startswith(PACKAGE + ".")
                                                for a in node.names if a.name != FRONT_DOOR):
            report.by_hand.append(f"{rel}:{node.lineno}: `import {PACKAGE}...`: use `from {FRONT_DOOR} import ...`")
    taken_new: dict[str, str] = {}  # new name -> module it comes from (clash check across the file)
    for node in library_imports:
        module = _absolute(node, rel)
        aliases: list[tuple[str, str | None]] = []
        attr_edits: list[tuple[int, int, str]] = []
        needed: dict[str, str] = {}
        ok = True
        for alias in node.names:
            if alias.name == "*":
                report.by_hand.append(f"{rel}:{node.lineno}: `from {module} import *`")
                ok = False
                break
            local = alias.asname or alias.name
            dotted = f"{module}.{alias.name}"
            if not _is_module(dotted, root):
                public = _public_name(exports, module, alias.name)
                if public is None:
                    public = alias.name
                    needed[alias.name] = module
                aliases.append((public, local if public != alias.name or alias.asname else None))
                continue
            # a module: its uses `local.x(.y...)` become the names `y`
            problem = None
            if len(bound.get(local, [])) > 1 and any(b is not node and not (isinstance(b, ast.ImportFrom)
                                                     and _library_import(b, rel)) for b in bound[local]):
                problem = f"`{local}` is also bound to something else in the file"
            used: list[tuple[ast.Name, ast.Attribute, str, str]] = []
            for name in loads.get(local, []):
                if problem:
                    break
                path, top = dotted, parents.get(name)
                attr = None
                while isinstance(top, ast.Attribute):
                    attr = top.attr
                    if _is_module(f"{path}.{attr}", root):
                        path, top = f"{path}.{attr}", parents.get(top)
                        attr = None
                        continue
                    break
                if attr is None or not isinstance(top, ast.Attribute):
                    problem = f"`{local}` used as a module (line {name.lineno}), not only as `{local}.name`"
                    break
                used.append((name, top, attr, path))
            renamed = []
            for name, top, attr, path in used:
                public = _public_name(exports, path, attr)
                if public is None:
                    needed[attr] = path
                renamed.append((name, top, public or attr, path))
            used = renamed
            for name, top, attr, path in used:
                if problem:
                    break
                clash = taken_new.get(attr)
                others = [b for b in bound.get(attr, []) if not (isinstance(b, (ast.ImportFrom)) and _library_import(b, rel))]
                if (clash is not None and clash != path) or others or (attr in dir(builtins)) \
                        or (attr in loads and attr not in library_bound):
                    problem = f"`{local}.{attr}` would clash with another `{attr}` of the file"
            if problem:
                report.by_hand.append(f"{rel}:{node.lineno}: {problem}")
                ok = False
                break
            for name, top, attr, path in used:
                taken_new[attr] = path
                if (attr, None) not in aliases:
                    aliases.append((attr, None))
                start, _ = _span(name, starts)
                _, end = _span(top, starts)
                attr_edits.append((start, end, attr))
        if not ok:
            continue
        lacking = dict(needed)
        if lacking:
            report.missing.update(lacking)
            if not add_missing:
                continue
        start, end = _span(node, starts)
        text = _import_text(door, sorted(aliases, key=_order), node.col_offset) if aliases else "pass"
        edits.append((start, end, text))
        edits.extend(attr_edits)
        report.changed.append(f"{rel}:{node.lineno}: from {module} import "
                              f"{', '.join(a.name for a in node.names)} -> {door}"
                              + (f" ({', '.join(n for n, _ in aliases)})" if attr_edits else ""))
    for start, end, text in sorted(edits, reverse=True):
        data = data[:start] + text.encode("utf-8") + data[end:]
    out = _merge_module_level(data.decode("utf-8"), rel)
    report.by_hand.extend(_shadowed(out, rel))
    return out, report


def _shadowed(source: str, rel: Path) -> list[str]:
    """A name imported from the front door at module level that the module then defines again (a def, a class)."""
    tree = ast.parse(source)
    imported = {(a.asname or a.name): n.lineno for n in tree.body
                if isinstance(n, ast.ImportFrom) and _through_front_door(n, rel) for a in n.names}
    return [f"{rel}:{n.lineno}: `{n.name}` is imported from the front door (line {imported[n.name]}) and defined "
            f"again here: import it under another name (`{n.name} as ...`)"
            for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and n.name in imported]


def _front_door_groups(tree: ast.Module, rel: Path) -> list[list[ast.ImportFrom]]:
    """Front-door imports to merge: all of the module level; each run of adjacent ones in a block."""
    def door(n: ast.AST) -> bool:
        return isinstance(n, ast.ImportFrom) and _through_front_door(n, rel)

    groups = [[n for n in tree.body if door(n)]]
    for node in ast.walk(tree):
        for name in ("body", "orelse", "finalbody"):
            block = getattr(node, name, None)
            if node is tree or not isinstance(block, list):
                continue
            run: list[ast.ImportFrom] = []
            for stmt in [*block, None]:
                if stmt is not None and door(stmt):
                    run.append(stmt)
                    continue
                groups.append(run)
                run = []
    return [g for g in groups if len(g) > 1]


def _merge_module_level(source: str, rel: Path) -> str:
    """Merge a file's module-level ``from <front door> import`` statements into the first one (and adjacent ones)."""
    tree = ast.parse(source)
    data = source.encode("utf-8")
    starts = _offsets(data)
    edits = []
    for nodes in _front_door_groups(tree, rel):
        edits.extend(_merge(nodes, rel, data, starts))
    for start, end, text in sorted(edits, reverse=True):
        data = data[:start] + text.encode("utf-8") + data[end:]
    return data.decode("utf-8")


def _merge(nodes: list[ast.ImportFrom], rel: Path, data: bytes, starts: list[int]) -> list[tuple[int, int, str]]:
    aliases: list[tuple[str, str | None]] = []
    for n in nodes:
        for a in n.names:
            if (a.name, a.asname) not in aliases:
                aliases.append((a.name, a.asname))
    edits = []
    first = nodes[0]
    edits.append((*_span(first, starts), _import_text(_front_door_for(rel), sorted(aliases, key=_order), first.col_offset)))
    for n in nodes[1:]:
        start, end = _span(n, starts)
        line_start, line_end = starts[n.lineno - 1], (starts[n.end_lineno] if n.end_lineno < len(starts) else len(data))
        rest = data[end:line_end].strip()
        if data[line_start:start].strip() == b"" and (not rest or rest.startswith(b"#")):
            start, end = line_start, line_end  # the whole line(s), with a trailing comment such as `# noqa`
        edits.append((start, end, ""))
    return edits


def target_files(root: Path = ROOT) -> list[Path]:
    """The Python files whose library imports go through the front door."""
    files: list[Path] = []
    for target in TARGETS:
        path = root / target
        files.extend([path] if path.is_file() else sorted(path.rglob("*.py")))
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if anything is pending")
    parser.add_argument("--add-missing", action="store_true", help="add the names api lacks to its group 'unsorted'")
    args = parser.parse_args(argv)
    exports = {n: spec for names in read_exports().values() for n, spec in names.items()}
    reports: list[Report] = []
    rewritten: dict[Path, str] = {}
    for path in target_files():
        rel = path.relative_to(ROOT)
        source = path.read_text(encoding="utf-8")
        new, report = rewrite_source(source, rel, exports, add_missing=args.add_missing)
        reports.append(report)
        if new != source:
            rewritten[path] = new
    missing = {n: m for r in reports for n, m in r.missing.items()}
    if args.add_missing and missing and not args.check:
        add_exports(missing)
        print(f"added to {API_FILE.relative_to(ROOT)} ({UNSORTED!r}): {', '.join(sorted(missing))}")
    if not args.check:
        for path, new in rewritten.items():
            ast.parse(new)  # never write a file that does not parse
            path.write_text(new, encoding="utf-8")
    verb = "would change" if args.check else "changed"
    for r in reports:
        for line in r.changed:
            print(f"{verb}: {line}")
    if rewritten and not any(r.changed for r in reports):
        for path in rewritten:
            print(f"{verb}: {path.relative_to(ROOT)}: merged its front-door imports")
    if missing and not args.add_missing:
        print(f"\n{API_FILE.relative_to(ROOT)} lacks {len(missing)} name(s); add them to a group of {EXPORTS_VARIABLE} "
              "(or re-run with --add-missing):")
        for name, module in sorted(missing.items()):
            print(f"        {name!r}: {module[len(PACKAGE) + 1:] if module != PACKAGE else ''!r},")
    by_hand = [line for r in reports for line in r.by_hand]
    if by_hand:
        print("\nrewrite by hand:")
        for line in by_hand:
            print(f"  {line}")
    if not rewritten and not missing and not by_hand:
        print("every library import of " + ", ".join(TARGETS) + " goes through the front door; nothing to do")
    pending = bool(by_hand) or (bool(missing) and not args.add_missing) or (args.check and bool(rewritten))
    return 1 if pending else 0


if __name__ == "__main__":
    sys.exit(main())
