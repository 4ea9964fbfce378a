variable "project_id" {
  type        = string
  description = "Project that owns the bucket."
}

variable "name" {
  type        = string
  description = "Bucket name (globally unique)."
}

variable "location" {
  type        = string
  description = "Bucket location, e.g. us-central1."
}

variable "versioning" {
  type        = bool
  description = "Keep noncurrent object versions."
  default     = false
}

variable "results_ttl_days" {
  type        = number
  description = "Delete objects under results/ after this many days; 0 keeps them forever."
  default     = 0
}

variable "force_destroy" {
  type        = bool
  description = "Allow terraform destroy to delete a bucket that still holds objects."
  default     = false
}

variable "labels" {
  type        = map(string)
  description = "Labels put on the bucket."
  default     = {}
}

variable "data_access_logs" {
  type        = bool
  description = "Turn on Cloud Storage Data Access audit logs (DATA_READ, DATA_WRITE) for the project: the bucket's access log."
  default     = true
}
