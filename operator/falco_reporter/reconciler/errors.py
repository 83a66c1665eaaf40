"""The reconciler's named errors, and the one place API failures become retries."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from falco_reporter.kube.errors import KubeError, KubeUnavailable

#: An outage usually ends soon; other API errors (RBAC, validation) need a human or a rollout.
UNAVAILABLE_DELAY = 5.0
ERROR_DELAY = 30.0


class InvalidFalcoAlert(Exception):
    """The FalcoAlert's spec does not match the model; retrying cannot help."""


class RetryLater(Exception):
    """The API server is unavailable or refused us; retry after ``delay`` seconds."""

    def __init__(self, message: str, delay: float = 10.0) -> None:
        super().__init__(message)
        self.delay = delay


@contextmanager
def retry_on_api_errors() -> Iterator[None]:
    """Translate any KubeError raised inside into RetryLater (handle expected ones, e.g. 404, inside)."""
    try:
        yield
    except KubeUnavailable as exc:
        raise RetryLater(f"API server unavailable: {exc}", delay=UNAVAILABLE_DELAY) from exc
    except KubeError as exc:
        raise RetryLater(f"API error: {exc}", delay=ERROR_DELAY) from exc
