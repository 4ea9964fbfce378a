variable "project_id" {
  type        = string
  description = "Project of the Firestore database."
}

variable "location" {
  type        = string
  description = "Firestore location, e.g. nam5 or us-central1."
}

variable "jobs_collection" {
  type        = string
  description = "Collection that holds the job documents."
  default     = "jobs"
}
