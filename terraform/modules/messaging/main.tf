# A topic per model, an explicit push subscription per model (Eventarc's implicit ones have no
# dead-letter policy), the dead-letter topic and the completion-events topic.
locals {
  pubsub_agent = "serviceAccount:service-${var.project_number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_pubsub_topic" "jobs" {
  #checkov:skip=CKV_GCP_83:Google-managed encryption; job messages carry a job id, model, bucket, object name and generation, no image data.
  for_each = toset(var.models)
  project  = var.project_id
  name     = "imagen-${each.key}"
  labels   = var.labels
}

resource "google_pubsub_topic" "dead_letter" {
  #checkov:skip=CKV_GCP_83:Google-managed encryption; job messages carry a job id, model, bucket, object name and generation, no image data.
  project = var.project_id
  name    = "imagen-dead-letter"
  labels  = var.labels
}

resource "google_pubsub_topic" "events" {
  #checkov:skip=CKV_GCP_83:Google-managed encryption; completion events carry job ids, source and result URIs, timings and failure reasons (text about the file), no image data.
  project = var.project_id
  name    = "imagen-events"
  labels  = var.labels
}

resource "google_pubsub_subscription" "jobs" {
  for_each                   = toset(var.models)
  project                    = var.project_id
  name                       = "imagen-${each.key}-worker"
  topic                      = google_pubsub_topic.jobs[each.key].id
  ack_deadline_seconds       = var.ack_deadline_seconds
  message_retention_duration = "604800s" # Pub/Sub's most; a job waits for Triton at most this long
  labels                     = var.labels

  push_config {
    push_endpoint = var.job_push_endpoints[each.key]
    oidc_token {
      service_account_email = var.push_service_account
    }
  }

  retry_policy {
    minimum_backoff = var.minimum_backoff
    maximum_backoff = var.maximum_backoff
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_subscription" "dead_letter" {
  project              = var.project_id
  name                 = "imagen-dead-letter-handler"
  topic                = google_pubsub_topic.dead_letter.id
  ack_deadline_seconds = 60
  labels               = var.labels

  push_config {
    push_endpoint = var.dead_letter_endpoint
    oidc_token {
      service_account_email = var.push_service_account
    }
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  expiration_policy {
    ttl = ""
  }
}

# The Pub/Sub service agent moves undeliverable messages: it must publish to the dead-letter
# topic and acknowledge on the source subscriptions.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  for_each     = toset(var.models)
  project      = var.project_id
  subscription = google_pubsub_subscription.jobs[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# The reconciler's clock: Cloud Scheduler publishes a tick, a push subscription delivers it.
resource "google_pubsub_topic" "reconcile" {
  #checkov:skip=CKV_GCP_83:Carries only a constant tick; Google-managed encryption is enough.
  project = var.project_id
  name    = "imagen-reconcile"
  labels  = var.labels
}

resource "google_pubsub_subscription" "reconcile" {
  project              = var.project_id
  name                 = "imagen-reconcile-handler"
  topic                = google_pubsub_topic.reconcile.id
  ack_deadline_seconds = 120
  labels               = var.labels

  push_config {
    push_endpoint = var.reconcile_endpoint
    oidc_token {
      service_account_email = var.push_service_account
    }
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "60s"
  }

  expiration_policy {
    ttl = ""
  }
}

resource "google_cloud_scheduler_job" "reconcile" {
  project     = var.project_id
  region      = var.region
  name        = "imagen-reconcile"
  description = "Publishes jobs no message will move on (see docs/operating.md, Job states and lifecycle)."
  schedule    = var.reconcile_schedule

  pubsub_target {
    topic_name = google_pubsub_topic.reconcile.id
    data       = base64encode("tick")
  }
}
