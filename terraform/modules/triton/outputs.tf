output "triton_url" {
  description = "Triton's internal HTTP address (host:port), reachable only inside the VPC."
  value = var.mode == "vm" ? "${google_compute_address.triton[0].address}:8000" : (
    "${try(kubernetes_service_v1.triton[0].status[0].load_balancer[0].ingress[0].ip, "pending")}:8000"
  )
}

output "vpc_connector" {
  description = "Id of the Serverless VPC Access connector the on_job functions use (the API has none)."
  value       = google_vpc_access_connector.functions.id
}

output "network" {
  description = "Name of the VPC network."
  value       = google_compute_network.imagen.name
}

output "gke_endpoint" {
  description = "GKE control-plane endpoint (gke mode), or null."
  value       = var.mode == "gke" ? google_container_cluster.triton[0].endpoint : null
}

output "gke_ca_certificate" {
  description = "GKE cluster CA certificate, base64 (gke mode), or null."
  value       = var.mode == "gke" ? google_container_cluster.triton[0].master_auth[0].cluster_ca_certificate : null
  sensitive   = true
}
