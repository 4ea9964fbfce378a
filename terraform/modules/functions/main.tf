# Cloud Functions 2nd gen built from functions/: on_upload (Eventarc, object finalized),
# one on_job per model (invoked by its push subscription), on_dead_letter. One service
# account per role, each with only what that role touches.
data "google_project" "this" {
  project_id = var.project_id
}

data "google_storage_project_service_account" "gcs" {
  project = var.project_id
}

locals {
  common_env = {
    GOOGLE_CLOUD_PROJECT = var.project_id
    RESULT_PREFIX        = var.result_prefix
    TRITON_URL           = var.triton_url
    EVENTS_TOPIC         = var.events_topic
    MAX_INPUT_PIXELS     = tostring(var.max_input_pixels)
    MAX_ATTEMPTS         = tostring(var.max_attempts)
    MAX_OUTPUT_PIXELS    = tostring(var.max_output_pixels)
    BUCKET               = var.bucket # the reconciler finds objects with no job there
    RESULT_CACHE_CONTROL = var.result_cache_control
    JOB_RETENTION_DAYS   = tostring(var.jobs_ttl_days) # an ended job gets expire_at (Firestore TTL)
    # A job waiting for a service (Triton down) fails past this; the dead-letter handler judges it too.
    WAIT_HORIZON_S = tostring(var.wait_horizon_seconds)
  }
  # Each job's memory budget: (instance memory - the runtime's own) / concurrent jobs (Config).
  worker_memory_mb = (
    endswith(var.worker_memory, "Gi")
    ? tonumber(trimsuffix(var.worker_memory, "Gi")) * 1024
    : tonumber(trimsuffix(var.worker_memory, "Mi"))
  )
  # What a job's plan is made from: the workers run by it, and the HTTP API checks it at upload
  # (a file whose job could never run is refused before it is stored), so both get it.
  plan_env = {
    WORKER_MEMORY_MB   = tostring(local.worker_memory_mb)
    WORKER_CONCURRENCY = tostring(var.worker_concurrency)
    UPSCALE_DEFAULT    = var.upscale_default
    # A job's time plan must fit in JOB_TIME_LIMIT_S, inside the function's timeout (Config refuses
    # a limit at or past FUNCTION_TIMEOUT_S, so the two travel together).
    FUNCTION_TIMEOUT_S = tostring(var.worker_timeout_seconds)
    JOB_TIME_LIMIT_S   = tostring(var.job_time_limit_seconds)
    TILE_SECONDS       = join(",", [for m, s in var.tile_seconds : "${m}=${s}"]) # empty: the code's T4 figures
  }
  worker_env = merge(local.plan_env, {
    TRITON_PROBE_S = tostring(var.triton_probe_seconds)
    # glibc gives freed strips back to the system only with a fixed mmap threshold (docs/memory.md)
    MALLOC_MMAP_THRESHOLD_ = "1048576"
  })
  input_prefix_condition = join(" || ", [
    for m in var.models : "resource.name.startsWith(\"projects/_/buckets/${var.bucket}/objects/${m}/\")"
  ])
}

# ---- Source: keyed on the archive's md5, so a code change redeploys ----------------------
data "archive_file" "source" {
  type        = "zip"
  source_dir  = var.source_dir
  output_path = "${path.module}/.build/functions.zip"
  # Not deployed: bytecode, tool caches, the lock's input (requirements.txt is what the build
  # installs) and the local stack's ports (imagen/core/local.py, for the CLI).
  excludes = ["**/__pycache__/**", ".mypy_cache/**", "imagen.egg-info/**", "requirements.in", "imagen/core/local.py"]
}

resource "google_storage_bucket" "source" {
  #checkov:skip=CKV_GCP_62:Holds only build archives; Cloud Audit Logs cover access.
  #checkov:skip=CKV_GCP_78:Archives are immutable and keyed by md5; versioning adds nothing.
  project                     = var.project_id
  name                        = "${var.project_id}-imagen-functions-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true
  labels                      = var.labels
}

resource "google_storage_bucket_object" "source" {
  name   = "functions-${data.archive_file.source.output_md5}.zip"
  bucket = google_storage_bucket.source.name
  source = data.archive_file.source.output_path
}

# ---- Service accounts ------------------------------------------------------------------
resource "google_service_account" "upload" {
  project      = var.project_id
  account_id   = "imagen-upload"
  display_name = "imagen on_upload: reads uploads, writes jobs, publishes job messages"
}

resource "google_service_account" "worker" {
  project      = var.project_id
  account_id   = "imagen-worker"
  display_name = "imagen on_job: reads model prefixes, writes results/, updates jobs, calls Triton"
}

resource "google_service_account" "dead_letter" {
  project      = var.project_id
  account_id   = "imagen-dead-letter"
  display_name = "imagen on_dead_letter: marks jobs failed"
}

resource "google_service_account" "reconciler" {
  project      = var.project_id
  account_id   = "imagen-reconciler"
  display_name = "imagen on_reconcile: publishes stuck jobs again"
}

resource "google_service_account" "api" {
  project      = var.project_id
  account_id   = "imagen-api"
  display_name = "imagen HTTP API"
}

resource "google_service_account" "invoker" {
  project      = var.project_id
  account_id   = "imagen-invoker"
  display_name = "imagen triggers: Eventarc and Pub/Sub push identity that may invoke the functions"
}

# on_upload reads no object (the storage event carries name, generation and size): no bucket role.
resource "google_pubsub_topic_iam_member" "upload_publishes" {
  for_each = var.job_topics
  project  = var.project_id
  topic    = each.value
  role     = "roles/pubsub.publisher"
  member   = "serviceAccount:${google_service_account.upload.email}"
}

# on_reconcile lists the model prefixes for objects with no job: a listing carries each object's
# metadata, custom metadata included, so no upload is ever got or read. For such an object it gets
# the results it may have by name, for their metadata (ObjectStore.has_result): under results/
# only (Cloud Storage has no metadata-only permission). Listing is a bucket-level permission,
# which object-prefix conditions cannot grant: it is the one unconditioned storage grant.
resource "google_project_iam_custom_role" "lists_objects" {
  project     = var.project_id
  role_id     = "imagenListObjects"
  title       = "imagen: list objects"
  description = "Lists a bucket's objects and their metadata; reads no object."
  permissions = ["storage.objects.list"]
}

resource "google_project_iam_custom_role" "gets_objects" {
  project     = var.project_id
  role_id     = "imagenGetObjects"
  title       = "imagen: get objects"
  description = "Gets objects by name; granted under results/ only."
  permissions = ["storage.objects.get"]
}

resource "google_storage_bucket_iam_member" "reconciler_lists_objects" {
  bucket = var.bucket
  role   = google_project_iam_custom_role.lists_objects.name
  member = "serviceAccount:${google_service_account.reconciler.email}"
}

resource "google_storage_bucket_iam_member" "reconciler_reads_results" {
  bucket = var.bucket
  role   = google_project_iam_custom_role.gets_objects.name
  member = "serviceAccount:${google_service_account.reconciler.email}"
  condition {
    title      = "results-prefix"
    expression = "resource.name.startsWith(\"projects/_/buckets/${var.bucket}/objects/${var.result_prefix}\")"
  }
}

# The HTTP API writes uploads under the model prefixes (and reads them back: the job of an object),
# creates their jobs and publishes them, reads the events topic for /health, and signs upload
# URLs as itself (IAM signBlob on its own account). A signed URL grants only what its signer may
# do: the result links it signs need `storage.objects.get` under results/ (api_reads_results).
resource "google_storage_bucket_iam_member" "api_reads_results" {
  bucket = var.bucket
  role   = google_project_iam_custom_role.gets_objects.name
  member = "serviceAccount:${google_service_account.api.email}"
  condition {
    title      = "results-prefix"
    expression = "resource.name.startsWith(\"projects/_/buckets/${var.bucket}/objects/${var.result_prefix}\")"
  }
}

resource "google_storage_bucket_iam_member" "api_writes_inputs" {
  for_each = toset(["roles/storage.objectCreator", "roles/storage.objectViewer"])
  bucket   = var.bucket
  role     = each.value
  member   = "serviceAccount:${google_service_account.api.email}"
  condition {
    title      = "model-prefixes"
    expression = local.input_prefix_condition
  }
}

resource "google_pubsub_topic_iam_member" "api_publishes" {
  for_each = merge(
    { for m, t in var.job_topics : "${m}_publisher" => { topic = t, role = "roles/pubsub.publisher" } },
    {
      events_publisher = { topic = var.events_topic, role = "roles/pubsub.publisher" }
      events_viewer    = { topic = var.events_topic, role = "roles/pubsub.viewer" }
    },
  )
  project = var.project_id
  topic   = each.value.topic
  role    = each.value.role
  member  = "serviceAccount:${google_service_account.api.email}"
}

# Signing a URL is one IAM Credentials call, signBlob, on the API's own account: a custom role with
# that permission alone, bound on that account alone (Token Creator would also mint its tokens).
resource "google_project_iam_custom_role" "signs_blobs" {
  project     = var.project_id
  role_id     = "imagenSignBlobs"
  title       = "imagen: sign blobs"
  description = "Signs bytes as a service account (V4 signed URLs); mints no token."
  permissions = ["iam.serviceAccounts.signBlob"]
}

resource "google_service_account_iam_member" "api_signs_urls" {
  service_account_id = google_service_account.api.name
  role               = google_project_iam_custom_role.signs_blobs.name
  member             = "serviceAccount:${google_service_account.api.email}"
}

# on_job: read only the model prefixes, write only results/.
resource "google_storage_bucket_iam_member" "worker_reads_inputs" {
  bucket = var.bucket
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.worker.email}"
  condition {
    title      = "model-prefixes"
    expression = local.input_prefix_condition
  }
}

resource "google_storage_bucket_iam_member" "worker_writes_results" {
  bucket = var.bucket
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.worker.email}"
  condition {
    title      = "results-prefix"
    expression = "resource.name.startsWith(\"projects/_/buckets/${var.bucket}/objects/${var.result_prefix}\")"
  }
}

# Job events: the worker's, and the failed event of an upload whose options are refused (published
# by on_upload, or by the reconciler when it creates a job for an object whose event was lost).
resource "google_pubsub_topic_iam_member" "worker_publishes_events" {
  for_each = {
    worker     = google_service_account.worker.email
    upload     = google_service_account.upload.email
    reconciler = google_service_account.reconciler.email
  }
  project = var.project_id
  topic   = var.events_topic
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${each.value}"
}

# The dead-letter handler publishes a job again when its attempts are not spent; the reconciler
# publishes stuck jobs again.
resource "google_pubsub_topic_iam_member" "republishers" {
  for_each = merge(
    { for m, t in var.job_topics : "dead_letter_${m}" => { topic = t, email = google_service_account.dead_letter.email } },
    { for m, t in var.job_topics : "reconciler_${m}" => { topic = t, email = google_service_account.reconciler.email } },
  )
  project = var.project_id
  topic   = each.value.topic
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${each.value.email}"
}

resource "google_pubsub_topic_iam_member" "dead_letter_publishes_events" {
  project = var.project_id
  topic   = var.events_topic
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.dead_letter.email}"
}

# datastore.user is Firestore's narrowest read/write role; its grant is conditioned on the jobs
# database, so a second database in the project stays out of reach.
resource "google_project_iam_member" "firestore_users" {
  for_each = {
    upload      = google_service_account.upload.email
    api         = google_service_account.api.email
    worker      = google_service_account.worker.email
    dead_letter = google_service_account.dead_letter.email
    reconciler  = google_service_account.reconciler.email
  }
  project = var.project_id
  role    = "roles/datastore.user"
  member  = "serviceAccount:${each.value}"
  condition {
    title      = "jobs-database"
    expression = "resource.name == \"projects/${var.project_id}/databases/${var.firestore_database}\""
  }
}

resource "google_project_iam_member" "invoker_receives_events" {
  project = var.project_id
  role    = "roles/eventarc.eventReceiver"
  member  = "serviceAccount:${google_service_account.invoker.email}"
}

# Cloud Storage's service agent publishes the object events Eventarc delivers, to the transport
# topic Eventarc creates for the trigger (its name is Eventarc's, known only after apply): the
# grant is conditioned on Eventarc's topics, not every topic of the project.
resource "google_project_iam_member" "gcs_agent_publishes" {
  project = var.project_id
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
  condition {
    title      = "eventarc-transport-topics"
    expression = "resource.name.startsWith(\"projects/${var.project_id}/topics/eventarc-\")"
  }
}

# Pub/Sub's service agent mints the OIDC tokens of push deliveries (Eventarc's too) as the invoker:
# generateIdToken, nothing else of Token Creator (no access tokens, no signing).
resource "google_project_iam_custom_role" "mints_id_tokens" {
  project     = var.project_id
  role_id     = "imagenMintIdTokens"
  title       = "imagen: mint OIDC tokens"
  description = "Mints OpenID Connect tokens as a service account (push deliveries' identity)."
  permissions = ["iam.serviceAccounts.getOpenIdToken"]
}

resource "google_service_account_iam_member" "pubsub_agent_mints_tokens" {
  service_account_id = google_service_account.invoker.name
  role               = google_project_iam_custom_role.mints_id_tokens.name
  member             = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

# ---- Functions -------------------------------------------------------------------------
resource "google_cloudfunctions2_function" "on_upload" {
  project  = var.project_id
  location = var.region
  name     = "imagen-on-upload"
  labels   = var.labels

  build_config {
    runtime         = "python311"
    entry_point     = "on_upload"
    service_account = var.build_service_account
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory                 = "512Mi"
    available_cpu                    = "1"
    max_instance_request_concurrency = 20
    max_instance_count               = 20
    timeout_seconds                  = 60
    ingress_settings                 = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.upload.email
    environment_variables            = local.common_env
  }

  event_trigger {
    trigger_region        = var.region
    event_type            = "google.cloud.storage.object.v1.finalized"
    retry_policy          = "RETRY_POLICY_RETRY"
    service_account_email = google_service_account.invoker.email
    event_filters {
      attribute = "bucket"
      value     = var.bucket
    }
  }

  depends_on = [google_project_iam_member.gcs_agent_publishes, google_project_iam_member.invoker_receives_events]
}

resource "google_cloudfunctions2_function" "on_job" {
  for_each = toset(var.models)
  project  = var.project_id
  location = var.region
  name     = "imagen-on-job-${replace(each.key, "_", "-")}"
  labels   = merge(var.labels, { model = each.key })

  build_config {
    runtime         = "python311"
    entry_point     = "on_job"
    service_account = var.build_service_account
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory                 = var.worker_memory
    available_cpu                    = var.worker_cpu
    max_instance_request_concurrency = var.worker_concurrency
    max_instance_count               = var.worker_max_instances
    timeout_seconds                  = var.worker_timeout_seconds
    ingress_settings                 = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.worker.email
    vpc_connector                    = var.vpc_connector
    vpc_connector_egress_settings    = "PRIVATE_RANGES_ONLY"
    environment_variables            = merge(local.common_env, local.worker_env, { MODEL_NAME = each.key })
  }

  lifecycle {
    precondition {
      condition     = var.job_time_limit_seconds <= var.worker_timeout_seconds - 150
      error_message = "job_time_limit_seconds (${var.job_time_limit_seconds}) must leave 150 s inside worker_timeout_seconds (${var.worker_timeout_seconds}): one Triton request (TRITON_TIMEOUT_S, 120 s) and the upload's end, so that a job planned up to the limit stops before the platform kills it (Config checks the same)."
    }
  }
}

resource "google_cloudfunctions2_function" "on_dead_letter" {
  project  = var.project_id
  location = var.region
  name     = "imagen-on-dead-letter"
  labels   = var.labels

  build_config {
    runtime         = "python311"
    entry_point     = "on_dead_letter"
    service_account = var.build_service_account
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory                 = "256Mi"
    max_instance_request_concurrency = 20
    max_instance_count               = 5
    timeout_seconds                  = 60
    ingress_settings                 = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.dead_letter.email
    environment_variables            = local.common_env
  }
}

resource "google_cloudfunctions2_function" "on_reconcile" {
  project  = var.project_id
  location = var.region
  name     = "imagen-on-reconcile"
  labels   = var.labels

  build_config {
    runtime         = "python311"
    entry_point     = "on_reconcile"
    service_account = var.build_service_account
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory                 = "256Mi"
    max_instance_request_concurrency = 1
    max_instance_count               = 1
    timeout_seconds                  = 120
    ingress_settings                 = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.reconciler.email
    environment_variables            = local.common_env
  }
}

# The HTTP API: behind IAM (Cloud Run checks every caller's identity token); no public invoker.
resource "google_cloudfunctions2_function" "api" {
  #checkov:skip=CKV_GCP_124:The API is for callers outside the VPC (CI, laptops, other projects); Cloud Run refuses any request without an identity token of an api_invokers member (never allUsers, enforced by the variable's validation). api_ingress narrows it to internal callers where that is all there is.
  project  = var.project_id
  location = var.region
  name     = "imagen-api"
  labels   = var.labels

  build_config {
    runtime         = "python311"
    entry_point     = "api"
    service_account = var.build_service_account
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory                 = "1Gi" # a request body of up to api_max_upload_bytes, twice
    available_cpu                    = "1"
    max_instance_request_concurrency = 8
    max_instance_count               = var.api_max_instances
    timeout_seconds                  = 120
    ingress_settings                 = var.api_ingress
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.api.email
    # No VPC connector: the connector, and Triton's port, are the workers' path alone. /health does
    # not ask Triton in the cloud (TRITON_URL empty: not checked by the API).
    environment_variables = merge(local.common_env, local.plan_env, {
      TRITON_URL           = ""
      API_MAX_UPLOAD_BYTES = tostring(var.api_max_upload_bytes)
      API_AUTH             = "platform" # the caller is the identity Cloud Run checked
      API_OPERATORS        = join(",", var.api_operators)
      API_MAX_WAIT_S       = "60" # Prefer: wait, counted from the request's start: inside the 120 s timeout
    })
  }
}

# Callers of the API: the identities in api_invokers (users, groups, service accounts), nobody else.
resource "google_cloud_run_service_iam_member" "api_invokers" {
  for_each = toset(var.api_invokers)
  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.api.name
  role     = "roles/run.invoker"
  member   = each.value
}

# Only the invoker identity (Eventarc and the push subscriptions) may call the functions.
resource "google_cloud_run_service_iam_member" "invoker" {
  for_each = merge(
    {
      on_upload      = google_cloudfunctions2_function.on_upload.name
      on_dead_letter = google_cloudfunctions2_function.on_dead_letter.name
      on_reconcile   = google_cloudfunctions2_function.on_reconcile.name
    },
    { for m, f in google_cloudfunctions2_function.on_job : "on_job_${m}" => f.name },
  )
  project  = var.project_id
  location = var.region
  service  = each.value
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.invoker.email}"
}
