# imagen on Google Cloud: the same system as the local stack.
locals {
  models = ["upscale", "enhance", "style_comic", "style_aged", "background_remove"]
  bucket = var.bucket_name != "" ? var.bucket_name : "${var.project_id}-imagen"
  apis = [
    "artifactregistry.googleapis.com", "cloudbuild.googleapis.com", "cloudfunctions.googleapis.com",
    "compute.googleapis.com", "container.googleapis.com", "eventarc.googleapis.com",
    "firestore.googleapis.com", "pubsub.googleapis.com", "run.googleapis.com",
    "storage.googleapis.com", "vpcaccess.googleapis.com", "cloudscheduler.googleapis.com",
    "monitoring.googleapis.com", "logging.googleapis.com",
    "iamcredentials.googleapis.com", # the API signs upload URLs with signBlob
  ]
}

data "google_project" "this" {
  project_id = var.project_id
}

resource "google_project_service" "apis" {
  for_each           = toset(local.apis)
  project            = var.project_id
  service            = each.key
  disable_on_destroy = false
}

module "storage" {
  source           = "./modules/storage"
  project_id       = var.project_id
  name             = local.bucket
  location         = var.region
  versioning       = var.bucket_versioning
  results_ttl_days = var.results_ttl_days
  labels           = var.labels
  depends_on       = [google_project_service.apis]
}

module "firestore" {
  source     = "./modules/firestore"
  project_id = var.project_id
  location   = var.firestore_location
  depends_on = [google_project_service.apis]
}

module "triton" {
  source           = "./modules/triton"
  project_id       = var.project_id
  region           = var.region
  zone             = var.zone
  mode             = var.triton_mode
  image            = var.triton_image
  machine_type     = var.triton_machine_type
  accelerator_type = var.triton_accelerator
  # GKE mode: where terraform apply runs must reach the control plane
  authorized_networks = var.gke_authorized_networks
  labels              = var.labels
  depends_on          = [google_project_service.apis]
}

module "functions" {
  source                 = "./modules/functions"
  project_id             = var.project_id
  region                 = var.region
  source_dir             = "${path.module}/../functions"
  bucket                 = module.storage.bucket
  models                 = local.models
  job_topics             = module.messaging.job_topics
  events_topic           = module.messaging.events_topic
  triton_url             = module.triton.triton_url
  vpc_connector          = module.triton.vpc_connector
  worker_max_instances   = var.worker_max_instances
  worker_concurrency     = var.worker_concurrency
  max_attempts           = var.max_delivery_attempts
  api_invokers           = var.api_invokers
  api_operators          = var.api_operators
  jobs_ttl_days          = var.jobs_ttl_days
  result_cache_control   = var.result_cache_control
  upscale_default        = var.upscale_default
  job_time_limit_seconds = var.job_time_limit_seconds
  tile_seconds           = var.tile_seconds
  wait_horizon_seconds   = var.wait_horizon_seconds
  triton_probe_seconds   = var.triton_probe_seconds
  labels                 = var.labels
  depends_on             = [google_project_service.apis, module.firestore]
}

# Topics do not depend on the functions; the push subscriptions do (their endpoints), and the
# functions' IAM depends on the topics: Terraform orders those resources one by one.
module "messaging" {
  source                = "./modules/messaging"
  project_id            = var.project_id
  project_number        = data.google_project.this.number
  models                = local.models
  job_push_endpoints    = module.functions.job_function_uris
  dead_letter_endpoint  = module.functions.dead_letter_function_uri
  reconcile_endpoint    = module.functions.reconcile_function_uri
  region                = var.region
  push_service_account  = module.functions.invoker_service_account
  max_delivery_attempts = var.max_delivery_attempts
  labels                = var.labels
  depends_on            = [google_project_service.apis]
}

# Alerts (to notification_email) and the imagen dashboard: docs/operating.md, "Alerts".
module "monitoring" {
  source               = "./modules/monitoring"
  project_id           = var.project_id
  models               = local.models
  notification_email   = var.notification_email
  triton_down_alert_s  = var.triton_down_alert_s
  wait_horizon_seconds = var.wait_horizon_seconds # quoted in the Triton-down alert
  labels               = var.labels
  depends_on           = [google_project_service.apis]
}
