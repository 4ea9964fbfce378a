variable "project_id" {
  type        = string
  description = "Google Cloud project to deploy imagen into."
}

variable "region" {
  type        = string
  description = "Region of the bucket, functions, network and Triton."
  default     = "us-central1"
}

variable "zone" {
  type        = string
  description = "Zone of the Triton GPU (must offer the accelerator type)."
  default     = "us-central1-a"
}

variable "bucket_name" {
  type        = string
  description = "Images bucket name; empty means <project_id>-imagen."
  default     = ""
}

variable "firestore_location" {
  type        = string
  description = "Firestore location (a multi-region such as nam5, or a region)."
  default     = "nam5"
}

variable "triton_mode" {
  type        = string
  description = "\"vm\": one GPU VM; \"gke\": a GKE GPU node pool scaled on Triton's queue time."
  default     = "vm"
}

variable "triton_image" {
  type        = string
  description = "Triton image built from triton/Dockerfile and pushed to Artifact Registry."
}

variable "triton_machine_type" {
  type        = string
  description = "Machine type of the Triton VM or GKE nodes."
  default     = "n1-standard-4"
}

variable "triton_accelerator" {
  type        = string
  description = "GPU type for Triton."
  default     = "nvidia-tesla-t4"
}

variable "bucket_versioning" {
  type        = bool
  description = "Keep noncurrent versions of objects in the images bucket."
  default     = false
}

variable "results_ttl_days" {
  type        = number
  description = "Delete results after this many days; 0 keeps them."
  default     = 0
}

variable "max_delivery_attempts" {
  type        = number
  description = "Deliveries of a job message before it is dead-lettered and the job marked failed."
  default     = 5
}

variable "worker_max_instances" {
  type        = number
  description = "Most on_job instances per model."
  default     = 10
}

variable "worker_concurrency" {
  type        = number
  description = "Concurrent jobs per on_job instance."
  default     = 4
}

variable "job_time_limit_seconds" {
  type        = number
  description = "Longest time plan a job may have, in seconds (decoding, its tiles at tile_seconds, encoding); a job planned past it fails at once. Under the workers' 540 s timeout."
  default     = 360
}

variable "tile_seconds" {
  type        = map(number)
  description = "Triton model → seconds a tile takes on triton_accelerator, for the jobs' time plans; models left out keep the code's T4 figures (set it for another GPU)."
  default     = {}
}

variable "wait_horizon_seconds" {
  type        = number
  description = "How long a job may wait for Triton while it is down before it fails (at most 604800, the job messages' 7-day retention); waiting spends no attempts."
  default     = 86400
}

variable "triton_probe_seconds" {
  type        = number
  description = "How often a worker that found Triton down probes it again, in seconds."
  default     = 10
}

variable "triton_down_alert_s" {
  type        = number
  description = "Seconds the workers must have seen Triton down, without a break, before the Triton-down alert fires (a multiple of 60)."
  default     = 300
}

variable "labels" {
  type        = map(string)
  description = "Labels put on every labelled resource."
  default     = { app = "imagen" }
}

variable "notification_email" {
  type        = string
  description = "Email address the alerts go to (docs/operating.md, Alerts); empty: the alert policies notify no one."
  default     = ""
}

variable "gke_authorized_networks" {
  type        = list(string)
  description = "triton_mode = gke: CIDR ranges that may reach the cluster's control plane besides the imagen subnet (e.g. the address terraform apply runs from, as 203.0.113.7/32)."
  default     = []
}

variable "api_invokers" {
  type        = list(string)
  description = "Members allowed to call the HTTP API (users, groups, service accounts); none by default. Never allUsers."
  default     = []
}

variable "jobs_ttl_days" {
  type        = number
  description = "Delete a job's document this many days after it ends (Firestore TTL on expire_at); 0 keeps them."
  default     = 30
}

variable "api_operators" {
  type        = list(string)
  description = "Identities (emails) that may read every job through the HTTP API; others read only the jobs they created."
  default     = []
}

variable "result_cache_control" {
  type        = string
  description = "Cache-Control header of every result object."
  default     = "private, max-age=3600"
}

variable "upscale_default" {
  type        = string
  description = "upscale's character when an upload does not set imagen-upscale: fidelity (the default) or perceptual."
  default     = "fidelity"
}
