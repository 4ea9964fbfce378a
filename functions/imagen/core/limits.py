"""Sizes fixed by the code that more than one layer relies on."""

from __future__ import annotations

UPLOAD_CHUNK_BYTES = 4 * 1024 * 1024  # a result under this is one request; larger ones stream
BLOCK_BYTES = 1024 * 1024  # strips go to an encoder in blocks of at most this many bytes
