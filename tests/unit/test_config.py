"""Config is read once from the environment and validated."""

from __future__ import annotations

import pytest

from imagen.core.config import Config, ConfigError


def test_defaults_and_overrides() -> None:
    cfg = Config.from_env(
        {
            "GOOGLE_CLOUD_PROJECT": "p",
            "MODEL_NAME": "upscale",
            "TRITON_URL": "http://10.0.0.5:8000",
            "TILE_BATCH": "4",
        }
    )
    assert cfg.project == "p"
    assert cfg.model_name == "upscale"
    assert cfg.triton_url == "10.0.0.5:8000"
    assert cfg.tile_batch == 4
    assert cfg.names.result_prefix == "results/"
    assert cfg.names.job_topic("enhance") == "imagen-enhance"
    assert cfg.names.events_topic == "imagen-events"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "GOOGLE_CLOUD_PROJECT"),
        ({"GOOGLE_CLOUD_PROJECT": "p", "MODEL_NAME": "sharpen"}, "MODEL_NAME"),
        ({"GOOGLE_CLOUD_PROJECT": "p", "TILE_BATCH": "many"}, "TILE_BATCH must be an integer"),
        ({"GOOGLE_CLOUD_PROJECT": "p", "TILE_BATCH": "0"}, "at least 1"),
        ({"GOOGLE_CLOUD_PROJECT": "p", "RESULT_PREFIX": "results"}, "RESULT_PREFIX"),
    ],
)
def test_invalid_environment(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config.from_env(env)
