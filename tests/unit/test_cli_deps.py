"""The CLI installs alone: every third-party package its code reaches (through the core too) is
one that cli/pyproject.toml or the core's pyproject.toml declares, and none of the functions'.
The console (imagen_cli.console) is the `console` extra's: its imports are declared there.

A static walk of the imports from imagen_cli (function-level imports included, as import-linter
counts them; `if TYPE_CHECKING:` and `try: … except ImportError:` imports left out). The
import-linter contract "The CLI installs alone" forbids the functions' packages; `nox -s cli`
installs the CLI alone in a fresh venv and runs every command.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from emulators.cli_session import functions_only

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"imagen": ROOT / "functions" / "imagen", "imagen_cli": ROOT / "cli" / "imagen_cli"}
FUNCTIONS_ONLY = set(functions_only())  # the contract's list (pyproject.toml)
CONSOLE = "imagen_cli.console"  # installed with the extra: pip install ./cli[console]
CONSOLE_MAY = {"pyvips"}  # the console's previews (its own import-linter contract allows it)


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


def reached_from_cli(console: bool = False) -> tuple[set[str], set[str]]:
    """Our modules the CLI's code reaches, and the top-level third-party packages they import:
    the plain CLI's (the walk stops at the console), or the console's."""
    if console:
        todo = [f"{CONSOLE}.{p.stem}" for p in (PACKAGES["imagen_cli"] / "console").glob("*.py")]
    else:
        todo = [f"imagen_cli.{p.stem}" for p in PACKAGES["imagen_cli"].glob("*.py") if p.stem != "__init__"]
    ours: set[str] = set()
    external: set[str] = set()
    while todo:
        module = todo.pop()
        if module in ours or (not console and module.startswith(CONSOLE)):
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


def _declared(pyproject: Path, extra: str = "") -> set[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    deps = project["optional-dependencies"][extra] if extra else project["dependencies"]
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


def test_the_console_declares_its_imports_in_its_extra() -> None:
    """What imagen_cli.console imports beyond the plain CLI is the `console` extra's, and the
    extra declares nothing it does not import; no function runtime but its image library."""
    ours, external = reached_from_cli(console=True)
    assert not external & (FUNCTIONS_ONLY - CONSOLE_MAY), sorted(external & FUNCTIONS_ONLY)
    assert not {m for m in ours if m.startswith(("imagen.image", "imagen.inference", "imagen.handlers"))}
    extra = _declared(ROOT / "cli" / "pyproject.toml", "console")
    declared = extra | _declared(ROOT / "cli" / "pyproject.toml") | _declared(ROOT / "pyproject.toml")
    providers = importlib.metadata.packages_distributions()
    undeclared = {
        top: sorted(providers.get(top, ["(not installed here)"]))
        for top in external
        if not {_normal(d) for d in providers.get(top, [])} & declared
    }
    assert not undeclared, f"the console imports packages its extra does not declare: {undeclared}"
    provided = {_normal(d) for top in external for d in providers.get(top, [])}
    assert not extra - provided, (
        f"the console extra declares what the console never imports: {extra - provided}"
    )
    assert {"starlette", "uvicorn", "pyvips"} <= external


def test_the_plain_cli_loads_without_the_console() -> None:
    """`imagen` (any command but console) imports none of the extra's packages: the console is
    imported by its command alone, so the CLI runs where the extra is not installed."""
    extra = "('starlette', 'uvicorn', 'pyvips')"
    probe = f"import sys, imagen_cli.app; print(' '.join(m for m in {extra} if m in sys.modules))"
    run = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": f"{ROOT / 'cli'}:{ROOT / 'functions'}"},
    )
    assert run.stdout.split() == []
