"""gzip-encoded uploads inflate through a counting reader that stops at the input limit."""

from __future__ import annotations

import gzip

import pytest

from imagen.cloud.objects import inflate
from imagen.core.errors import BadInput
from tests import hostile


def test_members_inflate_in_order() -> None:
    assert inflate(gzip.compress(b"abc") + gzip.compress(b"def"), 100) == b"abcdef"


def test_a_bomb_stops_at_the_limit_without_inflating_the_rest() -> None:
    bomb = hostile.gzip_bomb()
    assert 2_500_000 < len(bomb) < 3_500_000
    with pytest.raises(BadInput, match="inflates to over the limit of 8388608 bytes"):
        inflate(bomb, 8 * 1024 * 1024)


@pytest.mark.parametrize(
    ("data", "reason"), [(gzip.compress(b"x" * 1000)[:-20], "truncated"), (b"\x1f\x8bnope", "corrupt")]
)
def test_broken_gzip_is_bad_input(data: bytes, reason: str) -> None:
    with pytest.raises(BadInput, match=reason):
        inflate(data, 10**6)


def test_trailing_nul_padding_is_allowed_as_gzip_allows_it() -> None:
    assert inflate(gzip.compress(b"abc") + bytes(512), 100) == b"abc"


def test_incompressible_data_inflates_whole() -> None:
    import os

    data = os.urandom(3_000_000)
    assert inflate(gzip.compress(data), 4_000_000) == data


def test_many_tiny_members_inflate_in_one_pass() -> None:
    # 4 MiB of empty members: the quadratic scan for padding took ~4 minutes on it.
    assert inflate(hostile.gzip_many_members(4, b"abc"), 100) == b"abc"


@pytest.mark.parametrize(
    ("data", "content"),
    [
        (gzip.compress(b"", mtime=0), b""),  # its trailer (CRC and size) is 8 NULs: not padding
        (gzip.compress(b"", mtime=0) + gzip.compress(b"x", mtime=0), b"x"),
        (gzip.compress(b"abc") + bytes(200_000), b"abc"),  # padding longer than one step back
        (bytes(1000), b""),  # nothing but padding
    ],
)
def test_padding_starts_after_the_last_member(data: bytes, content: bytes) -> None:
    assert inflate(data, 100) == content
