# Firestore in native mode; the composite indexes the job queries need (each leads with the
# job's shard, so writes of a growing timestamp spread over 4 ranges); no single-field index on
# any job field (none is queried alone); and a TTL policy on expire_at.
resource "google_firestore_database" "default" {
  #checkov:skip=CKV_GCP_138:Point-in-time recovery is a cost choice: a job document holds the status and timings of work whose source and result stay in the bucket (each result carries its job id, source and model version as metadata); a lost document loses history, not images.
  project                 = var.project_id
  name                    = "(default)"
  location_id             = var.location
  type                    = "FIRESTORE_NATIVE"
  deletion_policy         = "ABANDON"
  delete_protection_state = "DELETE_PROTECTION_ENABLED"
}

locals {
  # One per query shape of functions/imagen/cloud/jobqueries.py (QUERIES): equality fields, then
  # the field it orders or ranges on. tests/terraform checks the two lists agree.
  job_indexes = {
    by_created              = { equal = ["shard"], order = "created_at", direction = "DESCENDING" }
    by_status               = { equal = ["shard", "status"], order = "created_at", direction = "DESCENDING" }
    by_model                = { equal = ["shard", "model"], order = "created_at", direction = "DESCENDING" }
    by_model_status         = { equal = ["shard", "model", "status"], order = "created_at", direction = "DESCENDING" }
    by_owner                = { equal = ["shard", "owner"], order = "created_at", direction = "DESCENDING" }
    by_owner_status         = { equal = ["shard", "owner", "status"], order = "created_at", direction = "DESCENDING" }
    by_owner_model          = { equal = ["shard", "owner", "model"], order = "created_at", direction = "DESCENDING" }
    by_owner_model_status   = { equal = ["shard", "owner", "model", "status"], order = "created_at", direction = "DESCENDING" }
    running_by_lease        = { equal = ["shard", "status"], order = "lease_until", direction = "ASCENDING" }
    queued_by_last_update   = { equal = ["shard", "status"], order = "updated_at", direction = "ASCENDING" }
    publish_pending         = { equal = ["shard", "status", "publish_pending"], order = "updated_at", direction = "ASCENDING" }
    by_last_update          = { equal = ["shard"], order = "updated_at", direction = "DESCENDING" }
  }
  # Every field a job document holds (imagen.jobs.model.Job): none is queried alone, so none gets
  # the automatic single-field indexes (each write of a job would update ~40 index entries, and
  # those on timestamps that only grow would hold the collection to ~500 writes a second).
  job_fields = [
    "job_id", "model", "bucket", "object", "generation", "status", "source_uri", "size_bytes",
    "options", "options_refused", "owner", "shard", "run", "attempts", "claims", "retry_floor",
    "requeues", "holder", "created_at", "updated_at", "started_at", "renewed_at", "finished_at",
    "expire_at", "lease_until", "waiting_for", "waiting_since", "waits", "last_error", "reason",
    "publish_pending", "event_published", "progress", "result_uri", "model_version", "timings",
    "output", "time_plan", "history", "republished_at", "republishes",
  ]
}

resource "google_firestore_index" "jobs" {
  for_each   = local.job_indexes
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = var.jobs_collection

  dynamic "fields" {
    for_each = each.value.equal
    content {
      field_path = fields.value
      order      = "ASCENDING"
    }
  }
  fields {
    field_path = each.value.order
    order      = each.value.direction
  }
}

# No single-field indexes on the job fields; on expire_at, the TTL policy (a job is deleted
# jobs_ttl_days after it ends: the functions set expire_at when it does).
resource "google_firestore_field" "job_fields" {
  for_each   = toset(local.job_fields)
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = var.jobs_collection
  field      = each.value

  index_config {}

  dynamic "ttl_config" {
    for_each = each.value == "expire_at" ? [1] : []
    content {}
  }
}
