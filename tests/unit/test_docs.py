"""The docs say what the code does: generated tables are fresh, and every key, variable, session
and link they must carry is there."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tools import docgen

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
NARROW = [
    README,
    ROOT / "docs" / "using.md",
    ROOT / "docs" / "operating.md",
    ROOT / "docs" / "contributing.md",
]
MAX_README_LINES = 170
MAX_LINE = 110

KEY = re.compile(r"^imagen-[a-z0-9-]+$")
# String literals of that shape that are names, not metadata keys.
NOT_KEYS = {
    "imagen-local": "the local stack's project and bucket (functions/imagen/core/local.py)",
    "imagen-results": "the CLI's download folder for `submit --wait`",
}


def _text(paths: list[Path]) -> str:
    return "\n".join(p.read_text() for p in paths)


# -- generated tables -------------------------------------------------------------------------
def test_configuration_table_is_fresh() -> None:
    page = docgen.CONFIGURATION_MD.read_text()
    assert docgen.block(page, "config").strip() == docgen.config_table().strip(), (
        "docs/configuration.md is stale: run `python3 -m nox -s docs`"
    )


@pytest.mark.parametrize(
    ("name", "make"), [("terraform-inputs", docgen.inputs_table), ("terraform-outputs", docgen.outputs_table)]
)
def test_terraform_tables_are_fresh(name: str, make: object) -> None:
    page = docgen.TERRAFORM_MD.read_text()
    assert callable(make)
    assert docgen.block(page, name).strip() == make().strip(), (
        "terraform/README.md is stale: run `python3 -m nox -s docs`"
    )


CONFIG = """
from dataclasses import dataclass


@dataclass(frozen=True)
class Config:
    names: Resources
    knob: int = 3  # a documented knob
    new_knob: int = 4

    @classmethod
    def from_env(cls, env):
        project = env.get("GOOGLE_CLOUD_PROJECT") or ""
        return cls(
            names=Resources.from_env(env, project),
            knob=_int(env, "KNOB", cls.knob, 1),
            new_knob=_int(env, "NEW_KNOB", cls.new_knob, 0),
        )
"""


def test_generator_reads_settings_and_refuses_an_undescribed_one(tmp_path: Path) -> None:
    config = tmp_path / "config.py"
    config.write_text(CONFIG)
    with pytest.raises(LookupError, match="NEW_KNOB"):
        docgen.config_settings(config)
    config.write_text(CONFIG.replace("new_knob: int = 4", "new_knob: int = 4  # a new knob"))
    settings = {s.env: s for s in docgen.config_settings(config)}
    assert {"GOOGLE_CLOUD_PROJECT", "TOPIC_PREFIX", "KNOB", "NEW_KNOB"} <= set(settings)
    knob = settings["KNOB"]
    assert (knob.field, knob.type, knob.default, knob.description) == (
        "knob",
        "int (≥ 1)",
        "`3`",
        "a documented knob",
    )


def test_replace_rewrites_only_its_block() -> None:
    page = "a\n<!-- generated:x -->\nold\n<!-- /generated:x -->\nb\n"
    assert docgen.replace(page, "x", "new") == "a\n<!-- generated:x -->\nnew\n<!-- /generated:x -->\nb\n"
    with pytest.raises(LookupError):
        docgen.replace(page, "y", "new")


# -- what the docs must carry -----------------------------------------------------------------
def metadata_keys() -> set[str]:
    """Every `imagen-*` string literal in the core and the CLI that is a metadata key, and the
    option keys the options module builds from its prefix."""
    found: set[str] = set()
    for folder in (ROOT / "functions" / "imagen", ROOT / "cli"):
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and KEY.match(node.value):
                    found.add(node.value)
    from imagen.core import options  # keys written as prefix + name
    from imagen.core.models import MODELS

    found |= {key for model in MODELS for key in options.allowed(model)}
    found |= options.NOT_OPTIONS
    return found - set(NOT_KEYS)


def test_every_metadata_key_is_documented() -> None:
    keys = metadata_keys()
    assert {"imagen-format", "imagen-result", "imagen-crop-margin", "imagen-run"} <= keys
    text = _text([README, *DOCS])
    missing = sorted(k for k in keys if f"`{k}`" not in text)
    assert not missing, f"metadata keys not in README.md or docs/*.md: {missing}"


def test_every_environment_variable_is_documented() -> None:
    names = [s.env for s in docgen.config_settings()]
    assert {"GOOGLE_CLOUD_PROJECT", "TOPIC_PREFIX", "MODEL_NAME", "TILE_SECONDS", "BUCKET"} <= set(names)
    page = docgen.CONFIGURATION_MD.read_text()
    missing = [n for n in names if f"`{n}`" not in page]
    assert not missing, f"environment variables not in docs/configuration.md: {missing}"


def nox_sessions() -> list[str]:
    tree = ast.parse((ROOT / "noxfile.py").read_text())
    out = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and any(
            ast.unparse(d).split("(")[0] in ("nox.session", "session") for d in node.decorator_list
        ):
            out.append(node.name)
    return out


def test_every_nox_session_is_documented() -> None:
    sessions = nox_sessions()
    assert {"demo", "tests", "lint", "tf", "docs"} <= set(sessions)
    text = _text([README, *DOCS])
    missing = [s for s in sessions if not re.search(rf"nox -s (?:[\w-]+ )*{re.escape(s)}\b", text)]
    assert not missing, f"nox sessions not named as `nox -s NAME` in README.md or docs/*.md: {missing}"


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def test_relative_links_point_to_files() -> None:
    broken = []
    for page in [README, *DOCS]:
        for target in LINK.findall(page.read_text()):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue
            path = (page.parent / target.split("#", 1)[0]).resolve()
            if not path.exists():
                broken.append(f"{page.relative_to(ROOT)} → {target}")
    assert not broken, f"links to missing files: {broken}"


def test_readme_is_a_front_page() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines, at most {MAX_README_LINES}"
    for page in NARROW:
        assert page.exists(), page
        long = [
            f"{page.relative_to(ROOT)}:{n}"
            for n, line in enumerate(page.read_text().splitlines(), 1)
            if len(line) > MAX_LINE and not line.startswith("|")
        ]
        assert not long, f"lines over {MAX_LINE} characters: {long}"


def test_readme_links_every_docs_page() -> None:
    text = README.read_text()
    pages = ["docs/using.md", "docs/operating.md", "docs/models.md", "docs/configuration.md"]
    pages += ["docs/contributing.md", "terraform/README.md"]
    missing = [p for p in pages if f"]({p})" not in text]
    assert not missing, f"README.md does not link {missing}"
