# imagen with Triton on one T4 GPU VM.
module "imagen" {
  source               = "../.."
  project_id           = var.project_id
  region               = "us-central1"
  zone                 = "us-central1-a"
  triton_mode          = "vm"
  triton_image         = var.triton_image
  results_ttl_days     = 30
}
