output "bucket" {
  description = "Images bucket: upload under gs://BUCKET/<model>/, results appear under gs://BUCKET/results/<model>/."
  value       = module.storage.bucket
}

output "job_topics" {
  description = "Model name → job topic."
  value       = module.messaging.job_topics
}

output "dead_letter_topic" {
  description = "Topic that receives job messages after the last delivery attempt."
  value       = module.messaging.dead_letter_topic
}

output "events_topic" {
  description = "Completion-events topic (imagen.job.v1.done / failed) to chain other pipelines on."
  value       = module.messaging.events_topic
}

output "upload_function" {
  description = "Name of the on_upload function."
  value       = module.functions.upload_function
}

output "job_functions" {
  description = "Model name → on_job function name."
  value       = module.functions.job_functions
}

output "dead_letter_function" {
  description = "Name of the dead-letter handler function."
  value       = module.functions.dead_letter_function
}

output "triton_internal_address" {
  description = "Triton's HTTP address inside the VPC (host:port)."
  value       = module.triton.triton_url
}

output "api_url" {
  description = "The HTTP API (POST /api/v1/images/{model}, GET /api/v1/jobs/{id}, GET /health); call it with an identity token of an api_invokers member."
  value       = module.functions.api_uri
}
