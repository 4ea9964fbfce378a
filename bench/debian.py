"""Test data out of pinned Debian packages (`apt-get download`), read only by the quality bench.

The package must be in apt's sources (Debian 12, bookworm, for the one below). Its .deb is
checked against a pinned sha256 and cached; files come out through `dpkg-deb --fsys-tarfile`,
which reads any compression a .deb may use.
"""

from __future__ import annotations

import hashlib
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DebianPackage:
    name: str
    version: str
    sha256: str  # of the .deb

    @property
    def spec(self) -> str:
        return f"{self.name}={self.version}"


# Tux Paint's stamps: real photos cut out by hand with an 8-bit alpha (GPL-2+), Debian 12.
TUXPAINT_STAMPS = DebianPackage(
    "tuxpaint-stamps-default",
    "2022.06.04-1",
    "6db6c1bfc870a47f1499d6203b083522eacb57c5f9c87d468f2e92eb6d9d5f34",
)


def deb(pkg: DebianPackage, cache: Path) -> Path:
    """The package's .deb in `cache`, fetched with `apt-get download` when missing, checked."""
    folder = cache / "debs"
    pattern = f"{pkg.name}_{pkg.version.replace(':', '%3a')}_*.deb"
    found = sorted(folder.glob(pattern))
    if not found:
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "download", "-q", pkg.spec], cwd=folder, check=True)
        found = sorted(folder.glob(pattern))
    if not found:
        raise FileNotFoundError(f"no .deb for {pkg.spec} in {folder}")
    digest = hashlib.sha256(found[0].read_bytes()).hexdigest()
    if digest != pkg.sha256:
        raise ValueError(f"{found[0]}: sha256 {digest}, expected {pkg.sha256}")
    return found[0]


def files(pkg: DebianPackage, paths: list[str], cache: Path) -> dict[str, Path]:
    """Files of the package (paths without the leading /), cached under
    cache/files/<package>/<version>/, taken in one pass over its data when any is missing."""
    out = {path: cache / "files" / pkg.name / pkg.version / path for path in paths}
    missing = {path for path, dest in out.items() if not dest.exists()}
    if not missing:
        return out
    tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb(pkg, cache))], stdout=subprocess.PIPE)
    assert tar.stdout is not None
    with tar.stdout, tarfile.open(fileobj=tar.stdout, mode="r|") as stream:
        for info in stream:
            path = info.name.removeprefix("./")
            member = stream.extractfile(info) if path in missing and info.isfile() else None
            if member is None:
                continue
            dest = out[path]
            dest.parent.mkdir(parents=True, exist_ok=True)
            partial = dest.with_name(dest.name + ".part")
            partial.write_bytes(member.read())
            partial.replace(dest)  # a cached file is always whole
            missing.discard(path)
    if tar.wait() != 0:
        raise RuntimeError(f"dpkg-deb could not read {pkg.spec}")
    if missing:
        raise FileNotFoundError(f"not in {pkg.spec}: {sorted(missing)}")
    return out
