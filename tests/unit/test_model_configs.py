"""The Triton configs, the build recipes and the worker's model table agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from imagen.models import MODELS
from modelbuild import recipes

REPO = Path(__file__).resolve().parents[2] / "triton" / "model_repository"


def tensors(text: str, section: str) -> dict[str, list[int]]:
    block = re.search(section + r"\s*\[(.*?)\n\]", text, re.S)
    assert block, section
    return {
        m.group(1): [int(d) for d in m.group(2).split(",")]
        for m in re.finditer(r'name: "(\w+)" data_type: \w+ dims: \[ ([\d, ]+) \]', block.group(1))
    }


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("config", ["config.pbtxt", "configs/cpu.pbtxt"])
def test_config_matches_worker_spec(model: str, config: str) -> None:
    text = (REPO / model / config).read_text()
    spec = MODELS[model]
    assert f'name: "{model}"' in text
    assert "dynamic_batching" in text and "model_warmup" in text
    ins, outs = tensors(text, "input"), tensors(text, "output")
    assert ins["IMAGE"] == [spec.size, spec.size, 3]
    assert ("POSITION" in ins) == spec.needs_position
    assert ("LEVELS" in ins) == spec.needs_levels
    channels = 1 if spec.output == "alpha" else 3
    assert outs["OUTPUT"] == [spec.size * spec.scale, spec.size * spec.scale, channels]
    kind = "KIND_GPU" if config == "config.pbtxt" else "KIND_CPU"
    assert f"kind: {kind}" in text


def test_recipes_cover_every_model_with_the_worker_tile_size() -> None:
    assert set(recipes.recipes()) == set(MODELS)
    assert MODELS["upscale"].size == recipes.TILE
    assert MODELS["background_remove"].size == recipes.U2NET_SIZE
