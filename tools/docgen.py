"""The generated tables of the docs, rendered from the code and rewritten in place.

    python -m tools.docgen            rewrite every generated block (`nox -s docs`)
    python -m tools.docgen --check    exit 1, naming the blocks, where a page is out of date

A generated block sits between `<!-- generated:NAME -->` and `<!-- /generated:NAME -->`:

- `config` in docs/configuration.md: one row per environment variable `Config.from_env` reads
  (functions/imagen/core/config.py, and `Resources.from_env` in core/names.py for the names),
  with the field it sets, its type, default and the field's own comment. Read with `ast`, so
  nothing is imported and the functions' dependencies are not needed.
- `terraform-inputs` and `terraform-outputs` in terraform/README.md: the root module's
  variables.tf and outputs.tf, parsed with python-hcl2.
"""

from __future__ import annotations

import argparse
import ast
import io
import re
import sys
import tokenize
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONFIG_PY = ROOT / "functions" / "imagen" / "core" / "config.py"
NAMES_PY = ROOT / "functions" / "imagen" / "core" / "names.py"
TERRAFORM = ROOT / "terraform"
CONFIGURATION_MD = ROOT / "docs" / "configuration.md"
TERRAFORM_MD = TERRAFORM / "README.md"

# What a setting means, put before the comment on its field's own lines; with neither, the comment
# block right above the field (which may speak for a group) is used. A setting with none of the
# three is an error: a new one is documented where it is added, in a comment on its line, or here.
NOTES = {
    "GOOGLE_CLOUD_PROJECT": "project of Firestore and Pub/Sub; every name is derived in it",
    "GCLOUD_PROJECT": "read when GOOGLE_CLOUD_PROJECT is not set",
    "TOPIC_PREFIX": "prefix of every topic and subscription: `<prefix><model>`, `<prefix><model>-worker`, "
    "`<prefix>dead-letter`, `<prefix>events`, `<prefix>reconcile`",
    "JOBS_COLLECTION": "Firestore collection of the job documents",
    "RESULT_PREFIX": "folder the results are written under (`<prefix><model>/…`); nothing under it "
    "starts a job; must end in `/`",
    "TRITON_URL": "Triton's HTTP address, `host:port` (a leading `http://` is dropped)",
    "MAX_INPUT_BYTES": "largest upload, in bytes; a gzip-encoded upload stops inflating here",
    "MAX_INPUT_PIXELS": "largest upload in pixels, checked from the header before any decoding",
    "WORKER_CONCURRENCY": "jobs one `on_job` instance runs at once (Terraform `worker_concurrency`)",
    "JOB_LEASE_S": "how long a claim holds unless renewed",
    "TRITON_TIMEOUT_S": "seconds one Triton request may take",
    "TILE_BATCH": "tiles per Triton request (a model may take fewer)",
    "TILE_CONCURRENCY": "Triton requests in flight per job",
    "FUNCTION_TIMEOUT_S": "the `on_job` function's timeout (Terraform `worker_timeout_seconds`)",
    "JOB_TIME_LIMIT_S": "the longest time plan a job may have; must leave `TRITON_TIMEOUT_S` + 30 s "
    "inside `FUNCTION_TIMEOUT_S` (Terraform `job_time_limit_seconds`)",
    "TILE_SECONDS": "`model=seconds,…`: seconds a tile takes per Triton model on the deployment's "
    "accelerator; models left out keep the T4 figures of `core/models.py` (Terraform `tile_seconds`)",
    "TRITON_PROBE_S": "how often a worker that found Triton down probes it "
    "(Terraform `triton_probe_seconds`)",
    "WAIT_HORIZON_S": "how long a job may wait for a service before it fails, inside Pub/Sub's 7-day "
    "retention (Terraform `wait_horizon_seconds`)",
    "IMAGEN_BUCKET": "read when BUCKET is not set (the CLI's and the local stack's name)",
    "UPSCALE_DEFAULT": "upscale's character, `fidelity` or `perceptual` (Terraform `upscale_default`), used",
    "EVENTS_TOPIC": "topic of the job events (`imagen.job.v1.*`)",
    "OTEL_ENABLED": "`1`, `true` or `yes`: one trace per job, exported over OTLP/HTTP",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "the OTLP/HTTP collector the traces go to",
}


# -- Config -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Setting:
    """One environment variable Config reads."""

    env: str
    field: str
    type: str  # the annotation, and the least value Config accepts where it checks one
    default: str  # Markdown: the default as written in `code`, or required / unset
    description: str


@dataclass(frozen=True)
class _Field:
    type: str
    default: str | None
    comment: str  # on the field's own lines
    above: str = ""  # the comment block right above it (it may speak for a group of fields)


def _comments(source: str) -> dict[int, str]:
    """Line number → the comment on it."""
    out: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            out[tok.start[0]] = tok.string.lstrip("#").strip()
    return out


def _class(tree: ast.Module, name: str) -> ast.ClassDef:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return node
    raise LookupError(f"no class {name}")


def _method(cls: ast.ClassDef, name: str) -> ast.FunctionDef:
    for node in cls.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    raise LookupError(f"no method {cls.name}.{name}")


def _fields(source: str, cls: ast.ClassDef) -> dict[str, _Field]:
    """A dataclass's fields: annotation, default (as written) and the comment on its lines."""
    comments = _comments(source)
    lines = [""] + source.splitlines()  # 1-based
    out: dict[str, _Field] = {}
    for node in cls.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        default: str | None = None
        if node.value is not None:
            value = node.value
            if (
                isinstance(value, ast.Call)
                and getattr(value.func, "id", "") == "field"
                and value.keywords
                and value.keywords[0].arg == "default_factory"
                and isinstance(value.keywords[0].value, ast.Lambda)
            ):
                value = value.keywords[0].value.body
            default = ast.get_source_segment(source, value) or ""
        end = node.end_lineno or node.lineno
        comment = " ".join(comments[n] for n in range(node.lineno, end + 1) if n in comments)
        first = node.lineno
        while first - 1 in comments and lines[first - 1].lstrip().startswith("#"):
            first -= 1
        above = " ".join(comments[n] for n in range(first, node.lineno))
        annotation = ast.get_source_segment(source, node.annotation) or ""
        out[node.target.id] = _Field(annotation, default, comment, above)
    return out


def _env_reads(expr: ast.AST, helpers: dict[str, ast.FunctionDef]) -> Iterator[tuple[str, str | None, str]]:
    """(variable, its default as written or None, minimum as written or "") for every read of
    the environment in `expr`: env.get("X", d), _int(env, "X", d, minimum), or a helper that
    takes `env` and reads it itself (_tile_seconds)."""
    for node in ast.walk(expr):
        if not isinstance(node, ast.Call):
            continue
        func, args = node.func, node.args
        if isinstance(func, ast.Attribute) and func.attr == "get" and getattr(func.value, "id", "") == "env":
            if args and isinstance(args[0], ast.Constant) and isinstance(args[0].value, str):
                default = _python(args[1]) if len(args) > 1 else None
                yield args[0].value, default, ""
        elif isinstance(func, ast.Name) and func.id == "_int":
            if len(args) > 1 and isinstance(args[1], ast.Constant):
                yield str(args[1].value), None, ast.unparse(args[3]) if len(args) > 3 else ""
        elif isinstance(func, ast.Name) and func.id in helpers:
            for inner in helpers[func.id].body:
                yield from _env_reads(inner, {})


def _python(node: ast.expr) -> str:
    """An expression as written, strings in double quotes as the dataclass writes them."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return '"' + node.value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return ast.unparse(node)


def _type(annotation: str, minimum: str) -> str:
    return f"{annotation} (≥ {minimum})" if minimum else annotation


def _default(written: str | None, annotation: str, env_default: str | None) -> str:
    """The default as written in `code`, or "required" / "unset" where there is none."""
    if written is not None:
        return _code(written)
    if env_default not in (None, '""'):
        return _code(env_default)
    return "unset" if "None" in annotation else "required"


def config_settings(config_py: Path = CONFIG_PY, names_py: Path = NAMES_PY) -> list[Setting]:
    """Every environment variable Config.from_env reads, in the order it reads them."""
    source = config_py.read_text()
    tree = ast.parse(source)
    cls = _class(tree, "Config")
    fields = _fields(source, cls)
    from_env = _method(cls, "from_env")
    helpers = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name != "_int"}
    # locals of from_env (project = env.get(...) or ..., model = ...), read through
    assigned = {
        t.id: n.value
        for n in ast.walk(from_env)
        if isinstance(n, ast.Assign)
        for t in n.targets
        if isinstance(t, ast.Name)
    }
    names_source = names_py.read_text()
    resources = _class(ast.parse(names_source), "Resources")
    resource_fields = _fields(names_source, resources)
    call = next(
        n
        for n in ast.walk(from_env)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "cls"
    )
    out: list[Setting] = []
    seen: set[str] = set()

    def add(env: str, field: str, f: _Field, env_default: str | None, minimum: str) -> None:
        if env in seen:
            return
        seen.add(env)
        note = NOTES.get(env, "")
        if note.startswith("read when"):  # a fallback's own row
            description = note
        else:
            description = "; ".join(filter(None, (note, f.comment))) or f.above
        if not description:
            raise LookupError(f"{env} ({field}) has no comment in the code and no note in tools/docgen.py")
        default = _default(f.default, f.type, env_default)
        out.append(Setting(env, field, _type(f.type, minimum), default, description))

    for keyword in call.keywords:
        name = keyword.arg or ""
        value = keyword.value
        if isinstance(value, ast.Call) and ast.unparse(value.func) == "Resources.from_env":
            for nested in (assigned.get("project"),):  # the project, read before the names
                for env, env_default, minimum in _env_reads(nested or ast.Constant(""), helpers):
                    add(env, "names.project", resource_fields["project"], env_default, minimum)
            resources_from_env = _method(resources, "from_env")
            inner = next(n for n in ast.walk(resources_from_env) if isinstance(n, ast.Call))
            for kw in inner.keywords:
                for env, env_default, minimum in _env_reads(kw.value, {}):
                    add(env, f"names.{kw.arg}", resource_fields[kw.arg or ""], env_default, minimum)
            continue
        exprs = [value]
        exprs += [assigned[n.id] for n in ast.walk(value) if isinstance(n, ast.Name) and n.id in assigned]
        for expr in exprs:
            for env, env_default, minimum in _env_reads(expr, helpers):
                add(env, name, fields[name], env_default, minimum)
    return out


def _cell(text: Any) -> str:
    """Text for a table cell: pipes escaped, and angle brackets outside `code` (not HTML)."""
    parts = str(text).replace("|", "\\|").replace("\n", " ").split("`")
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts)


def _code(text: Any) -> str:
    return "`" + str(text).replace("|", "\\|") + "`" if str(text) else ""


def config_table(config_py: Path = CONFIG_PY, names_py: Path = NAMES_PY) -> str:
    rows = ["| variable | field | type | default | description |", "|---|---|---|---|---|"]
    for s in config_settings(config_py, names_py):
        rows.append(f"| `{s.env}` | `{s.field}` | {_code(s.type)} | {s.default} | {_cell(s.description)} |")
    return "\n".join(rows)


# -- Terraform --------------------------------------------------------------------------------
def _load_tf(path: Path) -> dict[str, Any]:
    import hcl2  # python-hcl2, in requirements-test.txt

    options = hcl2.SerializationOptions(strip_string_quotes=True, with_comments=False, explicit_blocks=False)
    with path.open() as fh:
        loaded: dict[str, Any] = hcl2.load(fh, serialization_options=options)
    return loaded


def _blocks(path: Path, kind: str) -> list[tuple[str, dict[str, Any]]]:
    return [(name, body) for block in _load_tf(path).get(kind, []) for name, body in block.items()]


def _expr(value: Any) -> str:
    """A parsed HCL value written back as HCL."""
    if isinstance(value, str):
        m = re.fullmatch(r"\$\{(.*)\}", value, re.S)
        return m.group(1) if m else '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_expr(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{}" if not value else "{ " + ", ".join(f"{k} = {_expr(v)}" for k, v in value.items()) + " }"
    return str(value)


def inputs_table(variables_tf: Path = TERRAFORM / "variables.tf") -> str:
    rows = ["| name | type | default | description |", "|---|---|---|---|"]
    for name, body in _blocks(variables_tf, "variable"):
        default = _code(_expr(body["default"])) if "default" in body else "required"
        kind = _code(re.sub(r"^\$\{(.*)\}$", r"\1", str(body["type"]), flags=re.S)) if "type" in body else ""
        rows.append(f"| `{name}` | {kind} | {default} | {_cell(body.get('description', ''))} |")
    return "\n".join(rows)


def outputs_table(outputs_tf: Path = TERRAFORM / "outputs.tf") -> str:
    rows = ["| name | description |", "|---|---|"]
    for name, body in _blocks(outputs_tf, "output"):
        rows.append(f"| `{name}` | {_cell(body.get('description', ''))} |")
    return "\n".join(rows)


# -- Blocks -----------------------------------------------------------------------------------
BLOCKS: dict[Path, dict[str, Callable[[], str]]] = {
    CONFIGURATION_MD: {"config": config_table},
    TERRAFORM_MD: {"terraform-inputs": inputs_table, "terraform-outputs": outputs_table},
}


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(
        rf"(<!-- generated:{re.escape(name)} -->\n)(.*?)(<!-- /generated:{re.escape(name)} -->)", re.S
    )


def block(text: str, name: str) -> str:
    """The content of a generated block (without its markers); LookupError if it is missing."""
    m = _pattern(name).search(text)
    if m is None:
        raise LookupError(f"no block <!-- generated:{name} --> … <!-- /generated:{name} -->")
    return m.group(2)


def replace(text: str, name: str, content: str) -> str:
    block(text, name)  # the markers must be there
    return _pattern(name).sub(lambda m: m.group(1) + content.rstrip("\n") + "\n" + m.group(3), text)


def render(path: Path) -> str:
    """The page with every generated block rendered afresh."""
    text = path.read_text()
    for name, make in BLOCKS[path].items():
        text = replace(text, name, make())
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.docgen", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a page is stale")
    args = parser.parse_args(argv)
    stale = []
    for path in BLOCKS:
        fresh = render(path)
        if fresh == path.read_text():
            continue
        stale.append(path.relative_to(ROOT))
        if not args.check:
            path.write_text(fresh)
    verb = "out of date" if args.check else "rewritten"
    for path in stale:
        print(f"{path}: {verb}")
    if not stale:
        print("generated tables up to date")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
