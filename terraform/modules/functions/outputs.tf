output "upload_function" {
  description = "Name of the on_upload function."
  value       = google_cloudfunctions2_function.on_upload.name
}

output "job_functions" {
  description = "Model name → on_job function name."
  value       = { for m, f in google_cloudfunctions2_function.on_job : m => f.name }
}

output "job_function_uris" {
  description = "Model name → HTTPS URI of its on_job function (push endpoint)."
  value       = { for m, f in google_cloudfunctions2_function.on_job : m => f.service_config[0].uri }
}

output "dead_letter_function" {
  description = "Name of the on_dead_letter function."
  value       = google_cloudfunctions2_function.on_dead_letter.name
}

output "dead_letter_function_uri" {
  description = "HTTPS URI of the on_dead_letter function (push endpoint)."
  value       = google_cloudfunctions2_function.on_dead_letter.service_config[0].uri
}

output "invoker_service_account" {
  description = "Email of the identity Eventarc and the push subscriptions invoke the functions as."
  value       = google_service_account.invoker.email
}

output "worker_service_account" {
  description = "Email of the on_job service account."
  value       = google_service_account.worker.email
}

output "reconcile_function_uri" {
  description = "HTTPS URI of the on_reconcile function (push endpoint)."
  value       = google_cloudfunctions2_function.on_reconcile.service_config[0].uri
}

output "api_uri" {
  description = "HTTPS URI of the HTTP API (callers need roles/run.invoker: api_invokers)."
  value       = google_cloudfunctions2_function.api.service_config[0].uri
}

output "api_service_account" {
  description = "Email of the HTTP API's service account."
  value       = google_service_account.api.email
}
