"""The Firestore module against the code: an index for every query shape and none idle, no
single-field index on any job field, a TTL policy on the field the functions set."""

from __future__ import annotations

import dataclasses

from imagen.core.config import Config
from imagen.jobs.model import QUERIES, Job

from .hcl import TERRAFORM, load, one

FIRESTORE = load(TERRAFORM / "modules" / "firestore")


def test_every_query_shape_has_its_index_and_every_index_a_query() -> None:
    indexes = FIRESTORE.locals()["job_indexes"]
    shapes = {(tuple(i["equal"]), i["order"]) for i in indexes.values()}
    assert shapes == set(QUERIES)
    newest_first = {"created_at"}  # the listings; and the console's feed of what changed:
    for name, index in indexes.items():
        assert index["equal"][0] == "shard", f"{name}: a growing timestamp's index leads with the shard"
        feed = index["equal"] == ["shard"] and index["order"] == "updated_at"
        expected = (
            "DESCENDING" if index["order"] in newest_first or feed else "ASCENDING"
        )  # the reconciler's: oldest
        assert index["direction"] == expected, name
    resource = FIRESTORE.resource("google_firestore_index", "jobs")
    assert one(resource["for_each"]) == "${local.job_indexes}"
    assert one(resource["collection"]) == "${var.jobs_collection}"


def test_no_job_field_gets_single_field_indexes() -> None:
    fields = FIRESTORE.locals()["job_fields"]
    assert sorted(fields) == sorted(f.name for f in dataclasses.fields(Job))
    exempt = FIRESTORE.resource("google_firestore_field", "job_fields")
    assert one(exempt["for_each"]) == "${toset(local.job_fields)}"
    assert exempt["index_config"] == [{}]  # empty: no single-field index at all


def test_an_ended_job_expires_after_the_configured_days() -> None:
    exempt = FIRESTORE.resource("google_firestore_field", "job_fields")
    ttl = one(exempt["dynamic"])["ttl_config"]
    assert one(ttl["for_each"]) == '${each.value == "expire_at" ? [1] : []}'
    root, functions = load(TERRAFORM), load(TERRAFORM / "modules" / "functions")
    assert one(root.named("variable")["jobs_ttl_days"]["default"]) == Config.job_retention_days
    assert one(root.named("module")["functions"]["jobs_ttl_days"]) == "${var.jobs_ttl_days}"
    env = functions.locals()["common_env"]
    assert env["JOB_RETENTION_DAYS"] == "${tostring(var.jobs_ttl_days)}"
