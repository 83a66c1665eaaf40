"""Top-level shapes per kind, and which apiVersion serves each kind."""

from __future__ import annotations

from typing import Any

from falco_reporter.validation.k8s_fields import LABEL_SELECTOR, POD_TEMPLATE, RBAC_VERBS
from falco_reporter.validation.k8s_schema import (
    ANY,
    BOOL,
    INT,
    PORT,
    STR,
    STR_LIST,
    STR_MAP,
    Ctx,
    ListOf,
    Node,
    Obj,
    Scalar,
    cidr,
    enum,
)
from falco_reporter.validation.result import names

RBAC_GROUP = "rbac.authorization.k8s.io"
_STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")


def _peer(obj: dict[str, Any], path: str, ctx: Ctx) -> None:
    # NetworkPolicyPeer: ipBlock stands alone; an empty peer selects nothing useful.
    if not obj:
        ctx.error(path, "a peer needs podSelector, namespaceSelector or ipBlock")
    elif "ipBlock" in obj and len(obj) > 1:
        ctx.error(path, "ipBlock cannot be combined with podSelector/namespaceSelector in one peer")


def _np_port(obj: dict[str, Any], path: str, ctx: Ctx) -> None:
    end, port = obj.get("endPort"), obj.get("port")
    if end is not None and not (isinstance(port, int) and isinstance(end, int) and end >= port):
        ctx.error(path, "endPort needs a numeric port and must be >= port")


_PEER = Obj(
    {
        "podSelector": LABEL_SELECTOR,
        "namespaceSelector": LABEL_SELECTOR,
        "ipBlock": Obj(
            {"cidr": Scalar((str,), validator=cidr), "except": ListOf(Scalar((str,), validator=cidr))},
            required=("cidr",),
        ),
    },
    rule=_peer,
)
_NP_PORT = Obj({"protocol": enum("TCP", "UDP", "SCTP"), "port": PORT, "endPort": INT}, rule=_np_port)
NETWORK_POLICY_SPEC = Obj(
    {
        "podSelector": LABEL_SELECTOR,
        "policyTypes": ListOf(enum("Ingress", "Egress")),
        "ingress": ListOf(Obj({"from": ListOf(_PEER), "ports": ListOf(_NP_PORT)})),
        "egress": ListOf(Obj({"to": ListOf(_PEER), "ports": ListOf(_NP_PORT)})),
    },
    required=("podSelector",),
)


def _policy_rule(obj: dict[str, Any], path: str, ctx: Ctx) -> None:
    if "resources" in obj and "apiGroups" not in obj:
        ctx.error(path, "resources need apiGroups ('' is the core group)")
    if not obj.get("resources") and not obj.get("nonResourceURLs"):
        ctx.error(path, "a rule needs resources (with apiGroups) or nonResourceURLs")
    if obj.get("verbs") == []:
        ctx.error(f"{path}.verbs", "must not be empty")


_POLICY_RULE = Obj(
    {
        "apiGroups": STR_LIST,
        "resources": STR_LIST,
        "verbs": ListOf(enum(*RBAC_VERBS)),
        "resourceNames": STR_LIST,
        "nonResourceURLs": STR_LIST,
    },
    required=("verbs",),
    rule=_policy_rule,
)


def _namespaced_rules(obj: dict[str, Any], path: str, ctx: Ctx) -> None:
    for i, rule in enumerate(obj.get("rules") or []):
        if isinstance(rule, dict) and "nonResourceURLs" in rule:
            ctx.error(f"rules[{i}].nonResourceURLs", "a namespaced Role cannot grant non-resource URLs")


def _subject(obj: dict[str, Any], path: str, ctx: Ctx) -> None:
    group = obj.get("apiGroup", "")
    if obj.get("kind") == "ServiceAccount" and group:
        ctx.error(f"{path}.apiGroup", "must be empty for a ServiceAccount subject")
    if obj.get("kind") in ("User", "Group") and group != RBAC_GROUP:
        ctx.error(f"{path}.apiGroup", f"must be {RBAC_GROUP} for User/Group subjects")


def _binding(cluster: bool) -> Obj:
    def rule(obj: dict[str, Any], path: str, ctx: Ctx) -> None:
        for i, subject in enumerate(obj.get("subjects") or []):
            if (
                cluster
                and isinstance(subject, dict)
                and subject.get("kind") == "ServiceAccount"
                and not subject.get("namespace")
            ):
                ctx.error(f"subjects[{i}].namespace", "required for a ServiceAccount in a ClusterRoleBinding")

    kinds = ("ClusterRole",) if cluster else ("Role", "ClusterRole")
    role_ref = Obj(
        {"apiGroup": enum(RBAC_GROUP), "kind": enum(*kinds), "name": STR},
        required=("apiGroup", "kind", "name"),
    )
    subject = Obj(
        {"kind": enum("User", "Group", "ServiceAccount"), "name": STR, "namespace": STR, "apiGroup": STR},
        required=("kind", "name"),
        rule=_subject,
    )
    return _top({"roleRef": role_ref, "subjects": ListOf(subject)}, required=("roleRef",), rule=rule)


def _top(fields: dict[str, Node], required: tuple[str, ...] = (), rule: Any = None) -> Obj:
    """A whole object: apiVersion/kind/metadata (checked separately) plus ``fields``."""
    return Obj({"apiVersion": ANY, "kind": ANY, "metadata": ANY, **fields}, required, rule)


def _spec(spec: Node) -> Obj:
    return _top({"spec": spec}, required=("spec",))


def _workload(extra: dict[str, Node], required: tuple[str, ...] = ("selector", "template")) -> Obj:
    fields: dict[str, Node] = {
        "selector": LABEL_SELECTOR,
        "template": POD_TEMPLATE,
        "minReadySeconds": INT,
        "revisionHistoryLimit": INT,
        **extra,
    }
    return Obj(fields, required)


JOB_SPEC = Obj(
    {
        "template": POD_TEMPLATE,
        "parallelism": INT,
        "completions": INT,
        "activeDeadlineSeconds": INT,
        "backoffLimit": INT,
        "backoffLimitPerIndex": INT,
        "maxFailedIndexes": INT,
        "selector": LABEL_SELECTOR,
        "manualSelector": BOOL,
        "ttlSecondsAfterFinished": INT,
        "completionMode": enum("NonIndexed", "Indexed"),
        "suspend": BOOL,
        "podFailurePolicy": ANY,
        "podReplacementPolicy": enum("TerminatingOrFailed", "Failed"),
        "successPolicy": ANY,
        "managedBy": STR,
    },
    required=("template",),
)
_ROLE_RULES: dict[str, Node] = {"rules": ListOf(_POLICY_RULE)}

# (apiVersion, kind) -> shape; None = a known kind whose body we do not model.
KINDS: dict[tuple[str, str], Obj | None] = {
    ("networking.k8s.io/v1", "NetworkPolicy"): _spec(NETWORK_POLICY_SPEC),
    (f"{RBAC_GROUP}/v1", "Role"): _top(_ROLE_RULES, rule=_namespaced_rules),
    (f"{RBAC_GROUP}/v1", "ClusterRole"): _top(
        {**_ROLE_RULES, "aggregationRule": Obj({"clusterRoleSelectors": ListOf(LABEL_SELECTOR)})}
    ),
    (f"{RBAC_GROUP}/v1", "RoleBinding"): _binding(cluster=False),
    (f"{RBAC_GROUP}/v1", "ClusterRoleBinding"): _binding(cluster=True),
    ("v1", "Namespace"): _top({"spec": Obj({"finalizers": STR_LIST})}),
    ("v1", "Pod"): _spec(POD_TEMPLATE.fields["spec"]),
    ("apps/v1", "Deployment"): _spec(
        _workload({"replicas": INT, "strategy": ANY, "progressDeadlineSeconds": INT, "paused": BOOL})
    ),
    ("apps/v1", "StatefulSet"): _spec(
        _workload(
            {
                "replicas": INT,
                "serviceName": STR,
                "volumeClaimTemplates": ANY,
                "updateStrategy": ANY,
                "podManagementPolicy": enum("OrderedReady", "Parallel"),
                "persistentVolumeClaimRetentionPolicy": ANY,
                "ordinals": ANY,
            }
        )
    ),
    ("apps/v1", "DaemonSet"): _spec(_workload({"updateStrategy": ANY})),
    ("apps/v1", "ReplicaSet"): _spec(_workload({"replicas": INT})),
    ("batch/v1", "Job"): _spec(JOB_SPEC),
    ("batch/v1", "CronJob"): _spec(
        Obj(
            {
                "schedule": STR,
                "timeZone": STR,
                "startingDeadlineSeconds": INT,
                "concurrencyPolicy": enum("Allow", "Forbid", "Replace"),
                "suspend": BOOL,
                "jobTemplate": Obj({"metadata": ANY, "spec": JOB_SPEC}, required=("spec",)),
                "successfulJobsHistoryLimit": INT,
                "failedJobsHistoryLimit": INT,
            },
            required=("schedule", "jobTemplate"),
        )
    ),
    ("v1", "ServiceAccount"): _top(
        {"automountServiceAccountToken": BOOL, "secrets": ANY, "imagePullSecrets": ListOf(Obj({"name": STR}))}
    ),
    ("v1", "ConfigMap"): _top({"data": STR_MAP, "binaryData": STR_MAP, "immutable": BOOL}),
    ("v1", "Secret"): _top({"data": STR_MAP, "stringData": STR_MAP, "type": STR, "immutable": BOOL}),
    ("v1", "Service"): None,
    ("v1", "LimitRange"): None,
    ("v1", "ResourceQuota"): None,
    ("v1", "PersistentVolumeClaim"): None,
    ("networking.k8s.io/v1", "Ingress"): None,
    ("policy/v1", "PodDisruptionBudget"): None,
    ("node.k8s.io/v1", "RuntimeClass"): None,
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy"): None,
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding"): None,
    ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"): None,
    ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"): None,
    ("cilium.io/v2", "CiliumNetworkPolicy"): None,
    ("cilium.io/v2", "CiliumClusterwideNetworkPolicy"): None,
    ("projectcalico.org/v3", "NetworkPolicy"): None,
    ("projectcalico.org/v3", "GlobalNetworkPolicy"): None,
    ("kyverno.io/v1", "ClusterPolicy"): None,
    ("kyverno.io/v1", "Policy"): None,
}
CLUSTER_SCOPED = frozenset(
    names(
        "Namespace ClusterRole ClusterRoleBinding RuntimeClass ValidatingAdmissionPolicy "
        "ValidatingAdmissionPolicyBinding ValidatingWebhookConfiguration MutatingWebhookConfiguration "
        "CiliumClusterwideNetworkPolicy GlobalNetworkPolicy ClusterPolicy"
    )
)
POD_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}

_AUDIT_RULE = Obj(
    {
        "level": enum("None", "Metadata", "Request", "RequestResponse"),
        "users": STR_LIST,
        "userGroups": STR_LIST,
        "verbs": STR_LIST,
        "namespaces": STR_LIST,
        "nonResourceURLs": STR_LIST,
        "omitStages": ListOf(enum(*_STAGES)),
        "omitManagedFields": BOOL,
        "resources": ListOf(Obj({"group": STR, "resources": STR_LIST, "resourceNames": STR_LIST})),
    },
    required=("level",),
)
# Files read by a component (kube-apiserver --audit-policy-file, kubelet --config), not API objects:
# accepted only for 'configuration' snippets, and they carry no metadata.name.
CONFIG_KINDS: dict[tuple[str, str], Obj | None] = {
    ("audit.k8s.io/v1", "Policy"): _top(
        {"rules": ListOf(_AUDIT_RULE), "omitStages": ListOf(enum(*_STAGES)), "omitManagedFields": BOOL},
        required=("rules",),
    ),
    ("kubelet.config.k8s.io/v1beta1", "KubeletConfiguration"): None,
    ("kubelet.config.k8s.io/v1", "CredentialProviderConfig"): None,
    ("apiserver.config.k8s.io/v1", "AdmissionConfiguration"): None,
    ("pod-security.admission.config.k8s.io/v1", "PodSecurityConfiguration"): None,
}
