"""The deployed function source holds only what the functions import (and their requirements)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from .hcl import TERRAFORM, load, one

FUNCTIONS = TERRAFORM.parent / "functions"


def archived_files() -> set[str]:
    """What archive_file zips: functions/ without the excluded paths (a path or any part of it)."""
    archive = load(TERRAFORM / "modules" / "functions").named("data")["archive_file"]["source"]
    excludes = list(one(archive["excludes"]))
    out = set()
    for path in FUNCTIONS.rglob("*"):
        rel = path.relative_to(FUNCTIONS).as_posix()
        if path.is_file() and not any(_glob(pattern, rel) for pattern in excludes):
            out.add(rel)
    return out


def _glob(pattern: str, path: str) -> bool:
    """archive_file's exclude match: a glob over the whole relative path, `**` across folders."""
    parts = [re.escape(p).replace(r"\*", "[^/]*") for p in pattern.split("**")]
    regex = "(?:.*)".join(parts).replace("(?:.*)/", "(?:.*/)?")
    return re.fullmatch(regex, path) is not None


def test_the_exclude_globs_match_as_archive_file_does() -> None:
    assert _glob("**/__pycache__/**", "imagen/core/__pycache__/local.cpython-311.pyc")
    assert _glob("**/__pycache__/**", "__pycache__/main.cpython-311.pyc")
    assert not _glob("**/__pycache__/**", "imagen/core/local.py")
    assert _glob("imagen/core/local.py", "imagen/core/local.py")
    assert not _glob("__pycache__", "imagen/__pycache__/x.pyc")  # a bare name matches no deeper path


def imported_modules(entry: Path) -> set[str]:
    """Source files of the `imagen` package reached from `entry` by its imports, transitively."""
    seen: set[str] = set()
    todo = [entry]
    while todo:
        tree = ast.parse(todo.pop().read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom):
                base = "imagen" if node.level else (node.module or "")
                mod = f"{base}.{node.module}" if node.level and node.module else base
                names = [mod] + [f"{mod}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                rel = Path(*name.split(".")).with_suffix(".py")
                if name.startswith("imagen") and (FUNCTIONS / rel).is_file() and str(rel) not in seen:
                    seen.add(str(rel))
                    seen.update(str(p / "__init__.py") for p in rel.parents if p.parts)
                    todo.append(FUNCTIONS / rel)
    return seen


def test_archive_is_the_entry_module_what_it_imports_and_the_requirements() -> None:
    wanted = {"main.py", "requirements.txt", "imagen/__init__.py"} | imported_modules(FUNCTIONS / "main.py")
    # requirements.in, the lock's source, may ride along: the build reads only requirements.txt.
    assert archived_files() - {"requirements.in"} == wanted


def test_archive_requirements_are_the_hashed_lock() -> None:
    """Cloud Functions' build installs requirements.txt: the whole tree, each entry pinned and
    hashed (functions/requirements.in → `nox -s lock`; tests/unit/test_lock.py checks it is current)."""
    assert "requirements.txt" in archived_files()
    text = (FUNCTIONS / "requirements.txt").read_text()
    entries = re.split(r"^(?=[A-Za-z0-9])", text, flags=re.M)[1:]
    names = {e.split("==")[0].lower() for e in entries}
    assert {"functions-framework", "flask", "werkzeug", "protobuf"} <= names  # direct and transitive
    pinned = re.compile(r"[\w.-]+==\S+ \\\n")  # `name==version \`, then its hashes
    unhashed = [e.split()[0] for e in entries if not pinned.match(e) or "--hash=sha256:" not in e]
    assert not unhashed, f"not pinned with == and a hash: {unhashed}"
    assert not re.search(r"^-", text, re.M), "no options, -r or -e lines: the archive holds the lock alone"
