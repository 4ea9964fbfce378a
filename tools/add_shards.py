"""Give every job document from before shards its `shard` (a one-off, after upgrading).

Queries ask each shard (imagen.jobs.model.SHARDS), so a document without the field is seen by no
listing and by no reconciler pass until its next transition adds it. This reads the collection
once (only the `shard` field) and writes the missing ones, 500 to a batch:

    python -m tools.add_shards --project my-project [--collection jobs] [--dry-run]
"""

from __future__ import annotations

import argparse
import sys

from google.cloud import firestore

from imagen.jobs.model import shard_of


def add_shards(db: firestore.Client, collection: str, dry_run: bool = False) -> tuple[int, int]:
    """(documents read, documents given a shard)."""
    seen = added = 0
    batch = db.batch()
    for snap in db.collection(collection).select(["shard"]).stream():
        seen += 1
        if "shard" in (snap.to_dict() or {}):
            continue
        added += 1
        if not dry_run:
            batch.update(snap.reference, {"shard": shard_of(snap.id)})
            if added % 500 == 0:
                batch.commit()
                batch = db.batch()
    if not dry_run and added % 500:
        batch.commit()
    return seen, added


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", required=True)
    parser.add_argument("--collection", default="jobs")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    seen, added = add_shards(firestore.Client(project=args.project), args.collection, args.dry_run)
    print(f"{seen} job documents, {added} {'would be ' if args.dry_run else ''}given a shard")
    return 0


if __name__ == "__main__":
    sys.exit(main())
