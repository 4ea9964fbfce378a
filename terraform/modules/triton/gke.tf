# Triton on a GKE GPU node pool: a Deployment behind an internal load balancer, scaled by
# Triton's own queue-time metric (nv_inference_queue_duration_us, read through Managed
# Service for Prometheus and the custom-metrics Stackdriver adapter).
resource "google_container_cluster" "triton" {
  #checkov:skip=CKV_GCP_65:No people use this cluster; it runs one Triton Deployment managed by Terraform.
  #checkov:skip=CKV_GCP_69:Workload Identity is set (GKE_METADATA) on the node pool, which is the one that runs pods.
  count                    = var.mode == "gke" ? 1 : 0
  project                  = var.project_id
  name                     = "imagen-triton"
  location                 = var.zone
  network                  = google_compute_network.imagen.id
  subnetwork               = google_compute_subnetwork.triton.id
  remove_default_node_pool = true
  initial_node_count       = 1
  deletion_protection      = false
  resource_labels          = var.labels
  enable_shielded_nodes    = true
  enable_intranode_visibility = true

  release_channel {
    channel = "REGULAR"
  }

  workload_identity_config {
    workload_pool = "${var.project_id}.svc.id.goog"
  }

  private_cluster_config {
    enable_private_nodes    = true
    enable_private_endpoint = false
    master_ipv4_cidr_block  = "172.16.40.0/28"
  }

  # The control plane answers the imagen subnet and whoever runs terraform apply (the
  # kubernetes provider creates the Deployment through it): gke_authorized_networks.
  master_authorized_networks_config {
    cidr_blocks {
      cidr_block   = var.subnet_cidr
      display_name = "imagen subnet"
    }
    dynamic "cidr_blocks" {
      for_each = var.authorized_networks
      content {
        cidr_block   = cidr_blocks.value
        display_name = "operator ${cidr_blocks.value}"
      }
    }
  }

  ip_allocation_policy {}

  network_policy {
    enabled = true
  }

  monitoring_config {
    managed_prometheus {
      enabled = true
    }
  }

  binary_authorization {
    evaluation_mode = "PROJECT_SINGLETON_POLICY_ENFORCE"
  }

  master_auth {
    client_certificate_config {
      issue_client_certificate = false
    }
  }
}

resource "google_container_node_pool" "gpu" {
  count    = var.mode == "gke" ? 1 : 0
  project  = var.project_id
  name     = "gpu"
  location = var.zone
  cluster  = google_container_cluster.triton[0].name

  autoscaling {
    min_node_count = var.gke_min_nodes
    max_node_count = var.gke_max_nodes
  }

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  node_config {
    machine_type    = var.machine_type
    image_type      = "COS_CONTAINERD"
    service_account = google_service_account.triton.email
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]
    tags            = ["imagen-triton"]
    labels          = var.labels

    guest_accelerator {
      type  = var.accelerator_type
      count = 1
      gpu_driver_installation_config {
        gpu_driver_version = "LATEST"
      }
    }

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }

    metadata = {
      disable-legacy-endpoints = "true"
    }
  }
}

resource "kubernetes_namespace_v1" "imagen" {
  count = var.mode == "gke" ? 1 : 0
  metadata {
    name = "imagen"
  }
  depends_on = [google_container_node_pool.gpu]
}

resource "kubernetes_deployment_v1" "triton" {
  count = var.mode == "gke" ? 1 : 0
  metadata {
    name      = "triton"
    namespace = kubernetes_namespace_v1.imagen[0].metadata[0].name
    labels    = { app = "triton" }
  }
  spec {
    replicas = var.gke_min_nodes
    selector {
      match_labels = { app = "triton" }
    }
    template {
      metadata {
        labels = { app = "triton" }
      }
      spec {
        automount_service_account_token = false
        volume {
          name = "tmp"
          empty_dir {}
        }
        volume {
          name = "shm"
          empty_dir {
            medium     = "Memory"
            size_limit = "2Gi"
          }
        }
        container {
          #checkov:skip=CKV_K8S_14:The tag comes from var.image; terraform/README.md tells to push a versioned tag, never latest.
          #checkov:skip=CKV_K8S_43:The image is pinned by tag from the project's own registry; digests change every build.
          name              = "triton"
          image             = var.image
          image_pull_policy = "Always"
          port {
            container_port = 8000
          }
          port {
            container_port = 8002
          }
          resources {
            limits   = { "nvidia.com/gpu" = "1", memory = "12Gi", cpu = "3" }
            requests = { "nvidia.com/gpu" = "1", memory = "8Gi", cpu = "2" }
          }
          readiness_probe {
            http_get {
              path = "/v2/health/ready"
              port = 8000
            }
            period_seconds = 5
          }
          liveness_probe {
            http_get {
              path = "/v2/health/live"
              port = 8000
            }
            initial_delay_seconds = 60
            period_seconds        = 10
          }
          volume_mount {
            name       = "tmp"
            mount_path = "/tmp"
          }
          volume_mount {
            name       = "shm" # the python backend exchanges tensors through shared memory
            mount_path = "/dev/shm"
          }
          security_context {
            allow_privilege_escalation = false
            run_as_non_root            = true
            run_as_user                = 1000
            read_only_root_filesystem  = true
            capabilities {
              drop = ["ALL"]
            }
          }
        }
      }
    }
  }
  depends_on = [google_container_node_pool.gpu]
}

resource "kubernetes_service_v1" "triton" {
  count = var.mode == "gke" ? 1 : 0
  metadata {
    name      = "triton"
    namespace = kubernetes_namespace_v1.imagen[0].metadata[0].name
    annotations = {
      "networking.gke.io/load-balancer-type" = "Internal"
    }
  }
  spec {
    type     = "LoadBalancer"
    selector = { app = "triton" }
    # The load balancer (and the firewall rule GKE makes for it) admits the workers' connector only.
    load_balancer_source_ranges = [var.connector_cidr]
    port {
      name        = "http"
      port        = 8000
      target_port = 8000
    }
  }
}

resource "kubernetes_horizontal_pod_autoscaler_v2" "triton" {
  count = var.mode == "gke" ? 1 : 0
  metadata {
    name      = "triton"
    namespace = kubernetes_namespace_v1.imagen[0].metadata[0].name
  }
  spec {
    min_replicas = var.gke_min_nodes
    max_replicas = var.gke_max_nodes
    scale_target_ref {
      api_version = "apps/v1"
      kind        = "Deployment"
      name        = kubernetes_deployment_v1.triton[0].metadata[0].name
    }
    metric {
      type = "Pods"
      pods {
        metric {
          name = "prometheus.googleapis.com|nv_inference_queue_duration_us|counter"
        }
        target {
          type          = "AverageValue"
          average_value = tostring(var.queue_target_us)
        }
      }
    }
  }
}
