"""Tiles cover the image, blend seamlessly and scale with the model."""

from __future__ import annotations

import numpy as np
import pytest

from imagen.image.tiling import Stitcher, TileGrid, starts


@pytest.mark.parametrize(
    ("length", "tile", "overlap"),
    [(100, 128, 16), (128, 128, 16), (129, 128, 16), (1000, 128, 16), (4000, 128, 16)],
)
def test_starts_cover_with_overlap(length: int, tile: int, overlap: int) -> None:
    s = starts(length, tile, overlap)
    assert s[0] == 0
    assert s[-1] + tile >= length
    assert all(b - a <= tile - overlap for a, b in zip(s, s[1:], strict=False))


def strips(image: np.ndarray, scale: int, model, grid: TileGrid | None = None) -> list[np.ndarray]:
    grid = grid or TileGrid(image.shape[0], image.shape[1], 128, 16)
    st = Stitcher(grid, scale, 3)
    out = []
    for y in grid.ys:
        for x, tile in zip(grid.xs, grid.tiles(image, y, grid.xs), strict=True):
            st.add(y, x, model(tile))
        out.append(st.finish_row(y))
    return out


def stitched(image: np.ndarray, grid: TileGrid, model) -> np.ndarray:
    return np.concatenate(strips(image, 1, model, grid))


def run(image: np.ndarray, scale: int, model) -> np.ndarray:
    return np.concatenate(strips(image, scale, model))


def noise(h: int, w: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize(("h", "w"), [(50, 70), (128, 128), (300, 517)])
def test_identity_model_reconstructs_exactly(h: int, w: int) -> None:
    img = noise(h, w)
    assert np.array_equal(run(img, 1, lambda t: t), img)


def test_scaled_model_matches_whole_image() -> None:
    img = noise(260, 390)
    up = run(img, 2, lambda t: t.repeat(2, 0).repeat(2, 1))
    assert up.shape == (520, 780, 3)
    assert np.array_equal(up, img.repeat(2, 0).repeat(2, 1))


def test_tile_border_artefacts_are_hidden_by_the_blend() -> None:
    img = np.full((400, 400, 3), 100, np.uint8)

    def bad_border(t: np.ndarray) -> np.ndarray:  # a model that ruins its outer 3 pixels
        out = t.copy()
        out[:3], out[-3:], out[:, :3], out[:, -3:] = 0, 0, 0, 0
        return out

    out = run(img, 1, bad_border)
    inner = out[3:-3, 3:-3].astype(int)  # the image's own edges have no neighbour to blend with
    assert np.abs(inner - 100).max() <= 1


def test_positions_place_tiles_in_the_image() -> None:
    grid = TileGrid(300, 200, 128, 16)
    pos = grid.positions(grid.ys[-1], grid.xs)
    assert pos.shape == (len(grid.xs), 4)
    assert pos[0].tolist() == [grid.ys[-1], 0, 300, 200]


def test_memory_is_one_tile_row_and_rows_leave_as_they_finish() -> None:
    img = noise(1000, 300)
    parts = strips(img, 1, lambda t: t)
    assert len(parts) == len(TileGrid(1000, 300, 128, 16).ys)
    assert all(len(p) <= 128 for p in parts) and sum(len(p) for p in parts) == 1000
    assert Stitcher(TileGrid(1000, 300, 128, 16), 4, 3)._acc.nbytes == Stitcher.buffer_bytes(128, 4, 300, 3)


def test_a_long_thin_strip_is_never_padded_as_a_whole() -> None:
    img = noise(1, 5000)
    grid = TileGrid(1, 5000, 128, 16)
    assert grid.tile_at(img, 0, grid.xs[-1]).shape == (128, 128, 3)  # each tile padded alone
    st = Stitcher(grid, 2, 3)
    assert st._acc.shape == (2, 10_000, 3)  # the output's 2 rows, not a tile's 256
    assert np.array_equal(run(img, 2, lambda t: t.repeat(2, 0).repeat(2, 1)), img.repeat(2, 0).repeat(2, 1))


def test_image_levels_are_whole_image_percentiles() -> None:
    from imagen.inference.runner import image_levels

    img = np.zeros((600, 900, 3), np.uint8)
    img[:, :, 0] = np.linspace(20, 230, 900).astype(np.uint8)[None, :]  # red spans 20..230
    img[:, :, 2] = 128  # blue is flat
    levels = image_levels(img)
    assert levels.shape == (1, 6)
    low, high = levels[0, :3] * 255, levels[0, 3:] * 255
    assert abs(low[0] - 21) < 3 and abs(high[0] - 229) < 3
    assert low[2] == high[2] == 128


def box_blur(radius: int):  # a model whose every output pixel reads `radius` pixels around it
    def model(t: np.ndarray) -> np.ndarray:
        padded = np.pad(t.astype(np.float32), ((radius, radius), (radius, radius), (0, 0)), mode="edge")
        out = np.zeros(t.shape, np.float32)
        for dy in range(-radius, radius + 1):
            for dx in range(-radius, radius + 1):
                out += padded[radius + dy : radius + dy + t.shape[0], radius + dx : radius + dx + t.shape[1]]
        return np.rint(out / (2 * radius + 1) ** 2).astype(np.uint8)

    return model


@pytest.mark.parametrize("radius", [3, 7, 18])
def test_a_margin_of_the_receptive_field_gives_the_whole_image_pass(radius: int) -> None:
    img = np.asarray(noise(300, 430), np.uint8)
    whole = box_blur(radius)(img).astype(int)
    exact = stitched(img, TileGrid(300, 430, 128, 2 * radius + 8, radius), box_blur(radius))
    assert np.abs(exact.astype(int) - whole).max() <= 1
    old = stitched(img, TileGrid(300, 430, 128, 16), box_blur(radius))  # the old ramp: a margin of 4
    assert (np.abs(old.astype(int) - whole).max() > 1) == (radius > 4)


def test_a_margin_must_leave_room_to_blend() -> None:
    with pytest.raises(ValueError, match="leaves no blend"):
        TileGrid(500, 500, 128, 20, 10)


def test_the_palette_is_the_images_own_colours_the_same_every_time() -> None:
    from imagen.inference.runner import image_palette

    img = np.zeros((300, 400, 3), np.uint8)
    img[:, :200] = (200, 40, 30)  # red half
    img[:150, 200:] = (20, 60, 180)  # blue quarter
    img[150:, 200:] = (240, 240, 230)  # paper quarter
    palette = image_palette(img, 4)
    assert np.array_equal(palette, image_palette(img, 4))  # deterministic: every tile gets these
    colours = (palette.reshape(-1, 3) * 255).round().astype(int)
    for colour in ((200, 40, 30), (20, 60, 180), (240, 240, 230)):
        assert np.abs(colours - colour).sum(axis=1).min() <= 2  # each region's colour is one of them
    lumas = colours @ np.array([0.299, 0.587, 0.114])
    assert list(lumas) == sorted(lumas)  # darkest first
