"""What `vulture functions/` may not report as dead (run by `nox -s lint`): each name here is
used outside the functions' own call graph, and says by whom. Anything else unused in the
deployed source fails the lint session."""

from imagen.cloud.jobqueries import JobQueries
from imagen.cloud.jobstore import JobStore
from imagen.core import identity, logs, names, tracing
from imagen.handlers import api
from imagen.image import imaging, tiling
from imagen.inference.breaker import Breaker
from imagen.jobs import events, model

# Called by the platform: the functions' entry points (functions/main.py), Flask's setting,
# Pillow's decompression-bomb limit.
import main  # isort: skip

main.on_upload, main.on_job, main.on_dead_letter, main.on_reconcile
api.flask.Request.max_content_length
imaging.Image.MAX_IMAGE_PIXELS

# The core is shared with the CLI (cli/imagen_cli) and the local stack (emulators/).
JobQueries.recent  # imagen jobs
JobStore.published  # imagen retry, imagen backfill
logs.emit  # imagen backfill's log line
model.is_finished  # imagen submit --wait
names.object_name  # imagen submit --wait
identity.mint_local  # python -m emulators token: the local API's tokens
names.Resources.job_subscription, names.Resources.dead_letter_subscription  # emulators, terraform tests
names.Resources.reconcile_subscription, names.Resources.notification_subscription
names.Resources.topics, names.Resources.subscription_path
events.EVENT_TYPES  # the schema tests: one JSON Schema per type
# Fields of the stored job document that only readers (the console, operators) and Firestore's
# TTL use; terraform/modules/firestore exempts every Job field from indexing (test_firestore.py).
model.Job.expire_at, model.Job.republished_at, model.Job.republishes
model.Job.updated_at, model.Job.publish_pending  # the reconciler queries them; tools read them

# Read through the job document (Firestore, events, the API answer) rather than by name.
model.Job.size_bytes, model.Job.created_at, model.Job.finished_at, model.Job.waits
imaging.Decoded.source_format  # type: ignore[misc]

# Test seams: a tracer provider, the breaker's probe count, the tile overlap.
tracing.use
Breaker.probes  # type: ignore[misc]
tiling.overlap_for
