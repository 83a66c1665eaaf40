"""Build an Enrichment for an alert from whatever ObjectSource is at hand."""

from __future__ import annotations

from typing import Any

from falco_reporter.enrichment.source import Obj, ObjectSource
from falco_reporter.models.enrichment import (
    ContainerInfo,
    Enrichment,
    OwnerLink,
    SecurityContextSummary,
    WorkloadRef,
)
from falco_reporter.models.falco import FalcoAlertSpec

MAX_OWNER_DEPTH = 5


async def enrich(spec: FalcoAlertSpec, source: ObjectSource) -> Enrichment:
    """Look up the alert's pod and its context. Missing objects are recorded, never raised."""
    subject = spec.subject
    result = Enrichment(namespace=subject.namespace, pod=subject.pod)
    pod: Obj | None = None
    if subject.namespace and subject.pod:
        result.scope = "kubernetes"
        pod = await source.pod(subject.namespace, subject.pod)
        if pod is None:
            result.missing.append(f"Pod {subject.namespace}/{subject.pod}")
            result.notes.append("The pod named by the alert no longer exists (or was never visible to us).")
    elif subject.container_id and subject.container_id != "host":
        pod = await _pod_by_container(source, subject.container_id, spec.hostname or None)
        if pod is None:
            result.scope = "container"
            result.notes.append(
                f"No pod runs container {subject.container_id}: a container outside Kubernetes, or a pod already gone."
            )
        else:
            result.scope = "kubernetes"
            result.notes.append(f"Pod found by container id {subject.container_id}.")
    else:
        result.scope = "host" if spec.source in ("syscall", "") else spec.source
    if pod is None:
        await _node_from_hostname(result, spec, source)
        result.container = ContainerInfo(
            name=subject.container_name, image=subject.image, container_id=subject.container_id
        )
        return result
    _from_pod(result, pod, subject.container_id, subject.container_name)
    await _owners(result, pod, source)
    await _service_account(result, pod, source)
    return result


async def _node_from_hostname(result: Enrichment, spec: FalcoAlertSpec, source: ObjectSource) -> None:
    # Falco's hostname is whatever its container was called (a container id, a pod name), so it
    # names a node only when a Node of that name exists; audit events come from the API server.
    if spec.source in ("syscall", "") and spec.hostname and await source.node_exists(spec.hostname):
        result.node = spec.hostname


def _short(container_id: str) -> str:
    return container_id.split("://", 1)[-1]


async def _pod_by_container(source: ObjectSource, container_id: str, node: str | None) -> Obj | None:
    wanted = _short(container_id)
    candidates = await source.pods(node=node) if node else []
    if not candidates:
        candidates = await source.pods()
    for pod in candidates:
        for status in _statuses(pod):
            if _short(str(status.get("containerID", ""))).startswith(wanted):
                return pod
    return None


def _statuses(pod: Obj) -> list[Obj]:
    status = pod.get("status") or {}
    return [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
        *(status.get("ephemeralContainerStatuses") or []),
    ]


def _from_pod(result: Enrichment, pod: Obj, container_id: str, container_name: str) -> None:
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    result.pod_found = True
    result.namespace = meta.get("namespace", result.namespace)
    result.pod = meta.get("name", result.pod)
    result.node = spec.get("nodeName", "")
    result.labels = dict(meta.get("labels") or {})
    statuses = _statuses(pod)
    status = _pick_status(statuses, container_id, container_name)
    containers: list[Obj] = [
        *(spec.get("initContainers") or []),
        *(spec.get("containers") or []),
        *(spec.get("ephemeralContainers") or []),
    ]
    name = (status or {}).get("name") or (
        containers[0]["name"] if len(spec.get("containers") or []) == 1 else ""
    )
    container = next((c for c in containers if c.get("name") == name), {})
    image_id = str((status or {}).get("imageID", ""))
    result.container = ContainerInfo(
        name=name,
        image=str((status or {}).get("image") or container.get("image", "")),
        image_id=image_id,
        image_digest=_digest(image_id),
        container_id=str((status or {}).get("containerID", "")) or container_id,
    )
    result.security = _security(spec, container)


def _digest(image_id: str) -> str:
    """The digest in a container status' imageID: ``repo@sha256:...`` from a registry, or a bare
    ``sha256:...`` (the image config's digest) for an image loaded without one (kind load, ctr import)."""
    digest = _short(image_id).rsplit("@", 1)[-1]
    return digest if digest.startswith("sha256:") else ""


def _pick_status(statuses: list[Obj], container_id: str, container_name: str) -> Obj | None:
    if container_id and container_id != "host":
        for status in statuses:
            if _short(str(status.get("containerID", ""))).startswith(_short(container_id)):
                return status
    wanted = _k8s_container_name(container_name)
    for status in statuses:
        if wanted and status.get("name") == wanted:
            return status
    return statuses[0] if len(statuses) == 1 else None


def _k8s_container_name(name: str) -> str:
    # Older Falco reported Docker-style names: k8s_<container>_<pod>_<namespace>_<uid>_<n>.
    parts = name.split("_")
    return parts[1] if len(parts) > 2 and parts[0] == "k8s" else name


def _security(pod_spec: Obj, container: Obj) -> SecurityContextSummary:
    psc: Obj = pod_spec.get("securityContext") or {}
    csc: Obj = container.get("securityContext") or {}

    def pick(key: str) -> Any:
        return csc[key] if key in csc else psc.get(key)

    caps: Obj = csc.get("capabilities") or {}
    seccomp = (csc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type", "")
    host_paths = [
        f"{v.get('name', '')}:{(v.get('hostPath') or {}).get('path', '')}"
        for v in pod_spec.get("volumes") or []
        if "hostPath" in v
    ]
    return SecurityContextSummary(
        privileged=bool(csc.get("privileged", False)),
        run_as_user=pick("runAsUser"),
        run_as_non_root=pick("runAsNonRoot"),
        allow_privilege_escalation=csc.get("allowPrivilegeEscalation"),
        read_only_root_filesystem=csc.get("readOnlyRootFilesystem"),
        capabilities_added=list(caps.get("add") or []),
        capabilities_dropped=list(caps.get("drop") or []),
        seccomp_profile=seccomp,
        host_pid=bool(pod_spec.get("hostPID", False)),
        host_network=bool(pod_spec.get("hostNetwork", False)),
        host_ipc=bool(pod_spec.get("hostIPC", False)),
        host_path_volumes=host_paths,
    )


def _controller(obj: Obj) -> Obj | None:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return next((r for r in refs if r.get("controller")), refs[0] if refs else None)


async def _owners(result: Enrichment, pod: Obj, source: ObjectSource) -> None:
    namespace = result.namespace
    current: Obj | None = pod
    top = WorkloadRef(kind="Pod", name=result.pod)
    for _ in range(MAX_OWNER_DEPTH):
        ref = _controller(current) if current else None
        if ref is None:
            break
        kind, name = str(ref.get("kind", "")), str(ref.get("name", ""))
        current = await source.owner(kind, namespace, name)
        result.owner_chain.append(OwnerLink(kind=kind, name=name, found=current is not None))
        top = WorkloadRef(kind=kind, name=name, **_workload_facts(current))
        if current is None:
            result.missing.append(f"{kind} {namespace}/{name}")
            break
    result.workload = top


def _workload_facts(owner: Obj | None) -> dict[str, Any]:
    spec: Obj = (owner or {}).get("spec") or {}
    labels = (spec.get("selector") or {}).get("matchLabels") or {}
    return {
        "selector": {str(k): str(v) for k, v in labels.items()},
        "schedule": str(spec.get("schedule") or ""),
    }


async def _service_account(result: Enrichment, pod: Obj, source: ObjectSource) -> None:
    spec = pod.get("spec") or {}
    name = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    result.service_account = name
    automount = spec.get("automountServiceAccountToken")
    if automount is None:
        account = await source.service_account(result.namespace, name)
        if account is None:
            result.missing.append(f"ServiceAccount {result.namespace}/{name}")
        else:
            automount = account.get("automountServiceAccountToken")
    # Kubernetes mounts the token unless the pod or its service account opts out.
    result.automount_token = True if automount is None else bool(automount)
