provider "google" {
  project = var.project_id
  region  = var.region
}

data "google_client_config" "current" {}

# Used only in triton_mode = "gke", for Triton's Deployment, Service and autoscaler.
provider "kubernetes" {
  host                   = module.triton.gke_endpoint == null ? null : "https://${module.triton.gke_endpoint}"
  token                  = data.google_client_config.current.access_token
  cluster_ca_certificate = module.triton.gke_ca_certificate == null ? null : base64decode(module.triton.gke_ca_certificate)
}
