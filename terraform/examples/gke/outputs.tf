output "bucket" {
  description = "Bucket to upload images to."
  value       = module.imagen.bucket
}

output "triton_internal_address" {
  description = "Triton's address inside the VPC."
  value       = module.imagen.triton_internal_address
}
