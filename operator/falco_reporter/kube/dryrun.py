"""Check proposed Kubernetes manifests with a server-side dry run (nothing is ever created).

Least privilege decides what can be checked: where our identity may not create a kind
(403), the manifest keeps its structural offline check and the result says so. A 409 means
the schema was accepted and only the name exists already.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any

import urllib3
import yaml
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from falco_reporter.kube.client import Kube
from falco_reporter.kube.errors import (
    KubeConflict,
    KubeForbidden,
    KubeInvalid,
    KubeNotFound,
    KubeUnavailable,
    translate,
)
from falco_reporter.validation import ValidationResult


class ManifestDryRun:
    """A ManifestCheck for ReportService: ``check(text) -> ValidationResult``, cached by content."""

    def __init__(self, kube: Kube, *, cache_size: int = 1024) -> None:
        self._kube = kube
        self._cache: OrderedDict[str, ValidationResult] = OrderedDict()
        self._size = cache_size
        self._lock = threading.Lock()
        self._client: DynamicClient | None = None

    def __call__(self, text: str) -> ValidationResult:
        key = hashlib.sha256(text.encode()).hexdigest()
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        result = self._check(text)
        if not any("unreachable" in c for c in result.checks):
            with self._lock:
                self._cache[key] = result
                while len(self._cache) > self._size:
                    self._cache.popitem(last=False)
        return result

    def _check(self, text: str) -> ValidationResult:
        checks: list[str] = []
        errors: list[str] = []
        unverified: list[str] = []
        for doc in (d for d in yaml.safe_load_all(text) if isinstance(d, dict)):
            label = f"{doc.get('kind', '?')} {(doc.get('metadata') or {}).get('name', '?')}"
            try:
                self._dry_create(doc)
                checks.append(f"server-side dry run: {label} accepted")
            except KubeConflict:
                checks.append(f"server-side dry run: {label} schema accepted (name exists)")
            except KubeInvalid as exc:
                errors.append(f"server-side dry run rejected {label}: {exc}")
            except KubeForbidden:
                checks.append(
                    f"server-side dry run of {label} not permitted for our identity; structural check only"
                )
                unverified.append(f"server-side dry run of {label} forbidden (403); structural check only")
            except KubeNotFound as exc:
                checks.append(f"server-side dry run of {label} skipped ({exc}); structural check only")
                unverified.append(
                    f"server-side dry run of {label} not possible ({exc}); structural check only"
                )
            except KubeUnavailable as exc:
                checks.append(f"API server unreachable for dry run of {label} ({exc}); structural check only")
                unverified.append(f"API server unreachable for the dry run of {label}; structural check only")
        return ValidationResult(
            ok=not errors,
            checks=tuple(checks),
            errors=tuple(errors),
            subject="manifest",
            detail="server-side dry run",
            unverified=tuple(unverified),
        )

    def _dry_create(self, doc: dict[str, Any]) -> None:
        # Raw JSON on purpose: the typed client's models reject unknown fields client-side, and
        # the point is to ask the server (fieldValidation=Strict names the bad field).
        api = self._kube.api
        try:
            resource = self._dynamic().resources.get(api_version=doc.get("apiVersion"), kind=doc.get("kind"))
        except ResourceNotFoundError as exc:
            raise KubeNotFound(
                f"this API server does not serve {doc.get('apiVersion')} {doc.get('kind')}"
            ) from exc
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise translate(exc) from exc
        namespace = (doc.get("metadata") or {}).get("namespace") or "default"
        path = resource.path(namespace=namespace) if resource.namespaced else resource.path()
        request = api.param_serialize(
            "POST",
            path,
            query_params=[("dryRun", "All"), ("fieldValidation", "Strict")],
            header_params={"Content-Type": "application/json", "Accept": "application/json"},
            body=doc,
            auth_settings=["BearerToken"],
        )
        try:
            response = api.call_api(*request, _request_timeout=self._kube.timeout)
            if not 200 <= response.status <= 299:
                response.read()  # type: ignore[no-untyped-call]
                api.response_deserialize(response, {})  # raises ApiException with the server's message
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise translate(exc) from exc

    def _dynamic(self) -> DynamicClient:
        with self._lock:
            if self._client is None:
                self._client = DynamicClient(self._kube.api)  # type: ignore[no-untyped-call]
            return self._client
