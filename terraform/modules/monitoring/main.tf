# What an operator watches: log-based metrics from the functions' JSON log events, alert
# policies on them and on Pub/Sub, Cloud Run and Triton metrics, and one dashboard.
locals {
  channels = [for c in google_monitoring_notification_channel.email : c.id]
  # Conditions, by alert key: [display name, PromQL (Cloud Monitoring's Managed Service for
  # Prometheus reads the GCP metrics and the log-based ones), seconds it must hold, what to do].
  alerts = {
    dead_letters = [
      "imagen: messages in imagen-dead-letter",
      "max(pubsub_googleapis_com:subscription_num_undelivered_messages{monitored_resource=\"pubsub_subscription\",subscription_id=\"imagen-dead-letter-handler\"}) > 0",
      300,
      "Jobs whose deliveries were all spent wait for the dead-letter handler, which fails or republishes each. Messages that stay: on_dead_letter is failing; read its logs (event bad_message, job_failed).",
    ]
    failure_rate = [
      "imagen: share of failed jobs per model",
      "sum by (model) (rate(logging_googleapis_com:user_imagen_job_failed[15m])) / (sum by (model) (rate(logging_googleapis_com:user_imagen_job_failed[15m])) + sum by (model) (rate(logging_googleapis_com:user_imagen_job_done[15m]))) > ${var.failure_rate_threshold}",
      900,
      "Read the reasons (imagen jobs --status failed, or job_failed log events): one hostile uploader is not an outage; the same reason on every job (Triton version, a bad deploy) is.",
    ]
    oldest_unacked = [
      "imagen: oldest undelivered job message per model",
      "max by (subscription_id) (pubsub_googleapis_com:subscription_oldest_unacked_message_age{monitored_resource=\"pubsub_subscription\",subscription_id=~\"imagen-.*-worker\"}) > ${var.oldest_unacked_threshold_s}",
      300,
      "Jobs wait: the workers are at worker_max_instances, or failing before they acknowledge (5xx), or Triton is down. Check function errors and Triton's queue first.",
    ]
    function_errors = [
      "imagen: function 5xx responses",
      "sum by (service_name) (rate(run_googleapis_com:request_count{monitored_resource=\"cloud_run_revision\",service_name=~\"imagen-.*\",response_code_class=\"5xx\"}[5m])) > 0.05",
      300,
      "A 5xx is a transient fault being retried (Triton, Firestore or Storage unreachable). Sustained: look at job_retrying log events for the fault.",
    ]
    memory_kills = [
      "imagen: function instances killed for memory",
      "sum(rate(logging_googleapis_com:user_imagen_memory_kills[10m])) > 0",
      60,
      "An instance went over its memory: a job's plan was under its real need. Find the job (its input size and format in the log before), and raise worker_memory or report the format.",
    ]
    triton_queue = [
      "imagen: Triton queue time",
      "sum(rate(nv_inference_queue_duration_us[5m])) / sum(rate(nv_inference_request_success[5m])) / 1000 > ${var.triton_queue_threshold_ms}",
      600,
      "Triton cannot keep up: GKE scales on this (HPA); on a VM add a GPU or move to triton_mode = gke. Needs Triton's /metrics scraped (PodMonitoring on GKE, the Ops Agent on the VM).",
    ]
    gpu_busy = [
      "imagen: Triton GPU utilisation",
      "avg(nv_gpu_utilization) > 0.9",
      1800,
      "The GPU has been nearly saturated for 30 minutes: queue time will follow. Plan capacity (gke_max_nodes, a larger accelerator).",
    ]
    # Workers log service_down when they find Triton down and at each failed probe while it stays
    # down (a probe is made on a delivery, at most every TRITON_PROBE_S; a waiting job's message
    # comes back at least every maximum_backoff, 300 s), and service_up when a probe finds it back.
    # So: Triton seen down within 10 minutes and not seen back within them, held for the alert's
    # duration; a blip (down, then up a minute later) never holds.
    triton_down = [
      "imagen: Triton down",
      "(sum(increase(logging_googleapis_com:user_imagen_service_down{service=\"triton\"}[10m])) > 0) unless (sum(increase(logging_googleapis_com:user_imagen_service_up{service=\"triton\"}[10m])) > 0)",
      var.triton_down_alert_s,
      <<-EOT
      **The workers have found Triton down for ${var.triton_down_alert_s / 60} minutes without a break.**

      **What it means.** Jobs are waiting, not failing. A worker that finds Triton unreachable or
      refusing work answers each delivery at once without claiming its job: no attempt is spent,
      and the job stays `queued`, with `waiting_for` saying what it waits for. A job fails only
      once it has waited WAIT_HORIZON_S (`wait_horizon_seconds`: ${var.wait_horizon_seconds} s,
      ${var.wait_horizon_seconds / 3600} h), with the reason "waited ... for triton".

      **How to check.**
      - Triton itself. VM (`triton_mode = "vm"`): `gcloud compute instances describe imagen-triton
        --zone ZONE --format='value(status)'`, then its serial console and container log. GKE:
        `kubectl -n imagen get pods -l app=triton` (restarts, OOMKilled, Pending for a GPU node)
        and `kubectl -n imagen logs deployment/triton`.
      - Readiness from inside the VPC: `curl -sf http://ADDRESS/v2/health/ready` (ADDRESS:
        `terraform output -raw triton_internal_address`) succeeds once every model is loaded.
      - The workers' `service_down` log lines (`jsonPayload.event="service_down"`): their `error`
        tells unreachable (refused, timed out) from busy (Triton's queue rejecting requests: see
        the Triton queue time alert); `down_s` is how long each worker has seen it down.

      **What to do.** Restore Triton: `gcloud compute instances reset imagen-triton --zone ZONE`,
      or `kubectl -n imagen rollout restart deployment/triton`, and fix what its log shows (a model
      that failed to load, a GPU driver error). Nothing else is needed: the workers' probes find it
      back (`service_up`) and the waiting jobs drain at Triton's pace. If the outage will outlast
      the horizon, raise `wait_horizon_seconds` (at most 604800, 7 days) and apply before the
      oldest waiting job reaches it; otherwise expect those jobs to fail with the reason
      "waited ... for triton", and upload them again once Triton is back.
      EOT
    ]
  }
}

resource "google_monitoring_notification_channel" "email" {
  count        = var.notification_email == "" ? 0 : 1
  project      = var.project_id
  display_name = "imagen alerts"
  type         = "email"
  labels       = { email_address = var.notification_email }
  user_labels  = var.labels
}

# Counters over the functions' structured log events (functions/imagen/core/logs.py), labelled by model.
resource "google_logging_metric" "job_events" {
  for_each = toset(["job_done", "job_failed"])
  project  = var.project_id
  name     = "imagen_${each.key}"
  filter   = "resource.type=\"cloud_run_revision\" AND jsonPayload.event=\"${each.key}\""
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    labels {
      key        = "model"
      value_type = "STRING"
    }
  }
  label_extractors = { model = "EXTRACT(jsonPayload.model)" }
}

# A worker found a service down (and at each failed probe while it stays down), by service.
resource "google_logging_metric" "service_down" {
  project = var.project_id
  name    = "imagen_service_down"
  filter  = "resource.type=\"cloud_run_revision\" AND jsonPayload.event=\"service_down\""
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    labels {
      key        = "service"
      value_type = "STRING"
    }
  }
  label_extractors = { service = "EXTRACT(jsonPayload.service)" }
}

# A worker's probe found the service answering again, by service.
resource "google_logging_metric" "service_up" {
  project = var.project_id
  name    = "imagen_service_up"
  filter  = "resource.type=\"cloud_run_revision\" AND jsonPayload.event=\"service_up\""
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    labels {
      key        = "service"
      value_type = "STRING"
    }
  }
  label_extractors = { service = "EXTRACT(jsonPayload.service)" }
}

# Cloud Run logs an instance killed for exceeding its memory limit.
resource "google_logging_metric" "memory_kills" {
  project = var.project_id
  name    = "imagen_memory_kills"
  filter  = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=~\"^imagen-\" AND textPayload:\"Memory limit of\""
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
  }
}

resource "google_monitoring_alert_policy" "alerts" {
  for_each              = local.alerts
  project               = var.project_id
  display_name          = each.value[0]
  combiner              = "OR"
  notification_channels = local.channels
  conditions {
    display_name = each.value[0]
    condition_prometheus_query_language {
      query               = each.value[1]
      duration            = "${each.value[2]}s"
      evaluation_interval = "60s"
    }
  }
  documentation {
    content   = each.value[3]
    mime_type = "text/markdown"
  }
  depends_on = [
    google_logging_metric.job_events,
    google_logging_metric.memory_kills,
    google_logging_metric.service_down,
    google_logging_metric.service_up,
  ]
}

resource "google_monitoring_dashboard" "imagen" {
  project = var.project_id
  dashboard_json = jsonencode({
    displayName = "imagen"
    mosaicLayout = {
      columns = 12
      tiles = [
        for i, chart in [
          ["Jobs done per model", "sum by (model) (rate(logging_googleapis_com:user_imagen_job_done[5m]))"],
          ["Jobs failed per model", "sum by (model) (rate(logging_googleapis_com:user_imagen_job_failed[5m]))"],
          ["Oldest undelivered job message (s)", "max by (subscription_id) (pubsub_googleapis_com:subscription_oldest_unacked_message_age{monitored_resource=\"pubsub_subscription\",subscription_id=~\"imagen-.*\"})"],
          ["Dead letters waiting", "max(pubsub_googleapis_com:subscription_num_undelivered_messages{monitored_resource=\"pubsub_subscription\",subscription_id=\"imagen-dead-letter-handler\"})"],
          ["Function responses by class", "sum by (service_name, response_code_class) (rate(run_googleapis_com:request_count{monitored_resource=\"cloud_run_revision\",service_name=~\"imagen-.*\"}[5m]))"],
          ["Function memory (p99 of instances)", "histogram_quantile(0.99, sum by (service_name, le) (rate(run_googleapis_com:container_memory_utilizations_bucket{monitored_resource=\"cloud_run_revision\",service_name=~\"imagen-.*\"}[5m])))"],
          ["Triton queue time (ms per request)", "sum by (model) (rate(nv_inference_queue_duration_us[5m])) / sum by (model) (rate(nv_inference_request_success[5m])) / 1000"],
          ["Triton GPU utilisation", "avg(nv_gpu_utilization)"],
          ["Workers finding a service down (events/s)", "sum by (service) (rate(logging_googleapis_com:user_imagen_service_down[5m]))"],
          ] : {
          xPos   = (i % 2) * 6
          yPos   = floor(i / 2) * 4
          width  = 6
          height = 4
          widget = {
            title = chart[0]
            xyChart = {
              dataSets = [{ prometheusQuery = chart[1], plotType = "LINE" }]
            }
          }
        }
      ]
    }
  })
}
