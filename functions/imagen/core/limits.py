"""Sizes fixed by the code that more than one layer relies on."""

from __future__ import annotations

UPLOAD_CHUNK_BYTES = 4 * 1024 * 1024  # a result under this is one request; larger ones stream
BLOCK_BYTES = 1024 * 1024  # strips go to an encoder in blocks of at most this many bytes
# Days a finished job's document is kept (Firestore's TTL deletes it after): Config's default
# (JOB_RETENTION_DAYS), and what tools that build a job store without a Config use.
JOB_RETENTION_DAYS = 30
