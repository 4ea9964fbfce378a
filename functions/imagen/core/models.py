"""What the worker needs to know about each Triton model (shapes mirror config.pbtxt)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TILE_RAMP = 8  # pixels over which a tile's blending weight rises from its margin to 1 (input pixels)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    mode: Literal["tiled", "whole"]
    size: int  # tile side (tiled) or the fixed input side (whole)
    scale: int = 1
    margin: int = 4  # the model's receptive field (input pixels): tiles overlap 2 * margin + a ramp
    needs_position: bool = False  # POSITION [4]: where the tile sits in its image
    needs_levels: bool = False  # LEVELS [6]: the whole image's per-channel low/high percentiles
    palette: int = 0  # PALETTE [palette*3]: the whole image's own colours (k-means), when > 0
    needs_noise: bool = False  # NOISE [1]: the whole image's noise level (sigma / 255)
    output: Literal["rgb", "alpha"] = "rgb"
    batch: int = 0  # the most tiles per request (0: the worker's TILE_BATCH), for large tiles
    prefix: str = ""  # the uploads' prefix it serves ("": its own name)

    @property
    def model(self) -> str:
        """The model prefix (what users upload under) this Triton model serves."""
        return self.prefix or self.name

    def tile_batch(self, configured: int) -> int:
        return min(configured, self.batch) if self.batch else configured

    @property
    def overlap(self) -> int:
        return 2 * self.margin + TILE_RAMP

    @property
    def result_format(self) -> str:
        """PNG where the result has alpha, JPEG otherwise."""
        return "PNG" if self.output == "alpha" else "JPEG"


TILE = 128

# Margins cover each graph's receptive field in input pixels, with a little room: the model build
# measures the field on every build (BUILD.json, checks.receptive_field_px) and fails if it passes
# the margin, and `nox -s quality` measures tiles against the whole-image pass (docs/quality.md,
# "Tiling"). The measured figures live there, not here.
MODELS: dict[str, ModelSpec] = {
    "upscale": ModelSpec("upscale", "tiled", TILE, scale=4, margin=20),
    "enhance": ModelSpec("enhance", "tiled", TILE, margin=26, needs_levels=True, needs_noise=True),
    "style_comic": ModelSpec("style_comic", "tiled", TILE, margin=20, palette=12),
    "style_aged": ModelSpec("style_aged", "tiled", TILE, margin=3, needs_position=True),
    "background_remove": ModelSpec("background_remove", "whole", 320, output="alpha"),
}

# upscale has two characters, chosen per upload with imagen-upscale: a fidelity model (SRResNet,
# trained for PSNR: above bicubic on the quality set) and the perceptual one (Real-ESRGAN
# animevideov3: invented texture, below bicubic by PSNR); the figures are in docs/quality.md.
# Fidelity is the default (docs/models.md). Its tiles are larger than TILE, so that its wide
# margin still leaves a useful stride (size - overlap).
FIDELITY = "fidelity"
PERCEPTUAL = "perceptual"
UPSCALE_FIDELITY = ModelSpec("upscale_fidelity", "tiled", 192, scale=4, margin=40, batch=4, prefix="upscale")
VARIANTS: dict[str, dict[str, ModelSpec]] = {
    "upscale": {FIDELITY: UPSCALE_FIDELITY, PERCEPTUAL: MODELS["upscale"]},
}
DEFAULT_VARIANT = {"upscale": FIDELITY}
VARIANT_NOTES = {FIDELITY: "faithful", PERCEPTUAL: "invented texture"}  # for messages that list them
TRITON_MODELS: dict[str, ModelSpec] = {s.name: s for s in [*MODELS.values(), UPSCALE_FIDELITY]}


def spec_for(model: str, variant: str | None = None) -> ModelSpec:
    """The Triton model that runs an upload under `model` (its imagen-upscale, or the default)."""
    choices = VARIANTS.get(model)
    if not choices:
        return MODELS[model]
    return choices[variant or DEFAULT_VARIANT[model]]


# Seconds a tile (one model input) takes on the production accelerator, one NVIDIA T4: stated,
# not measured (no GPU here). From each graph's multiply-adds per tile (counted from the ONNX
# files: upscale 10.1 G, upscale_fidelity 81.8 G, u2netp 19.8 G at 320 px; enhance's FFDNet ~4 G,
# comic's and aged's classical graphs well under 1 G) at ~1.6 T multiply-adds a second (40% of
# the T4's FP32 peak), then doubled; background_remove is the full U²-Net (the paper: 30 fps on a
# 1080 Ti), counted at 0.1 s. The local stack sets this CPU's measured figures (TILE_SECONDS).
GPU_TILE_SECONDS: dict[str, float] = {
    "upscale": 0.015,
    "upscale_fidelity": 0.1,
    "enhance": 0.01,
    "style_comic": 0.005,
    "style_aged": 0.002,
    "background_remove": 0.1,
}
