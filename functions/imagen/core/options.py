"""Per-upload options: the object's custom metadata keys `imagen-*`, checked into Options.

Set them with `gcloud storage cp --custom-metadata=imagen-format=webp,imagen-quality=80 …`, in
the console, with a client library, or as form fields of the HTTP API. `on_upload` checks them
before any job runs: a bad value fails the job at once with the key and the values allowed.
"""

from __future__ import annotations

import colorsys
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from imagen.core import metadata
from imagen.core.errors import BadInput
from imagen.core.formats import BY_OPTION, DEFAULT_QUALITY, FORMATS, Format
from imagen.core.models import DEFAULT_VARIANT, MODELS, VARIANT_NOTES, VARIANTS

PREFIX = "imagen-"
# Keys imagen writes (never options): on its results (a copied result carries them), and the
# owner the HTTP API records on an upload.
NOT_OPTIONS = frozenset((*metadata.RESULT_KEYS, metadata.OWNER))
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
    upscaler: str | None = None  # upscale: a key of VARIANTS["upscale"] (None: DEFAULT_VARIANT)

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
    given = {k: v for k, v in given.items() if k not in NOT_OPTIONS}
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
NOT_COPIED = NOT_OPTIONS | {"firebaseStorageDownloadTokens"}


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
        colour = rgb(raw)
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


# The CSS colour names (CSS Color Module Level 4, as Pillow's ImageColor knows them), name and hex.
_NAMES = """
aliceblue f0f8ff antiquewhite faebd7 aqua 00ffff aquamarine 7fffd4 azure f0ffff beige f5f5dc
bisque ffe4c4 black 000000 blanchedalmond ffebcd blue 0000ff blueviolet 8a2be2 brown a52a2a
burlywood deb887 cadetblue 5f9ea0 chartreuse 7fff00 chocolate d2691e coral ff7f50
cornflowerblue 6495ed cornsilk fff8dc crimson dc143c cyan 00ffff darkblue 00008b darkcyan 008b8b
darkgoldenrod b8860b darkgray a9a9a9 darkgreen 006400 darkgrey a9a9a9 darkkhaki bdb76b
darkmagenta 8b008b darkolivegreen 556b2f darkorange ff8c00 darkorchid 9932cc darkred 8b0000
darksalmon e9967a darkseagreen 8fbc8f darkslateblue 483d8b darkslategray 2f4f4f
darkslategrey 2f4f4f darkturquoise 00ced1 darkviolet 9400d3 deeppink ff1493 deepskyblue 00bfff
dimgray 696969 dimgrey 696969 dodgerblue 1e90ff firebrick b22222 floralwhite fffaf0
forestgreen 228b22 fuchsia ff00ff gainsboro dcdcdc ghostwhite f8f8ff gold ffd700 goldenrod daa520
gray 808080 green 008000 greenyellow adff2f grey 808080 honeydew f0fff0 hotpink ff69b4
indianred cd5c5c indigo 4b0082 ivory fffff0 khaki f0e68c lavender e6e6fa lavenderblush fff0f5
lawngreen 7cfc00 lemonchiffon fffacd lightblue add8e6 lightcoral f08080 lightcyan e0ffff
lightgoldenrodyellow fafad2 lightgray d3d3d3 lightgreen 90ee90 lightgrey d3d3d3 lightpink ffb6c1
lightsalmon ffa07a lightseagreen 20b2aa lightskyblue 87cefa lightslategray 778899
lightslategrey 778899 lightsteelblue b0c4de lightyellow ffffe0 lime 00ff00 limegreen 32cd32
linen faf0e6 magenta ff00ff maroon 800000 mediumaquamarine 66cdaa mediumblue 0000cd
mediumorchid ba55d3 mediumpurple 9370db mediumseagreen 3cb371 mediumslateblue 7b68ee
mediumspringgreen 00fa9a mediumturquoise 48d1cc mediumvioletred c71585 midnightblue 191970
mintcream f5fffa mistyrose ffe4e1 moccasin ffe4b5 navajowhite ffdead navy 000080 oldlace fdf5e6
olive 808000 olivedrab 6b8e23 orange ffa500 orangered ff4500 orchid da70d6 palegoldenrod eee8aa
palegreen 98fb98 paleturquoise afeeee palevioletred db7093 papayawhip ffefd5 peachpuff ffdab9
peru cd853f pink ffc0cb plum dda0dd powderblue b0e0e6 purple 800080 rebeccapurple 663399 red ff0000
rosybrown bc8f8f royalblue 4169e1 saddlebrown 8b4513 salmon fa8072 sandybrown f4a460
seagreen 2e8b57 seashell fff5ee sienna a0522d silver c0c0c0 skyblue 87ceeb slateblue 6a5acd
slategray 708090 slategrey 708090 snow fffafa springgreen 00ff7f steelblue 4682b4 tan d2b48c
teal 008080 thistle d8bfd8 tomato ff6347 turquoise 40e0d0 violet ee82ee wheat f5deb3 white ffffff
whitesmoke f5f5f5 yellow ffff00 yellowgreen 9acd32
"""
CSS_COLOURS: dict[str, str] = dict(zip(_NAMES.split()[::2], _NAMES.split()[1::2], strict=True))
_NUM = r"\s*(\d+)\s*"
_REAL = r"\s*(\d+\.?\d*)\s*"
_RGB = re.compile(rf"rgb\({_NUM},{_NUM},{_NUM}\)")
_RGB_PERCENT = re.compile(rf"rgb\({_NUM}%,{_NUM}%,{_NUM}%\)")
_RGBA = re.compile(rf"rgba\({_NUM},{_NUM},{_NUM},{_NUM}\)")
_HSL = re.compile(rf"hsl\({_REAL},{_REAL}%,{_REAL}%\)")
_HSV = re.compile(rf"hs[bv]\({_REAL},{_REAL}%,{_REAL}%\)")


def rgb(spec: str) -> tuple[int, ...]:
    """A colour as (r, g, b) or (r, g, b, a): the forms Pillow's ImageColor.getrgb reads (a CSS
    name, #rgb, #rgba, #rrggbb, #rrggbbaa, rgb(), rgba(), hsl(), hsv(), hsb()), without Pillow.
    Unlike Pillow, a component over 255 (rgb(300,0,0), rgb(120%,…)) is a ValueError."""
    if len(spec) > 100:
        raise ValueError("colour specifier is too long")
    spec = spec.lower()
    spec = "#" + CSS_COLOURS[spec] if spec in CSS_COLOURS else spec
    out: tuple[int, ...] | None = None
    if re.fullmatch(r"#[0-9a-f]{3,4}", spec):
        out = tuple(int(c * 2, 16) for c in spec[1:])
    elif re.fullmatch(r"#[0-9a-f]{6}|#[0-9a-f]{8}", spec):
        out = tuple(bytes.fromhex(spec[1:]))
    elif m := _RGB.fullmatch(spec) or _RGBA.fullmatch(spec):
        out = tuple(int(g) for g in m.groups())
    elif m := _RGB_PERCENT.fullmatch(spec):
        out = tuple(int(int(g) * 255 / 100.0 + 0.5) for g in m.groups())
    elif m := _HSL.fullmatch(spec):
        h, s, lightness = (float(g) for g in m.groups())
        out = _unit(colorsys.hls_to_rgb(h / 360.0, lightness / 100.0, s / 100.0))
    elif m := _HSV.fullmatch(spec):
        h, s, v = (float(g) for g in m.groups())
        out = _unit(colorsys.hsv_to_rgb(h / 360.0, s / 100.0, v / 100.0))
    if out is None:
        raise ValueError(f"unknown colour specifier: {spec!r}")
    if any(not 0 <= c <= 255 for c in out):
        raise ValueError(f"a colour component is outside 0 to 255: {spec!r}")
    return out


def _unit(floats: tuple[float, float, float]) -> tuple[int, ...]:
    return tuple(int(f * 255 + 0.5) for f in floats)


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
    if raw.lower() not in VARIANTS["upscale"]:
        described = (
            f"{v} ({VARIANT_NOTES[v]}{', the default' if v == DEFAULT_VARIANT['upscale'] else ''})"
            for v in VARIANTS["upscale"]
        )
        raise OptionError(f"imagen-upscale must be {' or '.join(described)}; got {raw!r}")
    return raw.lower()


def _output(raw: str | None) -> bool:
    if raw is None or raw.lower() == "image":
        return False
    if raw.lower() != "mask":
        raise OptionError(f"imagen-output must be image (the default) or mask; got {raw!r}")
    return True
