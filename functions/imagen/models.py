"""What the worker needs to know about each Triton model (shapes mirror config.pbtxt)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ModelSpec:
    name: str
    mode: Literal["tiled", "whole"]
    size: int  # tile side (tiled) or the fixed input side (whole)
    scale: int = 1
    overlap: int = 16
    needs_position: bool = False  # POSITION [4]: where the tile sits in its image
    needs_levels: bool = False  # LEVELS [6]: the whole image's per-channel low/high percentiles
    output: Literal["rgb", "alpha"] = "rgb"

    @property
    def result_format(self) -> str:
        """PNG where the result has alpha, JPEG otherwise."""
        return "PNG" if self.output == "alpha" else "JPEG"

    @property
    def content_type(self) -> str:
        return "image/png" if self.result_format == "PNG" else "image/jpeg"


TILE = 128

MODELS: dict[str, ModelSpec] = {
    "upscale": ModelSpec("upscale", "tiled", TILE, scale=4),
    "enhance": ModelSpec("enhance", "tiled", TILE, needs_levels=True),
    "style_comic": ModelSpec("style_comic", "tiled", TILE),
    "style_aged": ModelSpec("style_aged", "tiled", TILE, needs_position=True),
    "background_remove": ModelSpec("background_remove", "whole", 320, output="alpha"),
}


def result_extension(model: str) -> str:
    """The file extension of a model's results."""
    return ".png" if MODELS[model].result_format == "PNG" else ".jpg"
