variable "project_id" {
  type        = string
  description = "Project to deploy into."
}

variable "triton_image" {
  type        = string
  description = "Triton image built from triton/Dockerfile, e.g. us-central1-docker.pkg.dev/PROJECT/imagen/triton:1."
}
