"""What the cluster says about the subject, as context evidence: privilege, host access, identity."""

from __future__ import annotations

from falco_reporter.models.enrichment import Enrichment
from falco_reporter.models.report import Evidence
from falco_reporter.reporting.evidence.fields import FieldView


def _ctx(id_: str, observation: str, source: str, value: str) -> Evidence:
    return Evidence(
        id=id_, observation=observation, source=source, value=value, direction="context", strength="moderate"
    )


#: Context ids that widen what a compromise of this container reaches (they raise severity).
ESCAPE_PATHS = frozenset(
    {
        "cluster-privileged",
        "cluster-host-pid",
        "cluster-host-network",
        "cluster-host-path",
        "cluster-capabilities",
        "scope-host",
    }
)


def cluster_context(view: FieldView) -> list[Evidence]:
    enr: Enrichment = view.enrichment
    sec = enr.security
    out: list[Evidence] = []
    if enr.scope == "host" and view.alert.source in ("syscall", ""):
        out.append(
            _ctx(
                "scope-host",
                "The activity ran on the node itself, outside any container.",
                "container.id",
                "host",
            )
        )
    if sec.privileged or view.get("container.privileged") == "true":
        out.append(
            _ctx(
                "cluster-privileged",
                "The container is privileged: full access to the node's devices and kernel.",
                "pod.spec.containers[].securityContext.privileged",
                "true",
            )
        )
    for id_, on, what in (
        ("cluster-host-pid", sec.host_pid, "hostPID: it sees and can signal every process on the node"),
        ("cluster-host-network", sec.host_network, "hostNetwork: it shares the node's network stack"),
        ("cluster-host-ipc", sec.host_ipc, "hostIPC: it shares the node's IPC namespace"),
    ):
        if on:
            out.append(_ctx(id_, f"The pod uses {what}.", "pod.spec", "true"))
    if sec.host_path_volumes:
        out.append(
            _ctx(
                "cluster-host-path",
                "The pod mounts directories of the node (hostPath).",
                "pod.spec.volumes",
                ", ".join(sec.host_path_volumes),
            )
        )
    if sec.capabilities_added:
        out.append(
            _ctx(
                "cluster-capabilities",
                "The container adds Linux capabilities.",
                "pod.spec.containers[].securityContext.capabilities.add",
                ", ".join(sec.capabilities_added),
            )
        )
    if enr.pod_found and enr.automount_token:
        out.append(
            _ctx(
                "cluster-sa-token",
                f"The service account token of {enr.service_account!r} is mounted, "
                "so the process can call the API server with its rights.",
                "pod.spec.automountServiceAccountToken",
                enr.service_account,
            )
        )
    uid = view.get("user.uid")
    if view.get("user.name") == "root" or uid == "0" or sec.run_as_user == 0:
        out.append(
            _ctx("process-root", "The process runs as root.", "user.name", view.get("user.name") or "uid 0")
        )
    if enr.owner_chain:
        chain = " -> ".join(f"{o.kind}/{o.name}" for o in enr.owner_chain)
        out.append(
            _ctx("cluster-owner", f"The pod is managed by {chain}.", "metadata.ownerReferences", chain)
        )
    return out
