"""Where the CLI may write: every file it saves stays inside the folder the user named."""

from __future__ import annotations

from pathlib import Path


class OutsideOut(ValueError):
    """A result's name would put the file outside --out (`..`, an absolute path, a link out)."""


def confined(out: Path, relative: str) -> Path:
    """`out / relative`, resolved, or OutsideOut when that is not strictly inside `out`.

    A job's result name comes from its document, which anyone who can write the jobs collection
    can set: `..`, a leading `/` and links under `out` that point elsewhere are all refused.
    """
    root = out.resolve()
    dest = (root / relative).resolve()
    if dest == root or not dest.is_relative_to(root):
        raise OutsideOut(f"refused to write {relative!r}: it is not inside {out}")
    return dest
