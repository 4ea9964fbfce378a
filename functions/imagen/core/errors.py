"""The kinds of failure a job can meet, and who pays for each."""


class BadInput(Exception):
    """The upload can never be processed; the job fails at once with this reason."""


class NotAnImage(BadInput):
    """The file is no image at all (text, a PDF, …), as opposed to a broken or oversized one."""


class Transient(Exception):
    """A fault that may pass (an error during the job's own work); raise so Pub/Sub redelivers.
    It spends one of the job's attempts."""


class ServiceDown(Transient):
    """A service around the job (Triton, storage) is unreachable or busy: the job waits for it.

    It costs the job time, never an attempt: the job goes back to `queued` with `waiting_for`
    and its attempt given back, until the service answers or the wait horizon passes.
    """

    def __init__(self, service: str, message: str, trip: bool = True) -> None:
        super().__init__(message)
        self.service = service
        self.trip = trip  # whether the service is down for everyone (False: slow for this job)
