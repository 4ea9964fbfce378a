variable "project_id" {
  type        = string
  description = "Project of the functions."
}

variable "region" {
  type        = string
  description = "Region of the functions and their triggers."
}

variable "source_dir" {
  type        = string
  description = "Path of the functions/ folder (main.py, imagen/, requirements.txt)."
}

variable "bucket" {
  type        = string
  description = "Images bucket: uploads under model prefixes, results under result_prefix."
}

variable "result_prefix" {
  type        = string
  description = "Folder for results; never starts a job."
  default     = "results/"
}

variable "models" {
  type        = list(string)
  description = "Models; each gets an on_job deployment with MODEL_NAME set."
}

variable "job_topics" {
  type        = map(string)
  description = "Model name → job topic name (on_upload publishes there)."
}

variable "events_topic" {
  type        = string
  description = "Completion-events topic the workers publish to."
}

variable "triton_url" {
  type        = string
  description = "Triton's internal HTTP address host:port."
}

variable "vpc_connector" {
  type        = string
  description = "Serverless VPC Access connector id through which the on_job functions (and only they) reach Triton."
}

variable "worker_memory" {
  type        = string
  description = "Memory of each on_job instance, in Mi or Gi; with worker_concurrency it sets each job's memory budget (WORKER_MEMORY_MB)."
  default     = "2Gi"
  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi)$", var.worker_memory))
    error_message = "worker_memory must be a whole number of Mi or Gi, e.g. 2Gi or 1536Mi."
  }
}

variable "worker_cpu" {
  type        = string
  description = "vCPUs of each on_job instance."
  default     = "2"
}

variable "worker_concurrency" {
  type        = number
  description = "Requests one on_job instance serves at once (more than 1: they mostly wait on Triton)."
  default     = 4
}

variable "worker_max_instances" {
  type        = number
  description = "Most on_job instances per model."
  default     = 10
}

variable "worker_timeout_seconds" {
  type        = number
  description = "The on_job functions' timeout (FUNCTION_TIMEOUT_S): longest one delivery may run."
  default     = 540
}

variable "job_time_limit_seconds" {
  type        = number
  description = "Longest time plan a job may have (JOB_TIME_LIMIT_S): decoding, its tiles at tile_seconds, encoding; a job planned past it fails at once. Must be under worker_timeout_seconds."
  default     = 360
  validation {
    condition     = var.job_time_limit_seconds >= 1 && floor(var.job_time_limit_seconds) == var.job_time_limit_seconds
    error_message = "job_time_limit_seconds must be a whole number of seconds, at least 1."
  }
}

variable "tile_seconds" {
  type        = map(number)
  description = "Triton model → seconds one tile (background_remove: one image) takes on the deployment's accelerator, for the time plans (TILE_SECONDS); models left out keep the code's T4 figures."
  default     = {}
  validation {
    condition = alltrue([
      for m, s in var.tile_seconds :
      contains(["upscale", "upscale_fidelity", "enhance", "style_comic", "style_aged", "background_remove"], m) && s > 0
    ])
    error_message = "tile_seconds keys must be Triton models (upscale, upscale_fidelity, enhance, style_comic, style_aged, background_remove), each with a number of seconds above 0."
  }
}

variable "wait_horizon_seconds" {
  type        = number
  description = "How long a job may wait for a service that is down (Triton) before it fails (WAIT_HORIZON_S); waiting spends no attempts."
  default     = 86400
  validation {
    # The job's message must outlive its wait: the job subscriptions keep messages 7 days (604800 s,
    # Pub/Sub's most; modules/messaging).
    condition     = var.wait_horizon_seconds >= 1 && var.wait_horizon_seconds <= 604800 && floor(var.wait_horizon_seconds) == var.wait_horizon_seconds
    error_message = "wait_horizon_seconds must be a whole number of seconds from 1 to 604800 (7 days, the job subscriptions' message retention)."
  }
}

variable "triton_probe_seconds" {
  type        = number
  description = "How often a worker that found Triton down probes it again (TRITON_PROBE_S); until then deliveries are answered at once and their jobs wait."
  default     = 10
  validation {
    condition     = var.triton_probe_seconds >= 1 && floor(var.triton_probe_seconds) == var.triton_probe_seconds
    error_message = "triton_probe_seconds must be a whole number of seconds, at least 1."
  }
}

variable "max_input_pixels" {
  type        = number
  description = "Largest image accepted, in pixels."
  default     = 50000000
}

variable "max_output_pixels" {
  type        = number
  description = "Largest result written, in pixels; upscale writes the largest factor that fits under it."
  default     = 200000000
}

variable "build_service_account" {
  type        = string
  description = "Service account id (projects/P/serviceAccounts/EMAIL) Cloud Build uses; null for the project default."
  default     = null
}

variable "labels" {
  type        = map(string)
  description = "Labels put on functions and the source bucket."
  default     = {}
}

variable "max_attempts" {
  type        = number
  description = "Claims of a job before it fails with its last error (the job topics' max_delivery_attempts)."
  default     = 5
}

variable "firestore_database" {
  type        = string
  description = "The Firestore database of the jobs; the functions' datastore.user grant is limited to it."
  default     = "(default)"
}

variable "result_cache_control" {
  type        = string
  description = "Cache-Control header of every result object (RESULT_CACHE_CONTROL)."
  default     = "private, max-age=3600"
}

variable "api_invokers" {
  type        = list(string)
  description = "Members allowed to call the HTTP API (e.g. group:team@example.com, serviceAccount:ci@p.iam.gserviceaccount.com); none by default."
  default     = []
  validation {
    condition     = alltrue([for m in var.api_invokers : !contains(["allUsers", "allAuthenticatedUsers"], m)])
    error_message = "The API is not public: name users, groups or service accounts, not allUsers or allAuthenticatedUsers."
  }
}

variable "jobs_ttl_days" {
  type        = number
  description = "Days an ended job's document is kept (JOB_RETENTION_DAYS; the Firestore TTL policy deletes it then); 0 keeps them."
  default     = 30
  validation {
    condition     = var.jobs_ttl_days >= 0 && floor(var.jobs_ttl_days) == var.jobs_ttl_days
    error_message = "jobs_ttl_days is a whole number of days, 0 or more."
  }
}

variable "api_operators" {
  type        = list(string)
  description = "Identities (emails) that may read every job through the HTTP API (API_OPERATORS); others read only the jobs they created."
  default     = []
  validation {
    condition     = alltrue([for e in var.api_operators : can(regex("^[^:,@\\s]+@[^,@\\s]+$", e))])
    error_message = "api_operators are plain email addresses (ops@example.com, ci@p.iam.gserviceaccount.com), without a user: or serviceAccount: prefix."
  }
}

variable "api_ingress" {
  type        = string
  description = "Where the API may be called from: ALLOW_ALL (authenticated callers anywhere), ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB."
  default     = "ALLOW_ALL"
  validation {
    condition     = contains(["ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"], var.api_ingress)
    error_message = "api_ingress must be ALLOW_ALL, ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB."
  }
}

variable "api_max_instances" {
  type        = number
  description = "Most instances of the HTTP API."
  default     = 10
}

variable "api_max_upload_bytes" {
  type        = number
  description = "Largest file the API takes in a request (Cloud Run's request limit is 32 MiB); larger files use a signed URL."
  default     = 31457280
}

variable "upscale_default" {
  type        = string
  description = "upscale's character when an upload does not set imagen-upscale: fidelity (faithful, SRResNet) or perceptual (Real-ESRGAN)."
  default     = "fidelity"
  validation {
    condition     = contains(["fidelity", "perceptual"], var.upscale_default)
    error_message = "upscale_default must be fidelity or perceptual."
  }
}
