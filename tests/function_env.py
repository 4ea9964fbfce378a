"""The functions' environment in the test tiers, on top of Config's defaults."""

from emulators.settings import LOCAL_FUNCTION_ENV

# Small input limits, so the over-limit files stay small.
INPUT_LIMITS = {"MAX_INPUT_BYTES": str(8 * 1024 * 1024), "MAX_INPUT_PIXELS": "20000000"}
# Integration: handlers called in-process, no delivery backoff to keep a ratio with.
FUNCTION_ENV = {**INPUT_LIMITS, "JOB_LEASE_S": "8"}
# System: the local stack's timings (production's scaled, ratios kept).
SYSTEM_FUNCTION_ENV = {**LOCAL_FUNCTION_ENV, **INPUT_LIMITS}
