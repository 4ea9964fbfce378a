output "bucket" {
  description = "Name of the images bucket."
  value       = google_storage_bucket.images.name
}

output "bucket_url" {
  description = "gs:// URL of the images bucket."
  value       = google_storage_bucket.images.url
}
