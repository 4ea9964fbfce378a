"""One source per fact: figures the code keeps in one table are not written again elsewhere.

The model table (imagen.core.models) holds the tile sizes, margins, palette, per-request batch and
the upscale variants; the format table (imagen.core.formats) the default qualities; measured
figures live in the generated docs (docs/*.md). Other modules import them, Triton's configs are
checked against them (tests/unit/test_model_configs.py), and comments point to them rather than
restate them. These tests read the sources and fail on a restated figure."""

from __future__ import annotations

import ast
import inspect
import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagen.core.formats import DEFAULT_QUALITY
from imagen.core.models import DEFAULT_VARIANT, MODELS, TRITON_MODELS, VARIANT_NOTES, VARIANTS, ModelSpec
from imagen.image import encoding, tiling
from modelbuild import configs

ROOT = Path(__file__).resolve().parents[2]
MODELS_PY = ROOT / "functions" / "imagen" / "core" / "models.py"
FORMATS_PY = ROOT / "functions" / "imagen" / "core" / "formats.py"
RECIPES_PY = ROOT / "triton" / "modelbuild" / "recipes.py"
# Where the pipeline's code lives (tests are left out: they may spell a value to check it).
CODE = [ROOT / p for p in ("functions", "triton", "cli", "emulators", "bench")] + [ROOT / "noxfile.py"]


def python_files(*roots: Path) -> Iterator[Path]:
    for root in roots:
        if root.is_file():
            yield root
        else:
            yield from (p for p in sorted(root.rglob("*.py")) if ".nox" not in p.parts)


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def constants(tree: ast.AST) -> Iterator[ast.Constant]:
    yield from (n for n in ast.walk(tree) if isinstance(n, ast.Constant))


def comments(path: Path) -> Iterator[tuple[int, str]]:
    """A Python file's comments (a run of comment lines as one text) and its strings (docstrings
    included), each with its first line."""
    block: list[str] = []
    start = last = 0
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if tok.type == tokenize.COMMENT:
            if block and tok.start[0] == last + 1:
                block.append(tok.string.lstrip("# "))
            else:
                if block:
                    yield start, " ".join(block)
                block, start = [tok.string.lstrip("# ")], tok.start[0]
            last = tok.start[0]
        elif tok.type == tokenize.STRING:
            yield tok.start[0], tok.string
    if block:
        yield start, " ".join(block)


# --- the Triton configs ---------------------------------------------------------------------------

# A number standing alone (not inside a name such as T4, u2netp or the version folder 1/).
NUMBER = re.compile(r"(?<![\w/.²-])\d+(?:[.,]\d+)?(?![\w/])")


@pytest.mark.parametrize("which", sorted(configs.CONFIGS))
@pytest.mark.parametrize("model", sorted(TRITON_MODELS))
def test_config_comments_restate_no_figure(model: str, which: str) -> None:
    """A config's comments explain; its figures are the fields below them or the model table,
    Config and the planning figures they name (each checked by test_model_configs.py)."""
    path = configs.REPOSITORY / model / configs.CONFIGS[which]
    restated = [
        f"{relative(path)}:{n}: {line.strip()}"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if "#" in line and NUMBER.search(line.partition("#")[2])
    ]
    assert not restated, "\n".join(restated)


# --- tile sizes, scales, palette: recipes.py takes them from the model table ----------------------


def model_table_numbers() -> set[int]:
    out: set[int] = set()
    for spec in TRITON_MODELS.values():
        out |= {spec.size, spec.size * spec.scale}
        if spec.palette:
            out |= {spec.palette, spec.palette * 3}
    return out


def test_recipes_write_no_number_of_the_model_table() -> None:
    """recipes.py imports the tile sizes, the scales and the palette from imagen.core.models:
    none of their values is a literal there, in code, strings or comments."""
    numbers = model_table_numbers()
    assert numbers >= {128, 192, 320, 12}  # what this test looks for, as the table says today
    tree = ast.parse(RECIPES_PY.read_text())
    found = [
        f"line {c.lineno}: {c.value!r}"
        for c in constants(tree)
        if type(c.value) is int and c.value in numbers
    ]
    pattern = re.compile(rf"(?<![\w.])(?:{'|'.join(map(str, sorted(numbers)))})(?![\w.])")
    found += [f"line {n}: {text.strip()[:80]}" for n, text in comments(RECIPES_PY) if pattern.search(text)]
    assert not found, "recipes.py restates the model table:\n" + "\n".join(found)


def test_every_recipe_takes_the_shapes_the_worker_sends() -> None:
    from onnx import TensorProto

    from modelbuild import recipes

    types: dict[int, str] = {TensorProto.UINT8: "TYPE_UINT8", TensorProto.FLOAT: "TYPE_FP32"}
    for weights in recipes.UPSCALE_WEIGHTS:
        for name, recipe in recipes.recipes(weights).items():
            declared = {n: (types[t], list(dims[1:])) for n, t, dims in recipe.inputs}
            assert declared == configs.expected(TRITON_MODELS[name])[0], name


def test_the_tile_overlap_is_the_tilers() -> None:
    """ModelSpec.overlap repeats tiling.overlap_for (models imports nothing): the same numbers."""
    for margin in {0, 1, *(s.margin for s in TRITON_MODELS.values())}:
        assert ModelSpec("m", "tiled", 64, margin=margin).overlap == tiling.overlap_for(margin)


# --- upscale's variants ---------------------------------------------------------------------------


def test_variant_names_are_written_once() -> None:
    """Only imagen.core.models spells a variant's name; the rest import it (FIDELITY, PERCEPTUAL,
    VARIANTS, DEFAULT_VARIANT), so a renamed or added variant cannot leave a stale list behind."""
    names = {v for choices in VARIANTS.values() for v in choices}
    assert names >= {"fidelity", "perceptual"}
    assert set(VARIANT_NOTES) == names and all(DEFAULT_VARIANT[m] in VARIANTS[m] for m in VARIANTS)
    option = re.compile(rf"imagen-upscale=(?:{'|'.join(map(re.escape, names))})\b")
    found = []
    for path in python_files(*CODE):
        if path == MODELS_PY:
            continue
        for c in constants(ast.parse(path.read_text())):
            if isinstance(c.value, str) and (c.value in names or option.search(c.value)):
                found.append(f"{relative(path)}:{c.lineno}: {c.value!r}")
    assert not found, "variant names spelled outside imagen.core.models:\n" + "\n".join(found)


# --- default qualities ----------------------------------------------------------------------------


def test_default_qualities_are_written_once() -> None:
    """formats.DEFAULT_QUALITY is the one table: no other module of the pipeline assigns a
    literal quality, takes one as a default, or states one in a comment or docstring."""
    assert inspect.signature(encoding.open_encoder).parameters["quality"].default == DEFAULT_QUALITY["JPEG"]
    stated = re.compile(rf"quality\W{{1,3}}(?:{'|'.join(map(str, set(DEFAULT_QUALITY.values())))})\b", re.I)
    found = []
    for path in python_files(ROOT / "functions", ROOT / "cli"):
        if path == FORMATS_PY:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            pairs: list[tuple[str, ast.expr | None]] = []
            if isinstance(node, ast.Assign):
                pairs = [(t.id, node.value) for t in node.targets if isinstance(t, ast.Name)]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                pairs = [(node.target.id, node.value)]
            elif isinstance(node, ast.arguments):
                positional = node.posonlyargs + node.args
                with_default = positional[len(positional) - len(node.defaults) :]
                pairs = list(zip([a.arg for a in with_default], node.defaults, strict=True))
                pairs += [(a.arg, d) for a, d in zip(node.kwonlyargs, node.kw_defaults, strict=True)]
            for name, value in pairs:
                if "quality" in name.lower() and isinstance(value, ast.Constant) and type(value.value) is int:
                    found.append(f"{relative(path)}:{value.lineno}: {name} = {value.value}")
        found += [f"{relative(path)}:{n}: {t.strip()[:80]}" for n, t in comments(path) if stated.search(t)]
    assert not found, "a default quality restated outside formats.py:\n" + "\n".join(found)


# --- how many models --------------------------------------------------------------------------------

COUNT = re.compile(
    r"\b(?:two|three|four|five|six|seven|eight|\d+)\s+(?:\w+\s+){0,2}models\b|(?:\b|\\n)all\s+(?:five|six)\b",
    re.I,
)


def test_no_count_of_the_models_is_written() -> None:
    """Six Triton models serve five model prefixes today; text that says "every model" (or counts
    TRITON_MODELS or MODELS when it prints) stays true when one is added."""
    assert len(TRITON_MODELS) != len(MODELS)  # the reason a written count drifts
    files = [*python_files(*CODE), ROOT / "triton" / "Dockerfile"]
    files += sorted(configs.REPOSITORY.glob("*/config.pbtxt")) + sorted(
        configs.REPOSITORY.glob("*/configs/*")
    )
    found = [
        f"{relative(path)}:{n}: {line.strip()}"
        for path in files
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if COUNT.search(line)
    ]
    assert not found, "\n".join(found)


# --- measured figures -------------------------------------------------------------------------------

# A quality measurement in decibels, or a receptive field given as measured ("(37 measured)").
MEASURED = re.compile(r"(?<![\w.+-])[+-]?\d+(?:\.\d+)?\s*dB\b|\(\d+(?:\.\d+)?(?:\s*px)?\s+measured\)")


def test_comments_point_to_the_generated_docs_for_measured_figures() -> None:
    """PSNR gains and receptive fields are measured by `nox -s quality` and the model build and
    written to docs/quality.md and BUILD.json; a comment that copies one drifts from them."""
    found = [
        f"{relative(path)}:{n}: {text.strip()[:100]}"
        for path in python_files(ROOT / "functions", ROOT / "triton")
        for n, text in comments(path)
        if MEASURED.search(text)
    ]
    assert not found, "\n".join(found)


# --- the production image -----------------------------------------------------------------------------


def test_the_triton_image_copies_what_modelbuild_imports() -> None:
    """triton/Dockerfile builds the models in the image: every file it copies exists, and every
    imagen module the build imports (the model table) is among them."""
    text = (ROOT / "triton" / "Dockerfile").read_text()
    copied: set[str] = set()
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--") for w in words):
            for src in words[1:-1]:
                assert (ROOT / src).exists(), f"triton/Dockerfile copies {src}, which does not exist"
                copied.add(src)
    for path in python_files(ROOT / "triton" / "modelbuild"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "imagen":
                module = "functions/" + node.module.replace(".", "/") + ".py"
                parts = module.split("/")
                packages = {"/".join(parts[:i]) + "/__init__.py" for i in range(2, len(parts))}
                missing = {module, *packages} - copied
                assert not missing, f"{relative(path)} imports {node.module}; the image lacks {missing}"
