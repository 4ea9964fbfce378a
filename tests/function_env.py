"""The functions' environment in the integration and system tiers (on top of Config's defaults):
a short lease, so a killed worker's job is retaken within seconds, and small input limits, so
the over-limit files stay small."""

FUNCTION_ENV = {"JOB_LEASE_S": "8", "MAX_INPUT_BYTES": str(8 * 1024 * 1024), "MAX_INPUT_PIXELS": "20000000"}
