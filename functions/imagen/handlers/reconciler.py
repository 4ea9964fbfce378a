"""on_reconcile (on a schedule): jobs no message will move on are published again.

A job `running` well past its lease lost its worker (killed, or its deliveries were
acknowledged while that worker still held the lease); a job `queued` whose publish never
happened (a retry whose publish failed) or that has waited far longer than any backoff has no
message in flight. Publishing again is safe: the job store's claim lets one delivery run it,
and a job out of attempts is failed by that claim with its last error.

An object under a model prefix with no job (its storage event was lost upstream) gets one: each
pass looks at up to RECONCILE_SCAN_MAX objects, going on from where the last pass stopped
(cursors kept in Firestore), so the whole bucket is covered pass after pass. An object newer
than the publish grace is left to its event; one whose result already exists is left alone.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from imagen.core import logs, usage
from imagen.core.config import Config
from imagen.core.models import MODELS
from imagen.flow import intake
from imagen.flow.services import Services
from imagen.jobs import messages
from imagen.jobs.transitions import message_of


def handle_reconcile(cfg: Config, svc: Services, event_type: str = "", data: Any = None) -> int:
    """One pass; returns how many jobs were published again or created."""
    with usage.metered("on_reconcile"):
        return _republish_stuck(cfg, svc) + create_missing_jobs(cfg, svc)


def _republish_stuck(cfg: Config, svc: Services) -> int:
    stuck = svc.queries.stuck(
        cfg.reconcile_lease_margin_s, cfg.reconcile_publish_grace_s, cfg.reconcile_queued_max_s
    )
    done = 0
    for job in stuck:
        job_id, model = job.job_id, job.model
        try:  # one job's fault (e.g. its document locked) leaves the others to this pass
            svc.publisher.job(message_of(job))
            svc.jobs.republished(job_id)
        except Exception as exc:
            logs.reconcile_failed(job_id, model, f"{type(exc).__name__}: {exc}")
            continue
        logs.reconciled(job_id, model, str(job.status), "published again")
        done += 1
    return done


def create_missing_jobs(cfg: Config, svc: Services) -> int:
    """Jobs for objects under the model prefixes that have none; returns how many were created."""
    if not cfg.bucket or not cfg.reconcile_scan_max:
        return 0
    cursors = svc.queries.scan_cursors()
    per_prefix = max(1, cfg.reconcile_scan_max // len(MODELS))
    settled = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=cfg.reconcile_publish_grace_s)
    created = 0
    for model in MODELS:
        after = cursors.get(model, "")
        scanned = [
            listed
            for listed in svc.storage.uploads(
                cfg.bucket, f"{model}/", start_offset=after or None, max_results=per_prefix + 1
            )
            if listed.upload.name != after
        ][:per_prefix]
        cursors[model] = scanned[-1].upload.name if len(scanned) == per_prefix else ""  # "": start over
        uploads = []
        for listed in scanned:
            if listed.created is None or listed.created > settled:
                continue  # its storage event may still be on its way
            routed, _ = messages.route(listed.upload, cfg.names.result_prefix)
            if routed is not None:
                uploads.append(listed.upload)
        ids = {messages.job_id(u.bucket, u.name, u.generation): u for u in uploads}
        for job_id in sorted(set(ids) - svc.jobs.existing(list(ids))):
            upload = ids[job_id]
            try:
                if svc.storage.has_result(upload, intake.result_names(cfg.names, model, upload)):
                    continue  # processed, and its job document is gone: nothing to do again
                intake.queue_upload(cfg.names, svc, upload, model)
            except Exception as exc:  # the next pass tries it again
                logs.reconcile_failed(job_id, model, f"{type(exc).__name__}: {exc}")
                continue
            logs.reconciled(job_id, model, "missing", "created: its object had no job")
            created += 1
    svc.queries.save_scan_cursors(cursors)
    return created
