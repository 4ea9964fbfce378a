# The bucket users upload to: model prefixes in, results/ out. Never public.
resource "google_storage_bucket" "images" {
  #checkov:skip=CKV_GCP_78:Versioning is the bucket_versioning variable; each upload generation is its own job and results can be recomputed.
  #checkov:skip=CKV_GCP_62:Access logging goes to Cloud Audit Logs (Data Access logs), not a second bucket.
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
