"""The Triton configs (parsed with Triton's model_config protobuf), the build recipes and the
worker's model table agree."""

from __future__ import annotations

from functools import partial

import pytest

from emulators.settings import LOCAL_FUNCTION_ENV
from imagen.core.config import Config
from imagen.core.models import GPU_TILE_SECONDS, TRITON_MODELS
from modelbuild import build, configs, recipes
from tests.terraform.hcl import TERRAFORM, load, one


@pytest.mark.parametrize("model", sorted(TRITON_MODELS))
@pytest.mark.parametrize("which", sorted(configs.CONFIGS))
def test_config_matches_worker_spec(model: str, which: str) -> None:
    config = configs.load(model, which)
    assert config.name == model
    assert configs.declared(config) == configs.expected(TRITON_MODELS[model])
    assert config.HasField("dynamic_batching") and config.model_warmup
    inputs = configs.expected(TRITON_MODELS[model])[0]
    for warmup in config.model_warmup:  # the warmup's tensors: the same names, types and shapes
        warm = {k: (configs.mc.DataType.Name(v.data_type), list(v.dims)) for k, v in warmup.inputs.items()}
        assert warm == inputs
        assert 1 <= warmup.batch_size <= config.max_batch_size
    kinds = {g.kind for g in config.instance_group}
    if which == "gpu":  # plain ONNX graphs: Triton's own onnxruntime backend, no python stub
        assert config.backend == "onnxruntime" and config.default_model_filename == "model.onnx"
        assert kinds == {configs.mc.ModelInstanceGroup.KIND_GPU}
        assert not config.parameters, "python-backend parameters mean nothing to onnxruntime"
    else:  # the local stack's Triton has only the python backend
        assert config.backend == "python"
        assert kinds == {configs.mc.ModelInstanceGroup.KIND_CPU}
    assert config.max_batch_size >= max(config.dynamic_batching.preferred_batch_size)


@pytest.mark.parametrize("model", sorted(TRITON_MODELS))
@pytest.mark.parametrize("which", sorted(configs.CONFIGS))
def test_triton_refuses_work_it_cannot_start_in_time(model: str, which: str) -> None:
    """A bounded queue whose requests are rejected once they have waited past a timeout: the
    worker hears "busy" (and backs off) before its own client timeout ends the request."""
    config = configs.load(model, which)
    assert config.dynamic_batching.HasField("default_queue_policy")
    policy = config.dynamic_batching.default_queue_policy
    assert policy.max_queue_size > 0
    assert policy.timeout_action == configs.mc.ModelQueuePolicy.REJECT
    assert not policy.allow_timeout_override  # a client may not queue longer than the model allows
    timeout_s = policy.default_timeout_microseconds / 1e6
    assert 0 < timeout_s < Config.triton_timeout_s
    # A request that starts just before its timeout is answered one batch later: the timeout plus
    # one full batch at the planning figures (TILE_SECONDS) stays well inside the client's timeout.
    env = {"GOOGLE_CLOUD_PROJECT": "p", **(LOCAL_FUNCTION_ENV if which == "cpu" else {})}
    cfg = Config.from_env(env)
    assert timeout_s + config.max_batch_size * cfg.tile_seconds[model] < 0.8 * cfg.triton_timeout_s
    # The queue holds at least what the workers can have in flight on this model at once.
    instances = 1  # the local stack runs one worker per model
    if which == "gpu":
        variables = load(TERRAFORM / "modules" / "functions").named("variable")
        instances = one(variables["worker_max_instances"]["default"])
    assert policy.max_queue_size >= instances * cfg.worker_concurrency * cfg.tile_concurrency


def _worker_config(which: str) -> Config:
    """The Config the workers that call this config's Triton run with."""
    return Config.from_env({"GOOGLE_CLOUD_PROJECT": "p", **(LOCAL_FUNCTION_ENV if which == "cpu" else {})})


@pytest.mark.parametrize("model", sorted(TRITON_MODELS))
@pytest.mark.parametrize("which", sorted(configs.CONFIGS))
def test_a_batch_holds_whole_requests_of_the_worker(model: str, which: str) -> None:
    """The most tiles the worker puts in one request (its TILE_BATCH, capped by ModelSpec.batch for
    large tiles; one image for a whole-image model) fit Triton's batch, which holds whole requests."""
    spec, config = TRITON_MODELS[model], configs.load(model, which)
    per_request = spec.tile_batch(_worker_config(which).tile_batch) if spec.mode == "tiled" else 1
    assert config.max_batch_size >= per_request
    assert config.max_batch_size % per_request == 0


@pytest.mark.parametrize("model", sorted(TRITON_MODELS))
def test_the_gpu_queue_holds_no_more_than_runs_before_its_timeout(model: str) -> None:
    """Requests past what the model runs within the queue's timeout, at the planning figure for a
    T4 with one tile a request (GPU_TILE_SECONDS), could only time out there."""
    policy = configs.load(model, "gpu").dynamic_batching.default_queue_policy
    timeout_s = policy.default_timeout_microseconds / 1e6
    assert policy.max_queue_size <= round(timeout_s / GPU_TILE_SECONDS[model])


def test_a_typo_in_a_config_is_caught(tmp_path: object) -> None:
    from google.protobuf import text_format

    text = (
        (configs.REPOSITORY / "upscale" / "config.pbtxt").read_text().replace("max_batch_size", "max_batch")
    )
    with pytest.raises(text_format.ParseError, match="max_batch"):
        text_format.Parse(text, configs.mc.ModelConfig())


def test_recipes_cover_every_model() -> None:
    """Their shapes come from the model table (tests/unit/test_facts.py checks the inputs)."""
    assert set(recipes.recipes()) == set(TRITON_MODELS)


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
