output "alert_policies" {
  description = "The alert policies' names, by key."
  value       = { for k, p in google_monitoring_alert_policy.alerts : k => p.name }
}

output "dashboard" {
  description = "The dashboard's id."
  value       = google_monitoring_dashboard.imagen.id
}
