"""Every resource and data block against the google and kubernetes providers' own schemas."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import schema
from .hcl import TERRAFORM, all_module_dirs


@pytest.fixture(scope="module")
def schemas() -> dict[str, dict[str, schema.Block]]:
    return {p: schema.provider_schema(p) for p in schema.PROVIDERS}


@pytest.mark.parametrize("folder", all_module_dirs(), ids=lambda p: str(p.relative_to(TERRAFORM)) or "root")
def test_every_block_matches_its_provider_schema(
    folder: Path, schemas: dict[str, dict[str, schema.Block]]
) -> None:
    problems = [p for tf in sorted(folder.glob("*.tf")) for p in schema.check_file(tf, schemas)]
    assert not problems, "\n".join(problems)


def test_the_schemas_know_what_the_modules_use(schemas: dict[str, dict[str, schema.Block]]) -> None:
    fn = schemas["google"]["resource.google_cloudfunctions2_function"]
    assert fn.arguments["name"] and fn.arguments["location"]  # required
    assert "available_memory" in fn.blocks["service_config"][1].arguments
    assert "resource.kubernetes_deployment_v1" in schemas["kubernetes"]


PLANTED = {
    "unknown argument": (
        "available_memory                 = var.worker_memory",
        "avaliable_memory                 = var.worker_memory",
        "unknown argument 'avaliable_memory'",
    ),
    "missing required argument": (
        '  name     = "imagen-on-job-${replace(each.key, "_", "-")}"\n',
        "",
        "missing required argument 'name'",
    ),
    "wrong nesting": (
        '    entry_point     = "on_job"',
        '    entry_point     = "on_job"\n    event_filters {\n      attribute = "bucket"\n    }',
        "'event_filters' is an unknown block",
    ),
    "an argument written as a block": (
        "    available_cpu                    = var.worker_cpu",
        "    available_cpu {\n      value = 1\n    }",
        "'available_cpu' is an argument, not a block",
    ),
}


@pytest.mark.parametrize("case", list(PLANTED))
def test_a_planted_mistake_is_caught(
    case: str, tmp_path: Path, schemas: dict[str, dict[str, schema.Block]], monkeypatch: pytest.MonkeyPatch
) -> None:
    source = TERRAFORM / "modules" / "functions" / "main.tf"
    text = source.read_text()
    old, new, expected = PLANTED[case]
    assert old in text
    planted = tmp_path / "terraform" / "main.tf"
    planted.parent.mkdir()
    planted.write_text(text.replace(old, new, 1))
    monkeypatch.setattr(schema, "TERRAFORM", planted.parent)
    problems = schema.check_file(planted, schemas)
    assert any(expected in p for p in problems), problems
