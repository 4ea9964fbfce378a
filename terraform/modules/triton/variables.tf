variable "project_id" {
  type        = string
  description = "Project of the network and Triton."
}

variable "region" {
  type        = string
  description = "Region of the subnet, the connector and Triton."
}

variable "zone" {
  type        = string
  description = "Zone of the GPU VM or the GKE node pool (must offer the accelerator)."
}

variable "mode" {
  type        = string
  description = "Where Triton runs: \"vm\" (one GPU VM) or \"gke\" (a GKE GPU node pool with autoscaling)."
  default     = "vm"
  validation {
    condition     = contains(["vm", "gke"], var.mode)
    error_message = "mode must be \"vm\" or \"gke\"."
  }
}

variable "image" {
  type        = string
  description = "Triton container image built from triton/Dockerfile, in Artifact Registry: LOCATION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE:TAG (its service account may read that repository only)."
  validation {
    condition     = can(regex("^[a-z0-9-]+-docker\\.pkg\\.dev/[^/]+/[^/]+/[^/]", var.image))
    error_message = "image must be in Artifact Registry: LOCATION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE:TAG (e.g. us-central1-docker.pkg.dev/my-project/imagen/triton:1)."
  }
}

variable "machine_type" {
  type        = string
  description = "Machine type of the GPU VM or GKE nodes."
  default     = "n1-standard-4"
}

variable "accelerator_type" {
  type        = string
  description = "GPU type attached to each VM or node."
  default     = "nvidia-tesla-t4"
}

variable "subnet_cidr" {
  type        = string
  description = "Primary range of the Triton subnet."
  default     = "10.40.0.0/24"
}

variable "connector_cidr" {
  type        = string
  description = "/28 range of the Serverless VPC Access connector the on_job functions use: the only range that may reach Triton."
  default     = "10.40.8.0/28"
}

variable "gke_min_nodes" {
  type        = number
  description = "Fewest GPU nodes (gke mode)."
  default     = 1
}

variable "gke_max_nodes" {
  type        = number
  description = "Most GPU nodes (gke mode)."
  default     = 4
}

variable "queue_target_us" {
  type        = number
  description = "Average Triton queue time per request (microseconds) the GKE autoscaler aims for."
  default     = 50000
}

variable "labels" {
  type        = map(string)
  description = "Labels put on the VM, cluster and nodes."
  default     = {}
}

variable "authorized_networks" {
  type        = list(string)
  description = "CIDR ranges (besides the imagen subnet) that may reach the GKE control plane: where terraform apply and kubectl run."
  default     = []
}
