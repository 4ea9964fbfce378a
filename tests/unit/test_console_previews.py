"""The console's previews are bounded: at most PREVIEW_MAX_SIDE px, a crop at most CROP_MAX_SIDE,
and a large image is never decoded whole (peak memory measured in a process of its own)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import pyvips

from imagen_cli.console import previews
from imagen_cli.console.previews import CROP_MAX_SIDE, PREVIEW_MAX_SIDE, Header, PreviewError

ROOT = Path(__file__).resolve().parents[2]
# The most a process making one preview may hold (its own baseline, python and libvips loaded,
# is ~25 MiB). The 192 MP image's pixels alone are 576 MB.
PEAK_MIB = 200


def _pattern(width: int, height: int, bands: int = 3) -> pyvips.Image:
    x = pyvips.Image.xyz(width, height)
    grey = ((x[0] ^ x[1]) & 255).cast("uchar")
    return grey.bandjoin([grey] * (bands - 1)) if bands > 1 else grey


def test_a_preview_is_bounded_and_upright(tmp_path: Path) -> None:
    path = tmp_path / "tall.jpg"
    image = _pattern(300, 200).copy()
    image.set_type(pyvips.GValue.gint_type, "orientation", 6)  # shown turned: 200 x 300
    image.jpegsave(str(path))
    head = previews.header(path)
    assert (head.width, head.height, head.orientation) == (200, 300, 6)
    small = pyvips.Image.new_from_buffer(previews.preview(path, 100)[0], "")
    assert (small.width, small.height) == (67, 100)
    whole = pyvips.Image.new_from_buffer(previews.preview(path, 10_000)[0], "")
    assert (whole.width, whole.height) == (200, 300)  # never enlarged


def test_alpha_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "cutout.png"
    _pattern(64, 64, 4).pngsave(str(path))
    assert previews.header(path).alpha
    assert pyvips.Image.new_from_buffer(previews.preview(path, 64)[0], "").hasalpha()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_crop_of_a_turned_image_is_the_upright_region(tmp_path: Path, orientation: int) -> None:
    path = tmp_path / f"o{orientation}.png"
    image = _pattern(40, 30, 1).copy()
    image = (image + pyvips.Image.xyz(40, 30)[0] * 3).cast("uchar").copy()  # no two crops alike
    image.set_type(pyvips.GValue.gint_type, "orientation", orientation)
    image.pngsave(str(path))
    upright = pyvips.Image.new_from_file(str(path)).autorot()
    data, region = previews.crop(path, 5, 7, 11, 13)
    assert region == (5, 7, 11, 13)
    got = pyvips.Image.new_from_buffer(data, "")
    want = upright.crop(5, 7, 11, 13)
    assert (got.width, got.height) == (11, 13)
    assert got.write_to_memory() == want.write_to_memory()


def test_a_crop_is_clamped_inside_and_under_the_bound() -> None:
    head = Header(3000, 2000, False)
    assert previews.clamp_region(head, 2900, -5, 5000, 100) == (3000 - CROP_MAX_SIDE, 0, CROP_MAX_SIDE, 100)
    assert previews.clamp_region(Header(100, 50, False), 10, 10, 512, 512) == (0, 0, 100, 50)


def test_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("meeting notes\n")
    with pytest.raises(PreviewError, match="not an image"):
        previews.preview(path)


MEASURE = """
import sys
from pathlib import Path
import pyvips
from imagen_cli.console import previews
previews.configure()
data, _ = previews.preview(Path(sys.argv[1]), 100000)
crop, _ = previews.crop(Path(sys.argv[1]), 4000, 3000, 512, 512)
shown = pyvips.Image.new_from_buffer(data, "")
# VmHWM: this image's own peak (ru_maxrss would carry the forking pytest's over the exec)
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(int(hwm.split()[1]) // 1024, shown.width, shown.height)
"""


@pytest.mark.parametrize(("name", "width", "height"), [("48mp.png", 8000, 6000), ("192mp.jpg", 16000, 12000)])
def test_a_large_image_is_never_decoded_whole(tmp_path: Path, name: str, width: int, height: int) -> None:
    path = tmp_path / name
    image = _pattern(width, height)
    if name.endswith(".png"):
        image.pngsave(str(path), compression=1)
    else:
        image.jpegsave(str(path), Q=80)
    run = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path)],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": f"{ROOT / 'cli'}:{ROOT / 'functions'}"},
    )
    peak_mib, shown_width, shown_height = (int(v) for v in run.stdout.split()[-3:])
    assert (shown_width, shown_height) == (PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE * 3 // 4)
    assert peak_mib < PEAK_MIB, (
        f"{name}: {peak_mib} MiB at peak against {width * height * 3 >> 20} MiB of pixels"
    )
