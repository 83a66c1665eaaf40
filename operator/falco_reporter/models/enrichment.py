"""What the operator learned about an alert's subject from the API server."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Camel(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid", use_attribute_docstrings=True)


class WorkloadRef(_Camel):
    kind: str = ""
    name: str = ""
    selector: dict[str, str] = Field(default_factory=dict)
    """The workload's spec.selector.matchLabels, so a proposed patch of it keeps its selector."""
    schedule: str = ""
    """A CronJob's schedule, so a proposed manifest of it is complete."""


class OwnerLink(_Camel):
    kind: str
    name: str
    found: bool = True


class ContainerInfo(_Camel):
    name: str = ""
    image: str = ""
    image_id: str = Field(default="", alias="imageID")
    image_digest: str = Field(default="", alias="imageDigest")
    container_id: str = Field(default="", alias="containerID")


class SecurityContextSummary(_Camel):
    """The security-relevant settings of the pod and the alerting container."""

    privileged: bool = False
    run_as_user: int | None = Field(default=None, alias="runAsUser")
    run_as_non_root: bool | None = Field(default=None, alias="runAsNonRoot")
    allow_privilege_escalation: bool | None = Field(default=None, alias="allowPrivilegeEscalation")
    read_only_root_filesystem: bool | None = Field(default=None, alias="readOnlyRootFilesystem")
    capabilities_added: list[str] = Field(default_factory=list, alias="capabilitiesAdded")
    capabilities_dropped: list[str] = Field(default_factory=list, alias="capabilitiesDropped")
    seccomp_profile: str = Field(default="", alias="seccompProfile")
    host_pid: bool = Field(default=False, alias="hostPID")
    host_network: bool = Field(default=False, alias="hostNetwork")
    host_ipc: bool = Field(default=False, alias="hostIPC")
    host_path_volumes: list[str] = Field(default_factory=list, alias="hostPathVolumes")


class Enrichment(_Camel):
    """Stored in ``FalcoAlert.status.enrichment`` and copied into the report's subject."""

    scope: str = Field(
        default="unknown",
        description="kubernetes (a pod was named or found), container (non-Kubernetes container), host, or unknown",
    )
    pod_found: bool = Field(default=False, alias="podFound")
    namespace: str = ""
    pod: str = ""
    container: ContainerInfo = Field(default_factory=ContainerInfo)
    node: str = ""
    """The pod's spec.nodeName, or Falco's hostname when a Node of that name exists."""
    service_account: str = Field(default="", alias="serviceAccount")
    automount_token: bool | None = Field(default=None, alias="automountServiceAccountToken")
    owner_chain: list[OwnerLink] = Field(default_factory=list, alias="ownerChain")
    workload: WorkloadRef = Field(default_factory=WorkloadRef)
    security: SecurityContextSummary = Field(default_factory=SecurityContextSummary)
    labels: dict[str, str] = Field(default_factory=dict)
    missing: list[str] = Field(
        default_factory=list, description="Objects looked up but not found, as 'Kind ns/name'"
    )
    notes: list[str] = Field(default_factory=list)
