"""Named errors for API outcomes; every client exception is translated here, once."""

from __future__ import annotations

import json

import aiohttp
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config import ConfigException


class KubeError(Exception):
    """Base class; ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class KubeUnavailable(KubeError):
    """The API server could not be reached, timed out, or answered 5xx/429: retry later."""


class KubeNotFound(KubeError):
    """The object (or its namespace) does not exist."""


class KubeConflict(KubeError):
    """409: the object exists already, or its resourceVersion changed."""


class KubeForbidden(KubeError):
    """401/403: our identity may not do this; RBAC needs fixing."""


class KubeNamespaceTerminating(KubeForbidden):
    """403 on create because the namespace is being deleted: the object belongs elsewhere."""


class KubeInvalid(KubeError):
    """400/422: the API server rejected the object as invalid."""


def _message(exc: ApiException) -> str:
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        body = {}
    return str(body.get("message") or exc.reason or "API error")


def translate(exc: BaseException) -> KubeError:
    """Map a client/transport exception to a named KubeError."""
    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        message = f"{status} {_message(exc)}"
        if status == 404:
            return KubeNotFound(message, status)
        if status == 409:
            return KubeConflict(message, status)
        if status == 403 and "being terminated" in message:
            return KubeNamespaceTerminating(message, status)
        if status in (401, 403):
            return KubeForbidden(message, status)
        if status in (400, 422):
            return KubeInvalid(message, status)
        return KubeUnavailable(message, status)
    return KubeUnavailable(f"API server unreachable: {type(exc).__name__}: {exc}".rstrip(": "))


def transport_errors() -> tuple[type[BaseException], ...]:
    """What a client call raises besides our own errors: HTTP statuses, transport failures,
    timeouts, and an unusable kubeconfig (found at the first request)."""
    return (ApiException, aiohttp.ClientError, TimeoutError, OSError, ConfigException)
