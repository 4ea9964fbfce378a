"""The custom metadata keys imagen writes on every result object (one place for all of them).

A result also carries the options it was written with, under their own `imagen-*` keys
(imagen.core.options). Other pipelines chain on these; docs/using.md lists them.
"""

from __future__ import annotations

RESULT = "imagen-result"  # on every object the pipeline writes: never a job's source
SOURCE = "imagen-source"  # gs:// URI of the upload it was made from
SOURCE_GENERATION = "imagen-source-generation"  # that upload's generation
RUN = "imagen-run"  # 0, or the backfill --all run that wrote it
MODEL = "imagen-model"
MODEL_VERSION = "imagen-model-version"  # the Triton model version that ran
CROP_BOX = "imagen-crop-box"  # background_remove with imagen-crop=subject: x0,y0,x1,y1 in the source
ALPHA = "imagen-alpha"  # "true" when the result kept an alpha channel

# On an upload made through the HTTP API: the email of the caller who made it (its job's owner).
OWNER = "imagen-owner"

RESULT_KEYS = (RESULT, SOURCE, SOURCE_GENERATION, RUN, MODEL, MODEL_VERSION, CROP_BOX, ALPHA)
