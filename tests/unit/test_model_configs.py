"""The Triton configs (parsed with Triton's model_config protobuf), the build recipes and the
worker's model table agree."""

from __future__ import annotations

from functools import partial

import pytest

from imagen.models import MODELS, TRITON_MODELS
from modelbuild import build, configs, recipes


@pytest.mark.parametrize("model", sorted(TRITON_MODELS))
@pytest.mark.parametrize("which", sorted(configs.CONFIGS))
def test_config_matches_worker_spec(model: str, which: str) -> None:
    config = configs.load(model, which)
    assert config.name == model
    assert configs.declared(config) == configs.expected(TRITON_MODELS[model])
    assert config.HasField("dynamic_batching") and config.model_warmup
    for warmup in config.model_warmup:
        assert set(warmup.inputs) == set(configs.expected(TRITON_MODELS[model])[0])
    kinds = {g.kind for g in config.instance_group}
    if which == "gpu":  # plain ONNX graphs: Triton's own onnxruntime backend, no python stub
        assert config.backend == "onnxruntime" and config.default_model_filename == "model.onnx"
        assert kinds == {configs.mc.ModelInstanceGroup.KIND_GPU}
        assert not config.parameters, "python-backend parameters mean nothing to onnxruntime"
    else:  # the local stack's Triton has only the python backend
        assert config.backend == "python"
        assert kinds == {configs.mc.ModelInstanceGroup.KIND_CPU}
    assert config.max_batch_size >= max(config.dynamic_batching.preferred_batch_size)


def test_a_typo_in_a_config_is_caught(tmp_path: object) -> None:
    from google.protobuf import text_format

    text = (
        (configs.REPOSITORY / "upscale" / "config.pbtxt").read_text().replace("max_batch_size", "max_batch")
    )
    with pytest.raises(text_format.ParseError, match="max_batch"):
        text_format.Parse(text, configs.mc.ModelConfig())


def test_recipes_cover_every_model_with_the_worker_tile_size() -> None:
    assert set(recipes.recipes()) == set(TRITON_MODELS)
    assert TRITON_MODELS["upscale_fidelity"].size == recipes.FIDELITY_TILE
    assert MODELS["upscale"].size == recipes.TILE
    assert MODELS["background_remove"].size == recipes.U2NET_SIZE


def test_background_remove_weights_are_a_build_choice_with_their_own_cache_key() -> None:
    default, full = (
        recipes.recipes()["background_remove"],
        recipes.recipes(background_remove_weights="u2net")["background_remove"],
    )
    for recipe, want in ((default, False), (full, True)):
        assert isinstance(recipe.build, partial) and recipe.build.keywords == {"full": want}
        assert isinstance(recipe.check, partial) and recipe.check.keywords == {"full": want}
    assert default.summary == "u2netp" and full.summary == "u2net"
    assert build.recipe_key("background_remove", "light", "u2net") != build.recipe_key(
        "background_remove", "light", "u2netp"
    )
    with pytest.raises(ValueError, match="u2netp"):
        recipes.recipes(background_remove_weights="U2NET")
