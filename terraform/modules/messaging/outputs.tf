output "job_topics" {
  description = "Model name → job topic name."
  value       = { for m, t in google_pubsub_topic.jobs : m => t.name }
}

output "job_topic_ids" {
  description = "Model name → job topic id (projects/P/topics/T)."
  value       = { for m, t in google_pubsub_topic.jobs : m => t.id }
}

output "dead_letter_topic" {
  description = "Name of the dead-letter topic."
  value       = google_pubsub_topic.dead_letter.name
}

output "events_topic" {
  description = "Name of the completion-events topic other pipelines subscribe to."
  value       = google_pubsub_topic.events.name
}

output "job_subscriptions" {
  description = "Model name → push subscription name."
  value       = { for m, s in google_pubsub_subscription.jobs : m => s.name }
}

output "reconcile_topic" {
  description = "Name of the topic the reconciler's schedule publishes to."
  value       = google_pubsub_topic.reconcile.name
}
