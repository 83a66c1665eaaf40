"""Check proposed Kubernetes manifests with a server-side dry run (nothing is ever created).

Least privilege decides what can be checked: where our identity may not create a kind
(403), the manifest keeps its structural offline check and the result says so. A 409 means
the schema was accepted and only the name exists already.
"""

from __future__ import annotations

import hashlib
import weakref
from collections import OrderedDict
from typing import Any

import yaml
from kubernetes_asyncio.client import ApiClient
from kubernetes_asyncio.dynamic import DynamicClient
from kubernetes_asyncio.dynamic.exceptions import ResourceNotFoundError

from falco_reporter.kube.client import Kube
from falco_reporter.kube.errors import (
    KubeConflict,
    KubeForbidden,
    KubeInvalid,
    KubeNotFound,
    KubeUnavailable,
    translate,
    transport_errors,
)
from falco_reporter.validation import ValidationResult


class ManifestDryRun:
    """A ManifestCheck for ReportService: ``await check(text) -> ValidationResult``, cached by content."""

    def __init__(self, kube: Kube, *, cache_size: int = 1024) -> None:
        self._kube = kube
        self._cache: OrderedDict[str, ValidationResult] = OrderedDict()
        self._size = cache_size
        # Discovery, once per API client (one per event loop).
        self._clients: weakref.WeakKeyDictionary[ApiClient, DynamicClient] = weakref.WeakKeyDictionary()

    async def __call__(self, text: str) -> ValidationResult:
        key = hashlib.sha256(text.encode()).hexdigest()
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        result = await self._check(text)
        if not any("unreachable" in c for c in result.checks):
            self._cache[key] = result
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return result

    async def _check(self, text: str) -> ValidationResult:
        checks: list[str] = []
        errors: list[str] = []
        unverified: list[str] = []
        for doc in (d for d in yaml.safe_load_all(text) if isinstance(d, dict)):
            label = f"{doc.get('kind', '?')} {(doc.get('metadata') or {}).get('name', '?')}"
            try:
                await self._dry_create(doc)
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

    async def _dry_create(self, doc: dict[str, Any]) -> None:
        # Raw JSON on purpose: typed models reject unknown fields client-side, and the point is
        # to ask the server (fieldValidation=Strict names the bad field).
        try:
            dynamic = await self._dynamic()
            resource = await dynamic.resources.get(api_version=doc.get("apiVersion"), kind=doc.get("kind"))
        except ResourceNotFoundError as exc:
            raise KubeNotFound(
                f"this API server does not serve {doc.get('apiVersion')} {doc.get('kind')}"
            ) from exc
        except transport_errors() as exc:
            raise translate(exc) from exc
        namespace = (doc.get("metadata") or {}).get("namespace") or "default"
        path = resource.path(namespace=namespace) if resource.namespaced else resource.path()
        await self._kube.request("POST", path, doc, query=[("dryRun", "All"), ("fieldValidation", "Strict")])

    async def _dynamic(self) -> DynamicClient:
        api = await self._kube.api()
        dynamic = self._clients.get(api)
        if dynamic is None:
            dynamic = self._clients[api] = await DynamicClient(api)
        return dynamic
