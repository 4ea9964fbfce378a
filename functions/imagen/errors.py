"""The two kinds of failure a job can meet."""


class BadInput(Exception):
    """The upload can never be processed; the job fails at once with this reason."""


class Transient(Exception):
    """A fault that may pass (service down, timeout); raise so Pub/Sub redelivers."""
