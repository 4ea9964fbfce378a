"""The CLI installs alone: every third-party package its code reaches (through the core too) is
one that cli/pyproject.toml or the core's pyproject.toml declares, and none of the functions'.

A static walk of the imports from imagen_cli (function-level imports included, as import-linter
counts them; `if TYPE_CHECKING:` and `try: … except ImportError:` imports left out). The
import-linter contract "The CLI installs alone" forbids the functions' packages; `nox -s cli`
installs the CLI alone in a fresh venv and runs every command.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

from emulators.cli_session import functions_only

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"imagen": ROOT / "functions" / "imagen", "imagen_cli": ROOT / "cli" / "imagen_cli"}
FUNCTIONS_ONLY = set(functions_only())  # the contract's list (pyproject.toml)


def _file(module: str) -> Path | None:
    top, _, rest = module.partition(".")
    base = PACKAGES.get(top)
    if base is None:
        return None
    path = base.joinpath(*rest.split(".")) if rest else base
    if path.is_dir():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").exists() else None


def _guarded(node: ast.AST) -> bool:
    """An `if TYPE_CHECKING:` block, or a `try` that allows an ImportError."""
    if isinstance(node, ast.If):
        test = node.test
        return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        )
    if isinstance(node, ast.Try):
        names = [h.type for h in node.handlers]
        return any(isinstance(t, ast.Name) and t.id in ("ImportError", "ModuleNotFoundError") for t in names)
    return False


def _imports(module: str, path: Path) -> set[str]:
    """The modules one file imports (absolute names; `from pkg import name` as pkg.name when
    that is a module of ours, else pkg)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if _guarded(node):
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if _file(f"{base}.{alias.name}") else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return found


def reached_from_cli() -> tuple[set[str], set[str]]:
    """Our modules the CLI's code reaches, and the top-level third-party packages they import."""
    todo = [f"imagen_cli.{p.stem}" for p in PACKAGES["imagen_cli"].glob("*.py") if p.stem != "__init__"]
    ours: set[str] = set()
    external: set[str] = set()
    while todo:
        module = todo.pop()
        if module in ours:
            continue
        ours.add(module)
        parts = module.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # its packages run first
        path = _file(module)
        if path is None:
            continue
        for name in _imports(module, path):
            top = name.partition(".")[0]
            if top in PACKAGES:
                todo.append(name)
            elif top not in sys.stdlib_module_names:
                external.add(top)
    return ours, external


def _declared(pyproject: Path) -> set[str]:
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    return {_normal(re.match(r"[A-Za-z0-9._-]+", d).group()) for d in deps}  # type: ignore[union-attr]


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_cli_reaches_no_functions_package() -> None:
    ours, external = reached_from_cli()
    assert not external & FUNCTIONS_ONLY, f"the CLI's imports reach {sorted(external & FUNCTIONS_ONLY)}"
    assert not {m for m in ours if m.startswith(("imagen.image", "imagen.inference", "imagen.handlers"))}
    assert "imagen.flow.services" not in ours


def test_every_package_the_cli_imports_is_declared() -> None:
    """By cli/pyproject.toml or the core's (a namespace such as `google`: by one of its parts)."""
    declared = _declared(ROOT / "cli" / "pyproject.toml") | _declared(ROOT / "pyproject.toml")
    providers = importlib.metadata.packages_distributions()
    _, external = reached_from_cli()
    undeclared = {
        top: sorted(providers.get(top, ["(not installed here)"]))
        for top in external
        if not {_normal(d) for d in providers.get(top, [])} & declared
    }
    assert not undeclared, f"the CLI imports packages no pyproject.toml declares: {undeclared}"


def test_the_cli_declares_only_what_it_imports() -> None:
    providers = importlib.metadata.packages_distributions()
    _, external = reached_from_cli()
    provided = {_normal(d) for top in external for d in providers.get(top, [])}
    unused = _declared(ROOT / "cli" / "pyproject.toml") - provided - {"imagen"}
    assert not unused, f"cli/pyproject.toml declares packages the CLI never imports: {sorted(unused)}"


def test_the_walk_sees_function_level_imports() -> None:
    """The walk itself: app.py imports google.auth inside a method, and the core's logs."""
    ours, external = reached_from_cli()
    assert {"google", "rich", "opentelemetry"} <= external
    assert {"imagen.core.logs", "imagen.flow.intake", "imagen.cloud.objects"} <= ours
