# The bucket users upload to: model prefixes in, results/ out. Never public.
resource "google_storage_bucket" "images" {
  #checkov:skip=CKV_GCP_78:Versioning is the bucket_versioning variable; each upload generation is its own job and results can be recomputed.
  #checkov:skip=CKV_GCP_62:Access is logged by Cloud Audit Logs: Data Access logs for Cloud Storage are on (google_project_iam_audit_config.storage, variable data_access_logs), not a second bucket.
  project                     = var.project_id
  name                        = var.name
  location                    = var.location
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.force_destroy
  labels                      = var.labels

  versioning {
    enabled = var.versioning
  }

  dynamic "lifecycle_rule" {
    for_each = var.results_ttl_days > 0 ? [var.results_ttl_days] : []
    content {
      condition {
        age            = lifecycle_rule.value
        matches_prefix = ["results/"]
      }
      action {
        type = "Delete"
      }
    }
  }
}

# Data Access audit logs for Cloud Storage: who read and wrote which object (the access log).
resource "google_project_iam_audit_config" "storage" {
  count   = var.data_access_logs ? 1 : 0
  project = var.project_id
  service = "storage.googleapis.com"
  audit_log_config {
    log_type = "DATA_READ"
  }
  audit_log_config {
    log_type = "DATA_WRITE"
  }
}
