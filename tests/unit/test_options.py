"""Per-upload options: every key's values, and each bad one refused with the key and what is allowed."""

from __future__ import annotations

import pytest

from imagen.core import options
from imagen.core.formats import FORMATS
from imagen.core.options import OptionError, Options, parse


def test_no_options_are_the_defaults() -> None:
    opts = parse("enhance", {"owner": "ana", "imagen-source": "gs://b/x"})  # not ours / a result's key
    assert opts == Options() and opts.record() == {}
    assert opts.result_format("enhance", alpha=False) is FORMATS["JPEG"]
    assert opts.result_format("enhance", alpha=True) is FORMATS["PNG"]  # transparency is kept
    assert opts.result_format("background_remove", alpha=True) is FORMATS["PNG"]


@pytest.mark.parametrize(
    ("meta", "record"),
    [
        ({"imagen-format": "WEBP"}, {"imagen-format": "webp"}),
        ({"imagen-format": "jpg", "imagen-quality": "70"}, {"imagen-format": "jpeg", "imagen-quality": "70"}),
        (
            {"imagen-format": "avif", "imagen-quality": "40"},
            {"imagen-format": "avif", "imagen-quality": "40"},
        ),
        ({"Imagen-Format": " png "}, {"imagen-format": "png"}),  # keys and values as people type them
    ],
)
def test_format_and_quality(meta: dict[str, str], record: dict[str, str]) -> None:
    assert parse("style_comic", meta).record() == record


def test_a_quality_alone_makes_a_transparent_result_webp() -> None:
    opts = parse("enhance", {"imagen-quality": "80"})
    assert opts.result_format("enhance", alpha=False) is FORMATS["JPEG"]
    assert opts.result_format("enhance", alpha=True) is FORMATS["WEBP"]
    assert opts.quality_for(FORMATS["WEBP"]) == 80


@pytest.mark.parametrize(("raw", "scale"), [("2", 2.0), ("2.5", 2.5), ("x3", 3.0), ("1", 1.0), ("4", 4.0)])
def test_upscale_scale(raw: str, scale: float) -> None:
    assert parse("upscale", {"imagen-scale": raw}).scale == scale


def test_upscale_character() -> None:
    from imagen.core.models import spec_for

    assert parse("upscale", {}).upscaler is None and spec_for("upscale").name == "upscale_fidelity"
    perceptual = parse("upscale", {"imagen-upscale": "Perceptual"})
    assert perceptual.record() == {"imagen-upscale": "perceptual"}
    assert spec_for("upscale", perceptual.upscaler).name == "upscale"
    with pytest.raises(OptionError, match="imagen-upscale must be fidelity .* or perceptual"):
        parse("upscale", {"imagen-upscale": "sharp"})
    with pytest.raises(OptionError, match="imagen-upscale applies to upscale only"):
        parse("enhance", {"imagen-upscale": "fidelity"})


def test_background_remove_options() -> None:
    opts = parse(
        "background_remove",
        {"imagen-background": "white", "imagen-crop": "subject", "imagen-crop-margin": "10%"},
    )
    assert opts.background == (255, 255, 255) and opts.crop and opts.crop_margin == 10
    assert opts.record() == {
        "imagen-background": "#ffffff",
        "imagen-crop": "subject",
        "imagen-crop-margin": "10",
    }
    assert parse("background_remove", {"imagen-background": "#0a0"}).background == (0, 170, 0)
    assert parse("background_remove", {"imagen-output": "mask"}).mask
    # opaque on a colour, a JPEG is fine
    assert parse("background_remove", {"imagen-format": "jpeg", "imagen-background": "#123456"}).format
    assert parse("background_remove", {"imagen-background": "transparent"}).background is None


@pytest.mark.parametrize(
    ("model", "meta", "message"),
    [
        (
            "enhance",
            {"imagen-format": "gif"},
            "imagen-format must be one of jpeg, png, webp, avif; got 'gif'",
        ),
        ("enhance", {"imagen-quality": "0"}, "imagen-quality must be a number from 1 to 100"),
        ("enhance", {"imagen-quality": "high"}, "imagen-quality must be a number from 1 to 100"),
        ("enhance", {"imagen-quality": "80.5"}, "imagen-quality must be a whole number"),
        (
            "enhance",
            {"imagen-format": "png", "imagen-quality": "80"},
            "imagen-quality applies to jpeg, webp and avif",
        ),
        ("upscale", {"imagen-scale": "5"}, "imagen-scale must be a number from 1 to 4"),
        ("upscale", {"imagen-scale": "0.5"}, "imagen-scale must be a number from 1 to 4"),
        ("upscale", {"imagen-scale": "nan"}, "imagen-scale must be a number from 1 to 4"),
        (
            "enhance",
            {"imagen-scale": "2"},
            "imagen-scale applies to upscale only; the options for enhance are",
        ),
        ("upscale", {"imagen-crop": "subject"}, "imagen-crop applies to background_remove only"),
        ("enhance", {"imagen-sacle": "2"}, "unknown option imagen-sacle"),
        ("background_remove", {"imagen-background": "#12345"}, "imagen-background must be an opaque colour"),
        (
            "background_remove",
            {"imagen-background": "#11223344"},
            "imagen-background must be an opaque colour",
        ),
        ("background_remove", {"imagen-crop": "face"}, "imagen-crop must be subject"),
        ("background_remove", {"imagen-crop-margin": "10"}, "imagen-crop-margin needs imagen-crop=subject"),
        (
            "background_remove",
            {"imagen-crop": "subject", "imagen-crop-margin": "150"},
            "imagen-crop-margin must be a number from 0 to 100",
        ),
        (
            "background_remove",
            {"imagen-output": "matte"},
            "imagen-output must be image (the default) or mask",
        ),
        (
            "background_remove",
            {"imagen-output": "mask", "imagen-background": "white"},
            "imagen-background cannot be used with imagen-output=mask",
        ),
        (
            "background_remove",
            {"imagen-format": "jpeg"},
            "imagen-format=jpeg cannot hold background_remove's",
        ),
    ],
)
def test_bad_values_name_the_key_and_what_is_allowed(model: str, meta: dict[str, str], message: str) -> None:
    with pytest.raises(OptionError) as caught:
        parse(model, meta)
    assert message in str(caught.value)


def test_a_record_parses_back_to_the_same_options() -> None:
    meta = {"imagen-format": "webp", "imagen-quality": "75", "imagen-scale": "2.5"}
    opts = parse("upscale", meta)
    assert options.from_record("upscale", opts.record()) == opts


def test_the_formats_a_result_may_have() -> None:
    assert [f.name for f in Options().result_formats("enhance")] == ["JPEG", "PNG"]
    assert [f.name for f in parse("enhance", {"imagen-format": "avif"}).result_formats("enhance")] == ["AVIF"]
    assert [f.name for f in Options().result_formats("background_remove")] == ["PNG"]


def test_the_core_reads_colours_without_pillow() -> None:
    """The CLI installs the core without the image libraries, and checks -o background=… with it."""
    import subprocess
    import sys

    code = (
        "import sys, imagen.core.options; print(sorted(m for m in sys.modules if m.split('.')[0] == 'PIL'))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"


COLOURS = [
    "white", "WHITE", "Red", "rebeccapurple", "lightgoldenrodyellow", "grey", "gray",
    "#fff", "#FFF", "#0a0", "#0a0f", "#0a08", "#123456", "#ABCDEF", "#123456ff", "#12345680",
    "#12345", "#1234567", "#ggg", "fff", "#", "",
    "rgb(1,2,3)", "rgb( 10 , 20 , 30 )", "RGB(255,255,255)", "rgb(0%,50%,100%)", "rgb(1, 2)",
    "rgba(1,2,3,255)", "rgba(1,2,3,4)", "rgb(1.5,2,3)",
    "hsl(120,100%,25%)", "hsl(0, 0%, 50%)", "hsl(359.5,50.5%,50%)", "hsl(400,100%,50%)",
    "hsv(60,100%,100%)", "hsb(200,30%,40%)", "hsv(0,0%,0%)",
    "transparentish", "not-a-colour", "white ", "x" * 101,
]  # fmt: skip


@pytest.mark.parametrize("spec", COLOURS + sorted(options.CSS_COLOURS))
def test_colours_read_as_pillow_reads_them(spec: str) -> None:
    """Every form Pillow's ImageColor reads (the options took it before), read the same."""
    image_color = pytest.importorskip("PIL.ImageColor")
    try:
        expected: tuple[int, ...] | None = image_color.getrgb(spec)
    except ValueError:
        expected = None
    try:
        got: tuple[int, ...] | None = options.rgb(spec)
    except ValueError:
        got = None
    assert got == expected


@pytest.mark.parametrize("spec", ["rgb(300,0,0)", "rgb(101%,0%,0%)", "rgba(0,0,0,256)", "hsl(0,100%,150%)"])
def test_a_colour_component_over_255_is_refused(spec: str) -> None:
    """Pillow gives (300, 0, 0) back; a background colour of that would write `#12c0000`."""
    with pytest.raises(OptionError, match="imagen-background must be an opaque colour"):
        parse("background_remove", {"imagen-background": spec})
