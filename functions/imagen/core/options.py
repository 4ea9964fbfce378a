"""Per-upload options: the object's custom metadata keys `imagen-*`, checked into Options.

Set them with `gcloud storage cp --custom-metadata=imagen-format=webp,imagen-quality=80 …`, in
the console, with a client library, or as form fields of the HTTP API. `on_upload` checks them
before any job runs: a bad value fails the job at once with the key and the values allowed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from PIL import ImageColor

from imagen.core.errors import BadInput
from imagen.core.formats import BY_OPTION, DEFAULT_QUALITY, FORMATS, Format
from imagen.core.models import MODELS

PREFIX = "imagen-"
# Keys imagen writes on its results (never options): a copied result carries them.
RESULT_KEYS = frozenset(
    {
        "imagen-result",
        "imagen-source",
        "imagen-source-generation",
        "imagen-model",
        "imagen-model-version",
        "imagen-run",
        "imagen-alpha",
        "imagen-crop-box",
    }
)
COMMON = ("format", "quality")
PER_MODEL: dict[str, tuple[str, ...]] = {
    "upscale": ("scale", "upscale"),
    "background_remove": ("background", "crop", "crop-margin", "output"),
}
MAX_SCALE = 4.0  # the upscale model's own factor


class OptionError(BadInput):
    """An option's value (or the option itself) cannot be used; names the key and what is allowed."""


@dataclass(frozen=True)
class Options:
    """What one upload asked for; None or the default where it asked nothing."""

    format: Format | None = None
    quality: int | None = None
    scale: float | None = None  # upscale: the factor written (the model runs x4, then resizes)
    background: tuple[int, int, int] | None = None  # background_remove: opaque on this colour
    crop: bool = False  # background_remove: cut to the subject's box
    crop_margin: float = 0.0  # percent of the box's width (left, right) and height (top, bottom)
    mask: bool = False  # background_remove: the matte alone
    upscaler: str | None = None  # upscale: fidelity or perceptual (None: the default, fidelity)

    def record(self) -> dict[str, str]:
        """The options as metadata keys and canonical values (only those asked for)."""
        out: dict[str, str] = {}
        if self.format is not None:
            out["imagen-format"] = self.format.option
        if self.quality is not None:
            out["imagen-quality"] = str(self.quality)
        if self.scale is not None:
            out["imagen-scale"] = f"{self.scale:g}"
        if self.background is not None:
            out["imagen-background"] = "#{:02x}{:02x}{:02x}".format(*self.background)
        if self.crop:
            out["imagen-crop"] = "subject"
            out["imagen-crop-margin"] = f"{self.crop_margin:g}"
        if self.mask:
            out["imagen-output"] = "mask"
        if self.upscaler is not None:
            out["imagen-upscale"] = self.upscaler
        return out

    def result_format(self, model: str, alpha: bool) -> Format:
        """The format written: the one asked for; else a format that keeps transparency when
        the result has it (PNG, or WebP when a quality was asked); else the model's own."""
        if self.format is not None:
            return self.format
        if alpha:
            return FORMATS["WEBP"] if self.quality is not None else FORMATS["PNG"]
        return FORMATS[MODELS[model].result_format]

    def quality_for(self, fmt: Format) -> int:
        return self.quality if self.quality is not None else DEFAULT_QUALITY.get(fmt.name, 0)

    def result_formats(self, model: str) -> list[Format]:
        """Every format this upload's result may have, before its pixels are known."""
        return list(dict.fromkeys(self.result_format(model, alpha) for alpha in (False, True)))

    def keeps_alpha(self) -> bool:
        """Whether a result with transparency keeps it (no background asked, no mask)."""
        return self.background is None and not self.mask


def allowed(model: str) -> tuple[str, ...]:
    return tuple(PREFIX + k for k in (*COMMON, *PER_MODEL.get(model, ())))


def parse(model: str, metadata: Mapping[str, str]) -> Options:
    """The options in an object's custom metadata, or OptionError naming the first bad one."""
    given = {k.lower(): str(v).strip() for k, v in metadata.items() if k.lower().startswith(PREFIX)}
    given = {k: v for k, v in given.items() if k not in RESULT_KEYS}
    keys = allowed(model)
    for key in given:
        if key not in keys:
            owner = next((m for m, extra in PER_MODEL.items() if key.removeprefix(PREFIX) in extra), None)
            where = f"{key} applies to {owner} only" if owner else f"unknown option {key}"
            raise OptionError(f"{where}; the options for {model} are {', '.join(keys)}")
    fmt = _format(given.get("imagen-format"))
    quality = _quality(given.get("imagen-quality"), fmt)
    opts = Options(
        format=fmt,
        quality=quality,
        scale=_scale(given.get("imagen-scale")),
        background=_colour(given.get("imagen-background")),
        crop=_crop(given.get("imagen-crop")),
        crop_margin=_margin(given.get("imagen-crop-margin")),
        mask=_output(given.get("imagen-output")),
        upscaler=_upscaler(given.get("imagen-upscale")),
    )
    if "imagen-crop-margin" in given and not opts.crop:
        raise OptionError("imagen-crop-margin needs imagen-crop=subject")
    if opts.mask and opts.background is not None:
        raise OptionError(
            "imagen-background cannot be used with imagen-output=mask (the matte has no background)"
        )
    if model == "background_remove" and fmt is not None and not fmt.alpha and opts.keeps_alpha():
        raise OptionError(
            f"imagen-format={fmt.option} cannot hold background_remove's transparency; "
            "set imagen-background (e.g. #ffffff) or choose png, webp or avif"
        )
    return opts


def from_fields(fields: Mapping[str, str]) -> dict[str, str]:
    """Form fields or CLI pairs (`format=webp`, with or without the prefix) as metadata keys."""
    return {k if k.lower().startswith(PREFIX) else PREFIX + k: str(v) for k, v in fields.items()}


# Source metadata that is not copied onto a result: imagen's own keys, and the Firebase console's
# download token (a result gets a token of its own, as the Firebase extension does).
NOT_COPIED = RESULT_KEYS | {"firebaseStorageDownloadTokens"}


def from_record(model: str, record: Mapping[str, str] | None) -> Options:
    """Options recorded in a job (checked again: a record is only ever written from `parse`)."""
    return parse(model, record or {})


def _format(raw: str | None) -> Format | None:
    if raw is None:
        return None
    fmt = BY_OPTION.get(raw.lower())
    if fmt is None:
        raise OptionError(f"imagen-format must be one of jpeg, png, webp, avif; got {raw!r}")
    return fmt


def _number(key: str, raw: str, low: float, high: float, example: str) -> float:
    try:
        value = float(raw.removesuffix("%") if key == "imagen-crop-margin" else raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not low <= value <= high:
        raise OptionError(f"{key} must be a number from {low:g} to {high:g} ({example}); got {raw!r}")
    return value


def _quality(raw: str | None, fmt: Format | None) -> int | None:
    if raw is None:
        return None
    value = _number("imagen-quality", raw, 1, 100, "e.g. 80")
    if value != int(value):
        raise OptionError(f"imagen-quality must be a whole number from 1 to 100 (e.g. 80); got {raw!r}")
    if fmt is not None and not fmt.lossy:
        raise OptionError(f"imagen-quality applies to jpeg, webp and avif, not {fmt.option} (lossless)")
    return int(value)


def _scale(raw: str | None) -> float | None:
    if raw is None:
        return None
    return round(_number("imagen-scale", raw.lower().removeprefix("x"), 1, MAX_SCALE, "e.g. 2 or 2.5"), 4)


def _colour(raw: str | None) -> tuple[int, int, int] | None:
    if raw is None:
        return None
    if raw.lower() == "transparent":
        return None
    try:
        colour: tuple[int, ...] = ImageColor.getrgb(raw)
    except ValueError:
        colour = ()
    if len(colour) == 4 and colour[3] == 255:
        colour = colour[:3]
    if len(colour) != 3:
        raise OptionError(
            "imagen-background must be an opaque colour: #rrggbb, #rgb or a CSS name such as white "
            f"(or transparent, the default); got {raw!r}"
        )
    return (colour[0], colour[1], colour[2])


def _crop(raw: str | None) -> bool:
    if raw is None or raw.lower() == "none":
        return False
    if raw.lower() != "subject":
        raise OptionError(f"imagen-crop must be subject (or none, the default); got {raw!r}")
    return True


def _margin(raw: str | None) -> float:
    return 0.0 if raw is None else _number("imagen-crop-margin", raw, 0, 100, "percent, e.g. 10")


def _upscaler(raw: str | None) -> str | None:
    if raw is None:
        return None
    if raw.lower() not in ("fidelity", "perceptual"):
        raise OptionError(
            "imagen-upscale must be fidelity (faithful, the default) or perceptual (invented texture); "
            f"got {raw!r}"
        )
    return raw.lower()


def _output(raw: str | None) -> bool:
    if raw is None or raw.lower() == "image":
        return False
    if raw.lower() != "mask":
        raise OptionError(f"imagen-output must be image (the default) or mask; got {raw!r}")
    return True
