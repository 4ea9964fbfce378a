"""Every resource and data block checked against its provider's own schema, without terraform.

The prebuilt cdktf providers on PyPI carry, in their jsii assembly (`_jsii/*.jsii.tgz` →
`package/.jsii`), each resource's and data source's arguments, nested blocks and whether each
is required, generated from the provider's schema at the pinned version. The wheels are
fetched once (`pip download --no-deps`) and the schema kept under `.cache/provider-schemas`.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2

from .hcl import TERRAFORM

# provider (prefix of its resource types) -> (PyPI package, version, jsii assembly name)
PROVIDERS = {
    "google": ("cdktf-cdktf-provider-google", "16.12.1", "@cdktf/provider-google"),  # google 6.50.0
    "kubernetes": ("cdktf-cdktf-provider-kubernetes", "12.1.1", "@cdktf/provider-kubernetes"),
}
NO_SCHEMA = {"archive"}  # hashicorp/archive: no prebuilt cdktf provider; its one data source is simple
CACHE = TERRAFORM.parent / ".cache" / "provider-schemas"
META = {"count", "for_each", "depends_on", "provider", "lifecycle", "provisioner", "connection"}
_LINK = re.compile(r"docs/(resources|data-sources)/\w+ (\w+)\}")
_ANCHOR = re.compile(r"#(\w+) ")
EXPLICIT = hcl2.SerializationOptions(strip_string_quotes=True, with_comments=False, explicit_blocks=True)


@dataclass
class Block:
    """One schema block: its arguments (name -> required) and nested blocks."""

    arguments: dict[str, bool] = field(default_factory=dict)
    blocks: dict[str, tuple[bool, Block]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "arguments": self.arguments,
            "blocks": {k: [req, b.to_json()] for k, (req, b) in self.blocks.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Block:
        return cls(
            dict(data["arguments"]),
            {k: (bool(req), cls.from_json(b)) for k, (req, b) in data["blocks"].items()},
        )


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _nested(t: dict[str, Any], types: dict[str, Any]) -> str | None:
    """The fqn of a nested-block interface in this type (direct, or a list of them)."""
    if "fqn" in t:
        return t["fqn"] if types.get(t["fqn"], {}).get("kind") == "interface" else None
    if "union" in t:
        for u in t["union"]["types"]:
            found = _nested(u, types)
            if found:
                return found
    if "collection" in t and t["collection"]["kind"] == "array":
        return _nested(t["collection"]["elementtype"], types)
    return None


def _block(fqn: str, types: dict[str, Any], seen: frozenset[str] = frozenset()) -> Block:
    out = Block()
    for prop in types[fqn].get("properties", []):
        docs = " ".join(str(v) for v in prop.get("docs", {}).values())
        anchor = _ANCHOR.search(docs)
        name = anchor.group(1) if anchor else _snake(prop["name"])
        required = not prop.get("optional", False)
        nested = _nested(prop["type"], types)
        if nested and nested not in seen:
            out.blocks[name] = (required, _block(nested, types, seen | {fqn}))
        else:
            out.arguments[name] = required
    return out


def _assembly(package: str, version: str) -> dict[str, Any]:
    CACHE.mkdir(parents=True, exist_ok=True)
    wheel_name = f"{package.replace('-', '_')}-{version}-py3-none-any.whl"
    wheel = CACHE / wheel_name
    if not wheel.exists():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                f"{package}=={version}",
                "-d",
                str(CACHE),
            ],
            check=True,
        )
    with zipfile.ZipFile(wheel) as z:
        tgz = next(n for n in z.namelist() if n.endswith(".jsii.tgz"))
        with tarfile.open(fileobj=io.BytesIO(z.read(tgz))) as tar:
            member = tar.extractfile("package/.jsii")
            assert member is not None
            assembly: dict[str, Any] = json.loads(member.read())
    return assembly


def provider_schema(provider: str) -> dict[str, Block]:
    """'resource.<type>' / 'data.<type>' -> its schema, for one provider (cached as JSON)."""
    package, version, _ = PROVIDERS[provider]
    cached = CACHE / f"{provider}-{version}.json"
    if cached.exists():
        return {k: Block.from_json(v) for k, v in json.loads(cached.read_text()).items()}
    types = _assembly(package, version)["types"]
    out: dict[str, Block] = {}
    for t in types.values():
        if t.get("kind") != "class" or t.get("base") not in (
            "cdktf.TerraformResource",
            "cdktf.TerraformDataSource",
        ):
            continue
        link = _LINK.search(t.get("docs", {}).get("summary", ""))
        params = (t.get("initializer") or {}).get("parameters", [])
        config = next(
            (p["type"]["fqn"] for p in params if p["name"] == "config" and "fqn" in p["type"]), None
        )
        if link and config:
            kind = "resource" if link.group(1) == "resources" else "data"
            out[f"{kind}.{link.group(2)}"] = _block(config, types)
    cached.write_text(json.dumps({k: v.to_json() for k, v in out.items()}))
    return out


def _is_block(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, dict) and v.get("__is_block__") for v in value)
    )


def check_body(where: str, body: dict[str, Any], schema: Block, top: bool) -> list[str]:
    """Problems of one block body against its schema: unknown, missing, wrongly nested."""
    problems = []
    present = set()
    for key, value in body.items():
        if key == "__is_block__" or (top and key in META):
            continue
        if key == "dynamic":  # dynamic "name" { for_each = …; content { … } }: checked as `name`
            for dyn in value if isinstance(value, list) else [value]:
                for name, inner in dyn.items():
                    if name == "__is_block__":
                        continue
                    content = (inner.get("content") or [{}]) if isinstance(inner, dict) else [{}]
                    problems += _check_nested(f"{where}.{name}", name, content, schema)
                    present.add(name)
            continue
        present.add(key)
        if _is_block(value):
            problems += _check_nested(f"{where}.{key}", key, value, schema)
        elif key in schema.blocks:
            pass  # a nested object written as an attribute (`x = {...}`): Terraform accepts both
        elif key not in schema.arguments:
            problems.append(f"{where}: unknown argument {key!r}")
    for name, required in schema.arguments.items():
        if required and name not in present and name != "id":
            problems.append(f"{where}: missing required argument {name!r}")
    for name, (required, _) in schema.blocks.items():
        if required and name not in present:
            problems.append(f"{where}: missing required block {name!r}")
    return problems


def _check_nested(where: str, key: str, value: list[dict[str, Any]], schema: Block) -> list[str]:
    if key not in schema.blocks:
        what = "an argument, not a block" if key in schema.arguments else "an unknown block"
        return [f"{where}: {key!r} is {what}"]
    out = []
    for item in value:
        out += check_body(where, item, schema.blocks[key][1], top=False)
    return out


def check_file(path: Path, schemas: dict[str, dict[str, Block]]) -> list[str]:
    """Problems of every resource and data block in one .tf file."""
    with path.open() as fh:
        parsed = hcl2.load(fh, serialization_options=EXPLICIT)
    problems = []
    for kind in ("resource", "data"):
        for block in parsed.get(kind, []):
            for rtype, named in block.items():
                if rtype == "__is_block__":
                    continue
                provider = rtype.split("_", 1)[0]
                if provider in NO_SCHEMA:
                    continue
                schema = schemas[provider].get(f"{kind}.{rtype}") if provider in schemas else None
                for name, body in named.items():
                    if name == "__is_block__":
                        continue
                    where = f"{path.relative_to(TERRAFORM.parent)}: {kind} {rtype}.{name}"
                    if schema is None:
                        problems.append(f"{where}: no such {kind} type in the {provider} provider")
                        continue
                    problems += check_body(where, body, schema, top=True)
    return problems
