"""What the API server's OpenAPI does not say: a few enums, cross-field rules and value formats.

The served OpenAPI v3 carries types, required fields and most enums, but no cross-field validation
(that lives in Go code), so these are kept here, keyed by OpenAPI definition name; ``k8s_schema``
attaches them to the generated schemas. Messages name the field path the way the API server's
validation does.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from falco_reporter.validation.result import names

Path = tuple[str | int, ...]
Problems = Iterator[tuple[Path, str]]
Rule = Callable[[dict[str, Any]], Problems]

CORE, META, RBAC_DEF = "io.k8s.api.core.v1.", "io.k8s.apimachinery.pkg.apis.meta.v1.", "io.k8s.api.rbac.v1."
NET = "io.k8s.api.networking.v1."
RBAC_GROUP = "rbac.authorization.k8s.io"
RBAC_VERBS = names(
    "get list watch create update patch delete deletecollection impersonate bind escalate use approve sign *"
)
LINUX_CAPABILITIES = frozenset(
    names(
        "ALL AUDIT_CONTROL AUDIT_READ AUDIT_WRITE BLOCK_SUSPEND BPF CHECKPOINT_RESTORE CHOWN DAC_OVERRIDE "
        "DAC_READ_SEARCH FOWNER FSETID IPC_LOCK IPC_OWNER KILL LEASE LINUX_IMMUTABLE MAC_ADMIN "
        "MAC_OVERRIDE MKNOD NET_ADMIN NET_BIND_SERVICE NET_BROADCAST NET_RAW PERFMON SETFCAP SETGID "
        "SETPCAP SETUID SYSLOG SYS_ADMIN SYS_BOOT SYS_CHROOT SYS_MODULE SYS_NICE SYS_PACCT SYS_PTRACE "
        "SYS_RAWIO SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG WAKE_ALARM"
    )
)
# "Definition.field" -> allowed values (for a list field: of its items) where the served OpenAPI has
# no enum (most enums are served; tests/test_k8s_schemas.py fails when one of these becomes served).
ENUMS: dict[str, tuple[str, ...]] = {
    CORE + "PodOS.name": names("linux windows"),
    CORE + "PodSecurityContext.seLinuxChangePolicy": names("MountOption Recursive"),
    CORE + "VolumeMount.recursiveReadOnly": names("Disabled IfPossible Enabled"),
    META + "LabelSelectorRequirement.operator": names("In NotIn Exists DoesNotExist"),
    RBAC_DEF + "PolicyRule.verbs": RBAC_VERBS,
    RBAC_DEF + "RoleRef.kind": names("Role ClusterRole"),
    RBAC_DEF + "RoleRef.apiGroup": (RBAC_GROUP,),
    RBAC_DEF + "Subject.kind": names("User Group ServiceAccount"),
}
# Optional in the schema (controllers may default it) but rejected by pod validation when absent.
REQUIRED: dict[str, tuple[str, ...]] = {CORE + "Container": ("image",)}
_CONTAINER_ONLY = names("allowPrivilegeEscalation privileged readOnlyRootFilesystem capabilities procMount")
_POD_ONLY = names(
    "fsGroup fsGroupChangePolicy supplementalGroups supplementalGroupsPolicy sysctls seLinuxChangePolicy"
)
# Definition -> field -> why it is not accepted there (it belongs elsewhere).
HINTS: dict[str, dict[str, str]] = {
    CORE + "PodSecurityContext": dict.fromkeys(
        _CONTAINER_ONLY, "it is a container-level securityContext field"
    ),
    CORE + "SecurityContext": dict.fromkeys(
        _POD_ONLY, "it is a pod-level securityContext field (spec.securityContext)"
    ),
    CORE + "PodSpec": dict.fromkeys(
        (*_CONTAINER_ONLY, *_POD_ONLY, "runAsUser", "runAsNonRoot", "seccompProfile"),
        "securityContext fields go under spec.securityContext or a container's securityContext",
    ),
}
POD_TEMPLATE_PATHS: dict[str, Path] = {
    **dict.fromkeys(("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"), ("spec", "template")),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


def port_number(value: Any) -> str | None:
    """1..65535 for numbers; an IANA_SVC_NAME-like name otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None  # the schema reports the type
    if isinstance(value, int):
        return None if 1 <= value <= 65535 else f"port {value} is outside 1-65535"
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", value) or len(value) > 15:
        return f"port {value!r} is neither a number nor a valid port name"
    return None


def cidr(value: Any) -> str | None:
    """A valid IPv4/IPv6 CIDR such as 10.0.0.0/8."""
    if not isinstance(value, str):
        return None
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return f"{value!r} is not a CIDR (e.g. 10.0.0.0/8)"
    return None if "/" in value else f"{value!r} needs a prefix length (e.g. {value}/32)"


def _each(obj: dict[str, Any], key: str) -> Iterable[tuple[int, Any]]:
    value = obj.get(key)
    return enumerate(value) if isinstance(value, list) else ()


def _profile(obj: dict[str, Any]) -> Problems:
    if (obj.get("type") == "Localhost") != ("localhostProfile" in obj):
        yield (), "localhostProfile is required with type Localhost and forbidden otherwise"


def _match_expression(obj: dict[str, Any]) -> Problems:
    operator, has_values = obj.get("operator"), bool(obj.get("values"))
    if operator in ("In", "NotIn") and not has_values:
        yield (), f"operator {operator} needs values"
    if operator in ("Exists", "DoesNotExist") and has_values:
        yield (), f"operator {operator} takes no values"


def _peer(obj: dict[str, Any]) -> Problems:
    if not obj:
        yield (), "a peer needs podSelector, namespaceSelector or ipBlock"
    elif "ipBlock" in obj and len(obj) > 1:
        yield (), "ipBlock cannot be combined with podSelector/namespaceSelector in one peer"


def _ip_block(obj: dict[str, Any]) -> Problems:
    if problem := cidr(obj.get("cidr")):
        yield ("cidr",), problem
    for i, entry in _each(obj, "except"):
        if problem := cidr(entry):
            yield ("except", i), problem


def _np_port(obj: dict[str, Any]) -> Problems:
    end, port = obj.get("endPort"), obj.get("port")
    if problem := port_number(port):
        yield ("port",), problem
    if end is not None and not (isinstance(port, int) and isinstance(end, int) and end >= port):
        yield (), "endPort needs a numeric port and must be >= port"


def _container_port(obj: dict[str, Any]) -> Problems:
    for key in ("containerPort", "hostPort"):
        if key in obj and (problem := port_number(obj[key])):
            yield (key,), problem


def _capabilities(obj: dict[str, Any]) -> Problems:
    for key in ("add", "drop"):
        for i, value in _each(obj, key):
            if not isinstance(value, str):
                continue
            if value.upper().removeprefix("CAP_") not in LINUX_CAPABILITIES:
                yield (key, i), f"{value!r} is not a Linux capability"
            elif value.startswith("CAP_") or value != value.upper():
                yield (key, i), f"{value!r}: write capabilities upper-case without CAP_ (e.g. NET_RAW)"


def _policy_rule(obj: dict[str, Any]) -> Problems:
    if "resources" in obj and "apiGroups" not in obj:
        yield (), "resources need apiGroups ('' is the core group)"
    if not obj.get("resources") and not obj.get("nonResourceURLs"):
        yield (), "a rule needs resources (with apiGroups) or nonResourceURLs"
    if obj.get("verbs") == []:
        yield ("verbs",), "must not be empty"


def _role(obj: dict[str, Any]) -> Problems:
    for i, rule in _each(obj, "rules"):
        if isinstance(rule, dict) and "nonResourceURLs" in rule:
            yield ("rules", i, "nonResourceURLs"), "a namespaced Role cannot grant non-resource URLs"


def _subject(obj: dict[str, Any]) -> Problems:
    group = obj.get("apiGroup", "")
    if obj.get("kind") == "ServiceAccount" and group:
        yield ("apiGroup",), "must be empty for a ServiceAccount subject"
    if obj.get("kind") in ("User", "Group") and group != RBAC_GROUP:
        yield ("apiGroup",), f"must be {RBAC_GROUP} for User/Group subjects"


def _cluster_role_binding(obj: dict[str, Any]) -> Problems:
    ref = obj.get("roleRef")
    if isinstance(ref, dict) and ref.get("kind") not in (None, "ClusterRole"):
        yield ("roleRef", "kind"), f"{ref['kind']!r} is not one of ClusterRole"
    for i, subject in _each(obj, "subjects"):
        if (
            isinstance(subject, dict)
            and subject.get("kind") == "ServiceAccount"
            and not subject.get("namespace")
        ):
            yield ("subjects", i, "namespace"), "required for a ServiceAccount in a ClusterRoleBinding"


def _dig(obj: Any, path: Path) -> Any:
    for part in path:
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def _pod_template(kind: str) -> Rule:
    """Selector must match the template labels; restartPolicy must suit the controller."""
    path = POD_TEMPLATE_PATHS[kind]
    allowed = ("OnFailure", "Never") if kind in ("Job", "CronJob") else ("Always",)

    def rule(obj: dict[str, Any]) -> Problems:
        policy = _dig(obj, (*path, "spec", "restartPolicy"))
        if policy is not None and policy not in allowed:
            yield (*path, "spec", "restartPolicy"), f"{kind} pods need restartPolicy {' or '.join(allowed)}"
        match = _dig(obj, (*path[:-1], "selector", "matchLabels"))
        labels = _dig(obj, (*path, "metadata", "labels"))
        labels = labels if isinstance(labels, dict) else {}
        if isinstance(match, dict) and (missing := {k: v for k, v in match.items() if labels.get(k) != v}):
            yield (*path, "metadata", "labels"), f"must include the selector's matchLabels {missing}"

    return rule


_GROUP_OF = {"Job": "batch", "CronJob": "batch"}
RULES: dict[str, Rule] = {
    CORE + "SeccompProfile": _profile,
    CORE + "AppArmorProfile": _profile,
    CORE + "ContainerPort": _container_port,
    CORE + "Capabilities": _capabilities,
    META + "LabelSelectorRequirement": _match_expression,
    NET + "NetworkPolicyPeer": _peer,
    NET + "NetworkPolicyPort": _np_port,
    NET + "IPBlock": _ip_block,
    RBAC_DEF + "PolicyRule": _policy_rule,
    RBAC_DEF + "Role": _role,
    RBAC_DEF + "Subject": _subject,
    RBAC_DEF + "ClusterRoleBinding": _cluster_role_binding,
    **{f"io.k8s.api.{_GROUP_OF.get(k, 'apps')}.v1.{k}": _pod_template(k) for k in POD_TEMPLATE_PATHS},
}
