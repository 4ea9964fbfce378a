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

variable "labels" {
  type        = map(string)
  description = "Labels on the notification channel."
  default     = {}
}
