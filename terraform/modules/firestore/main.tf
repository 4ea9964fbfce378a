# Firestore in native mode, and the composite indexes the job queries need.
resource "google_firestore_database" "default" {
  #checkov:skip=CKV_GCP_138:Point-in-time recovery is a cost choice: a job document holds the status and timings of work whose source and result stay in the bucket (each result carries its job id, source and model version as metadata); a lost document loses history, not images.
  project                 = var.project_id
  name                    = "(default)"
  location_id             = var.location
  type                    = "FIRESTORE_NATIVE"
  deletion_policy         = "ABANDON"
  delete_protection_state = "DELETE_PROTECTION_ENABLED"
}

# Recent jobs of one status (imagen jobs --status failed), newest first.
resource "google_firestore_index" "jobs_by_status" {
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = var.jobs_collection

  fields {
    field_path = "status"
    order      = "ASCENDING"
  }
  fields {
    field_path = "created_at"
    order      = "DESCENDING"
  }
}

# Recent jobs of one model and status, newest first.
resource "google_firestore_index" "jobs_by_model_status" {
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = var.jobs_collection

  fields {
    field_path = "model"
    order      = "ASCENDING"
  }
  fields {
    field_path = "status"
    order      = "ASCENDING"
  }
  fields {
    field_path = "created_at"
    order      = "DESCENDING"
  }
}

# The reconciler: running jobs by lease end, queued jobs by last update.
resource "google_firestore_index" "jobs_by_status_lease" {
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = var.jobs_collection

  fields {
    field_path = "status"
    order      = "ASCENDING"
  }
  fields {
    field_path = "lease_until"
    order      = "ASCENDING"
  }
}

resource "google_firestore_index" "jobs_by_status_updated" {
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = var.jobs_collection

  fields {
    field_path = "status"
    order      = "ASCENDING"
  }
  fields {
    field_path = "updated_at"
    order      = "ASCENDING"
  }
}

# The HTTP API's "list my jobs": one caller's jobs (owner, the identity that created them), newest first.
resource "google_firestore_index" "jobs_by_owner" {
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = var.jobs_collection

  fields {
    field_path = "owner"
    order      = "ASCENDING"
  }
  fields {
    field_path = "created_at"
    order      = "DESCENDING"
  }
}

# … of one model (`?model=`). With `?status=` too, Firestore merges these with jobs_by_status
# (equality filters on the same order): no index per combination.
resource "google_firestore_index" "jobs_by_owner_model" {
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = var.jobs_collection

  fields {
    field_path = "owner"
    order      = "ASCENDING"
  }
  fields {
    field_path = "model"
    order      = "ASCENDING"
  }
  fields {
    field_path = "created_at"
    order      = "DESCENDING"
  }
}
