"""functions/requirements.txt is the hashed lock of functions/requirements.in, and current.

The deployed archive and every session that runs the functions install the lock with its hashes
checked (noxfile.py `_locked`); `python3 -m nox -s lock` rewrites it. Read as text: no network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
SOURCE = "functions/requirements.in"  # as pip-compile names it in a `# via` line


@dataclass(frozen=True)
class Locked:
    version: str
    hashes: tuple[str, ...]
    via: tuple[str, ...]


def direct() -> dict[str, Requirement]:
    """The source's requirements by normalized name (comments dropped)."""
    out: dict[str, Requirement] = {}
    for line in (FUNCTIONS / "requirements.in").read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            req = Requirement(text)
            out[canonicalize_name(req.name)] = req
    return out


def _split_lock() -> list[str]:
    """The lock's header (its leading comment), then one text per entry."""
    return re.split(r"^(?=[A-Za-z0-9])", (FUNCTIONS / "requirements.txt").read_text(), flags=re.M)


def locked() -> dict[str, Locked]:
    """The lock's entries by normalized name: `name==version \\ --hash=… # via …`."""
    out: dict[str, Locked] = {}
    for entry in _split_lock()[1:]:
        spec = re.match(r"([A-Za-z0-9][\w.-]*)==(\S+)", entry)
        assert spec, f"a locked requirement not pinned with ==: {entry.splitlines()[0]}"
        hashes = tuple(re.findall(r"--hash=sha256:([0-9a-f]{64})\b", entry))
        via = tuple(m.strip() for m in re.findall(r"^[ \t]*#[ \t]+(?:via[ \t]+)?(\S.*)$", entry, re.M))
        out[canonicalize_name(spec[1])] = Locked(spec[2], hashes, via)
    return out


def test_the_lock_parses_into_entries() -> None:
    lock = locked()
    assert len(lock) > len(direct()), "the lock holds the whole tree, not only the direct pins"
    assert "functions-framework" in lock and "werkzeug" in lock  # a direct pin and a transitive one


def test_every_direct_requirement_is_locked_at_a_version_it_allows() -> None:
    lock = locked()
    missing = sorted(set(direct()) - set(lock))
    assert not missing, f"in requirements.in but not in the lock (run `nox -s lock`): {missing}"
    off = {
        name: (str(req.specifier), lock[name].version)
        for name, req in direct().items()
        if not req.specifier.contains(lock[name].version, prereleases=True)
    }
    assert not off, f"locked at versions requirements.in does not allow (run `nox -s lock`): {off}"


def test_the_lock_names_exactly_the_direct_requirements_as_direct() -> None:
    """A pin removed from requirements.in shows here until the lock is rewritten."""
    from_source = {name for name, entry in locked().items() if f"-r {SOURCE}" in entry.via}
    assert from_source == set(direct())


def test_every_locked_requirement_carries_a_hash() -> None:
    bare = sorted(name for name, entry in locked().items() if not entry.hashes)
    assert not bare, f"locked without --hash=sha256: (pip would refuse the whole file): {bare}"


def test_flask_is_locked_at_3_1_or_later() -> None:
    """The API sets request.max_content_length per request (imagen/handlers/api.py): Flask 3.1."""
    assert Version(locked()["flask"].version) >= Version("3.1")
    assert direct()["flask"].specifier.contains("3.1.0")
    assert not direct()["flask"].specifier.contains("3.0.3")


def test_the_header_says_how_to_rewrite_it() -> None:
    header = _split_lock()[0]
    assert "python3 -m nox -s lock" in header
    assert "Python 3.11" in header  # the functions' runtime (terraform: python311)
