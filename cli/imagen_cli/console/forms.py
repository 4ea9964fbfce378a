"""The submit page's options form, and its check: the fields of each model's options
(imagen.core.options.allowed), checked by the same `options.parse` that on_upload runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from imagen.core import options
from imagen.core.formats import BY_OPTION
from imagen.core.models import DEFAULT_VARIANT, MODELS, VARIANT_NOTES, VARIANTS

# How each option is asked for; its values are whatever options.parse accepts.
FIELDS: dict[str, dict[str, Any]] = {
    "imagen-format": {
        "kind": "choice",
        "choices": sorted({f.option for f in BY_OPTION.values()}),
        "help": "the result's format (the model's own when empty)",
    },
    "imagen-quality": {"kind": "number", "min": 1, "max": 100, "step": 1, "help": "jpeg, webp, avif: 1-100"},
    "imagen-scale": {
        "kind": "number",
        "min": 1,
        "max": options.MAX_SCALE,
        "step": 0.5,
        "help": "the factor, 1 to 4 (4)",
    },
    "imagen-upscale": {
        "kind": "choice",
        "choices": list(VARIANTS["upscale"]),
        "help": ", ".join(
            f"{v}: {VARIANT_NOTES[v]}" + (" (default)" if v == DEFAULT_VARIANT["upscale"] else "")
            for v in VARIANTS["upscale"]
        ),
    },
    "imagen-background": {"kind": "colour", "help": "an opaque colour under the cutout (#rrggbb or a name)"},
    "imagen-crop": {"kind": "choice", "choices": ["none", "subject"], "help": "cut to the subject's box"},
    "imagen-crop-margin": {"kind": "number", "min": 0, "max": 100, "step": 1, "help": "% around the box"},
    "imagen-output": {"kind": "choice", "choices": ["image", "mask"], "help": "the cutout, or its matte"},
}


def form(model: str) -> list[dict[str, Any]]:
    """The fields of one model's options, in options.allowed's order."""
    return [
        {"key": key, "name": key.removeprefix(options.PREFIX), **FIELDS[key]}
        for key in options.allowed(model)
    ]


def forms() -> dict[str, list[dict[str, Any]]]:
    return {model: form(model) for model in MODELS}


def check(model: str, fields: Mapping[str, Any]) -> dict[str, str]:
    """The fields (empty ones left out) as the upload's metadata, or OptionError naming the key."""
    if model not in MODELS:
        raise options.OptionError(f"unknown model {model!r}; one of: {', '.join(MODELS)}")
    given = {str(k): str(v).strip() for k, v in fields.items() if str(v).strip()}
    metadata = options.from_fields(given)
    options.parse(model, metadata)
    return metadata
