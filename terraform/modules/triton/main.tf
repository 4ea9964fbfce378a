# A private network: Triton has no public address; the workers reach it through the connector.
resource "google_compute_network" "imagen" {
  project                 = var.project_id
  name                    = "imagen"
  auto_create_subnetworks = false
}

resource "google_compute_subnetwork" "triton" {
  project                  = var.project_id
  name                     = "imagen-triton"
  region                   = var.region
  network                  = google_compute_network.imagen.id
  ip_cidr_range            = var.subnet_cidr
  private_ip_google_access = true # pulls the image from Artifact Registry without a public IP

  log_config {
    aggregation_interval = "INTERVAL_10_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

resource "google_vpc_access_connector" "functions" {
  project       = var.project_id
  name          = "imagen-functions"
  region        = var.region
  network       = google_compute_network.imagen.name
  ip_cidr_range = var.connector_cidr
  min_instances = 2
  max_instances = 3
}

# Only the connector may open Triton's HTTP port: the on_job functions are the only ones attached
# to it (the API has no connector). In gke mode GKE's service controller adds its own rules for the
# internal load balancer: the Service's loadBalancerSourceRanges (the connector again) to port
# 8000, and Google's health-check ranges to the nodes' health port (10256) only; pod-to-pod and
# node-to-pod traffic inside the cluster is its rules' too. Nothing here needs the subnet's range.
resource "google_compute_firewall" "triton_http" {
  project       = var.project_id
  name          = "imagen-allow-triton-http"
  network       = google_compute_network.imagen.name
  direction     = "INGRESS"
  source_ranges = [var.connector_cidr]
  target_tags   = ["imagen-triton"]
  allow {
    protocol = "tcp"
    ports    = ["8000"]
  }
}

resource "google_compute_address" "triton" {
  count        = var.mode == "vm" ? 1 : 0
  project      = var.project_id
  name         = "imagen-triton"
  region       = var.region
  subnetwork   = google_compute_subnetwork.triton.id
  address_type = "INTERNAL"
}
