variable "project_id" {
  type        = string
  description = "Project of the pipeline."
}

variable "models" {
  type        = list(string)
  description = "Model names: one job subscription imagen-<model>-worker each."
}

variable "notification_email" {
  type        = string
  description = "Email address the alerts go to; empty: the policies exist and show in the console, but notify no one."
  default     = ""
}

variable "failure_rate_threshold" {
  type        = number
  description = "Share of a model's finished jobs that failed over 15 minutes above which its alert fires."
  default     = 0.2
}

variable "oldest_unacked_threshold_s" {
  type        = number
  description = "Age in seconds of the oldest undelivered job message of a model above which its alert fires (the job lease is 120 s)."
  default     = 600
}

variable "triton_queue_threshold_ms" {
  type        = number
  description = "Mean time a request waits in Triton's queue, in ms, above which the alert fires."
  default     = 500
}

variable "triton_down_alert_s" {
  type        = number
  description = "Seconds the workers must have found Triton down, with a service_down event in every minute, before the Triton-down alert fires."
  default     = 300
  validation {
    condition     = var.triton_down_alert_s >= 60 && var.triton_down_alert_s % 60 == 0
    error_message = "triton_down_alert_s must be a whole number of minutes in seconds (60, 120, ...): alert durations are whole minutes."
  }
}

variable "wait_horizon_seconds" {
  type        = number
  description = "The workers' WAIT_HORIZON_S (functions module): how long a job may wait for Triton; the Triton-down alert's documentation quotes it."
  default     = 86400
}

variable "labels" {
  type        = map(string)
  description = "Labels on the notification channel."
  default     = {}
}
