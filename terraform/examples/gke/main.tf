# imagen with Triton on a GKE T4 node pool, autoscaled on Triton's queue time.
module "imagen" {
  source               = "../.."
  project_id           = var.project_id
  region               = "us-central1"
  zone                 = "us-central1-a"
  triton_mode          = "gke"
  triton_image         = var.triton_image
  worker_max_instances = 40
}
