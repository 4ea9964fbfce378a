"""Terraform files parsed with python-hcl2 into plain lookups."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2

TERRAFORM = Path(__file__).resolve().parents[2] / "terraform"
OPTIONS = hcl2.SerializationOptions(strip_string_quotes=True, with_comments=False, explicit_blocks=False)


def one(value: Any) -> Any:
    """python-hcl2 wraps nested blocks in lists; take the single item."""
    return value[0] if isinstance(value, list) and len(value) == 1 else value


@dataclass
class Module:
    path: Path
    files: dict[str, dict[str, Any]] = field(default_factory=dict)

    def blocks(self, kind: str) -> list[dict[str, Any]]:
        return [b for f in self.files.values() for b in f.get(kind, [])]

    def resources(self, rtype: str | None = None) -> dict[tuple[str, str], dict[str, Any]]:
        out = {}
        for block in self.blocks("resource"):
            for t, named in block.items():
                for name, body in named.items():
                    if rtype is None or t == rtype:
                        out[(t, name)] = body
        return out

    def resource(self, rtype: str, name: str) -> dict[str, Any]:
        return self.resources(rtype)[(rtype, name)]

    def named(self, kind: str) -> dict[str, dict[str, Any]]:
        return {name: body for block in self.blocks(kind) for name, body in block.items()}

    def locals(self) -> dict[str, Any]:
        return {k: one(v) for block in self.blocks("locals") for k, v in block.items()}

    def env(self, expression: Any) -> dict[str, Any]:
        """An environment map as a dict: a literal, or `merge(local.A, local.B, {...})` of this
        module's locals and one object literal, resolved (later keys win, as in Terraform)."""
        if isinstance(expression, dict):
            return expression
        found = re.fullmatch(r"\$\{merge\(((?:local\.\w+, )*local\.\w+)(?:, (\{.*\}))?\)\}", expression, re.S)
        assert found, f"not a merge of locals and one object: {expression}"
        out: dict[str, Any] = {}
        for name in found.group(1).split(", "):
            out.update(self.env(self.locals()[name.removeprefix("local.")]))
        if found.group(2):
            parsed = hcl2.loads(f"env = {found.group(2)}", serialization_options=OPTIONS)
            out.update(one(parsed["env"]))
        return out


def load(path: Path) -> Module:
    module = Module(path)
    for tf in sorted(path.glob("*.tf")):
        with tf.open() as fh:
            module.files[tf.name] = hcl2.load(fh, serialization_options=OPTIONS)
    return module


def all_module_dirs() -> list[Path]:
    return sorted({p.parent for p in TERRAFORM.rglob("*.tf") if ".terraform" not in p.parts})
