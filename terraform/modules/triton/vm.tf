# Triton on one GPU VM: Container-Optimized OS installs the NVIDIA driver and runs the image.
locals {
  # The repository var.image is in: LOCATION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE:TAG.
  image_path = split("/", var.image)
  registry = {
    location   = trimsuffix(local.image_path[0], "-docker.pkg.dev")
    project    = local.image_path[1]
    repository = local.image_path[2]
  }
}

resource "google_service_account" "triton" {
  project      = var.project_id
  account_id   = "imagen-triton"
  display_name = "imagen Triton: pulls its image, writes logs and metrics"
}

# Logs and metrics are project-level roles; the image is read from its one repository only.
resource "google_project_iam_member" "triton" {
  for_each = toset(["roles/logging.logWriter", "roles/monitoring.metricWriter"])
  project  = var.project_id
  role     = each.key
  member   = "serviceAccount:${google_service_account.triton.email}"
}

resource "google_artifact_registry_repository_iam_member" "triton_pulls_image" {
  project    = local.registry.project
  location   = local.registry.location
  repository = local.registry.repository
  role       = "roles/artifactregistry.reader"
  member     = "serviceAccount:${google_service_account.triton.email}"
}

resource "google_compute_instance" "triton" {
  #checkov:skip=CKV_GCP_38:The boot disk holds only the public OS and the Triton image; Google-managed encryption.
  count        = var.mode == "vm" ? 1 : 0
  project      = var.project_id
  name         = "imagen-triton"
  zone         = var.zone
  machine_type = var.machine_type
  tags         = ["imagen-triton"]
  labels       = var.labels

  boot_disk {
    initialize_params {
      image = "cos-cloud/cos-stable"
      size  = 50
      type  = "pd-balanced"
    }
  }

  guest_accelerator {
    type  = var.accelerator_type
    count = 1
  }

  scheduling {
    on_host_maintenance = "TERMINATE" # GPU VMs cannot live-migrate
    automatic_restart   = true
  }

  network_interface {
    subnetwork = google_compute_subnetwork.triton.id
    network_ip = google_compute_address.triton[0].address
    # no access_config: no public IP
  }

  shielded_instance_config {
    enable_secure_boot          = true
    enable_vtpm                 = true
    enable_integrity_monitoring = true
  }

  service_account {
    email  = google_service_account.triton.email
    scopes = ["cloud-platform"]
  }

  metadata = {
    block-project-ssh-keys = "true"
    enable-oslogin         = "true"
    google-logging-enabled = "true"
    startup-script = templatefile("${path.module}/startup.sh.tftpl", {
      image    = var.image
      registry = split("/", var.image)[0]
    })
  }
}
