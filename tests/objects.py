"""Our custom resources as the tests read them: straight from the API server with the official
client (not through the product's kube layer), so a bug there cannot hide itself."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from devcluster.reporter import wait_for

GROUP, VERSION = "falcoreporter.io", "v1alpha1"


def custom(kube_api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube_api)


def get(kube_api: client.ApiClient, plural: str, ns: str, name: str) -> dict[str, Any] | None:
    """The object, or None when it does not exist."""
    try:
        obj: dict[str, Any] = custom(kube_api).get_namespaced_custom_object(GROUP, VERSION, ns, plural, name)
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return obj


def listed(kube_api: client.ApiClient, plural: str, ns: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = custom(kube_api).list_namespaced_custom_object(GROUP, VERSION, ns, plural)[
        "items"
    ]
    return items


def names(kube_api: client.ApiClient, plural: str, ns: str) -> set[str]:
    return {o["metadata"]["name"] for o in listed(kube_api, plural, ns)}


def condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    """The object's status condition of type ``kind``, or {}."""
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == kind), {})


def alert_for(namespace: str, pod: str, **fields: Any) -> dict[str, Any]:
    """A minimal Falco alert (Terminal shell in container) for ``pod`` in ``namespace``."""
    return {
        "rule": "Terminal shell in container",
        "priority": "Notice",
        "time": "2026-11-20T09:12:44.120345678Z",
        "output": "A shell was spawned in a container with an attached terminal",
        "source": "syscall",
        "output_fields": {
            "k8s.ns.name": namespace,
            "k8s.pod.name": pod,
            "proc.name": "bash",
            "proc.cmdline": "bash",
            "container.id": "4b1f0a9c2d3e",
            **fields,
        },
    }


def wait_report(kube_api: client.ApiClient, ns: str, name: str, timeout: float = 30) -> dict[str, Any]:
    """The report once written and its alert marked Reported (so the operator is done with both).

    The report is created first and the alert's status patched right after, so waiting for the
    report alone races with that patch.
    """

    def done() -> dict[str, Any] | None:
        if condition(get(kube_api, "falcoalerts", ns, name), "Reported").get("status") != "True":
            return None
        return get(kube_api, "alertreports", ns, name)

    report: dict[str, Any] = wait_for(done, timeout=timeout, what=f"report {ns}/{name}")
    return report
