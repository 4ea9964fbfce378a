variable "project_id" {
  type        = string
  description = "Project of the topics and subscriptions."
}

variable "project_number" {
  type        = string
  description = "Project number, for the Pub/Sub service agent that forwards to the dead-letter topic."
}

variable "models" {
  type        = list(string)
  description = "Model names; each gets topic imagen-<model> and a push subscription to its worker."
}

variable "job_push_endpoints" {
  type        = map(string)
  description = "Model name → HTTPS URL of that model's on_job function."
}

variable "dead_letter_endpoint" {
  type        = string
  description = "HTTPS URL of the on_dead_letter function."
}

variable "push_service_account" {
  type        = string
  description = "Service account whose OIDC token authenticates push deliveries to the functions."
}

variable "max_delivery_attempts" {
  type        = number
  description = "Deliveries of a job message before it goes to the dead-letter topic (5-100)."
  default     = 5
}

variable "minimum_backoff" {
  type        = string
  description = "Shortest wait before a failed delivery is retried."
  default     = "10s"
}

variable "maximum_backoff" {
  type        = string
  description = "Longest wait before a failed delivery is retried."
  default     = "300s"
}

variable "ack_deadline_seconds" {
  type        = number
  description = "How long a worker may take on one delivery before Pub/Sub retries it."
  default     = 600
}

variable "labels" {
  type        = map(string)
  description = "Labels put on topics and subscriptions."
  default     = {}
}

variable "region" {
  type        = string
  description = "Region of the reconciler's Cloud Scheduler job."
}

variable "reconcile_endpoint" {
  type        = string
  description = "HTTPS URI of the on_reconcile function (push endpoint)."
}

variable "reconcile_schedule" {
  type        = string
  description = "Cron schedule of the reconciler (every minute: half of the functions' 120 s job lease)."
  default     = "* * * * *"
}
