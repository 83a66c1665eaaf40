"""Field tables for the kinds reports produce (names as in the Kubernetes 1.3x API reference)."""

from __future__ import annotations

from typing import Any

from falco_reporter.validation.k8s_schema import (
    ANY,
    BOOL,
    INT,
    INT_OR_STR,
    PORT,
    STR,
    STR_LIST,
    STR_MAP,
    Ctx,
    ListOf,
    MapOf,
    Obj,
    Scalar,
    enum,
)
from falco_reporter.validation.result import names

LINUX_CAPABILITIES = frozenset(
    names(
        "ALL AUDIT_CONTROL AUDIT_READ AUDIT_WRITE BLOCK_SUSPEND BPF CHECKPOINT_RESTORE CHOWN DAC_OVERRIDE "
        "DAC_READ_SEARCH FOWNER FSETID IPC_LOCK IPC_OWNER KILL LEASE LINUX_IMMUTABLE MAC_ADMIN "
        "MAC_OVERRIDE MKNOD NET_ADMIN NET_BIND_SERVICE NET_BROADCAST NET_RAW PERFMON SETFCAP SETGID "
        "SETPCAP SETUID SYSLOG SYS_ADMIN SYS_BOOT SYS_CHROOT SYS_MODULE SYS_NICE SYS_PACCT SYS_PTRACE "
        "SYS_RAWIO SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG WAKE_ALARM"
    )
)
RBAC_VERBS = names(
    "get list watch create update patch delete deletecollection impersonate bind escalate use approve sign *"
)


def _capability(value: Any) -> str | None:
    if value.upper().removeprefix("CAP_") not in LINUX_CAPABILITIES:
        return f"{value!r} is not a Linux capability"
    if value.startswith("CAP_") or value != value.upper():
        return f"{value!r}: write capabilities upper-case without CAP_ (e.g. NET_RAW)"
    return None


def _profile(obj: dict[str, Any], path: str, ctx: Ctx) -> None:
    # The API requires localhostProfile exactly when type is Localhost.
    if (obj.get("type") == "Localhost") != ("localhostProfile" in obj):
        ctx.error(path, "localhostProfile is required with type Localhost and forbidden otherwise")


def _match_expression(obj: dict[str, Any], path: str, ctx: Ctx) -> None:
    has_values = bool(obj.get("values"))
    if obj.get("operator") in ("In", "NotIn") and not has_values:
        ctx.error(path, f"operator {obj['operator']} needs values")
    if obj.get("operator") in ("Exists", "DoesNotExist") and has_values:
        ctx.error(path, f"operator {obj['operator']} takes no values")


LABEL_SELECTOR = Obj(
    {
        "matchLabels": STR_MAP,
        "matchExpressions": ListOf(
            Obj(
                {"key": STR, "operator": enum("In", "NotIn", "Exists", "DoesNotExist"), "values": STR_LIST},
                required=("key", "operator"),
                rule=_match_expression,
            )
        ),
    }
)

PROFILE = Obj(
    {"type": enum("RuntimeDefault", "Localhost", "Unconfined"), "localhostProfile": STR},
    required=("type",),
    rule=_profile,
)
SE_LINUX = Obj({"user": STR, "role": STR, "type": STR, "level": STR})
WINDOWS = Obj(
    {"gmsaCredentialSpecName": STR, "gmsaCredentialSpec": STR, "runAsUserName": STR, "hostProcess": BOOL}
)
_SHARED_SC = {
    "runAsUser": INT,
    "runAsGroup": INT,
    "runAsNonRoot": BOOL,
    "seccompProfile": PROFILE,
    "appArmorProfile": PROFILE,
    "seLinuxOptions": SE_LINUX,
    "windowsOptions": WINDOWS,
}
_CONTAINER_ONLY = (
    "allowPrivilegeEscalation",
    "privileged",
    "readOnlyRootFilesystem",
    "capabilities",
    "procMount",
)
_POD_ONLY = names(
    "fsGroup fsGroupChangePolicy supplementalGroups supplementalGroupsPolicy sysctls seLinuxChangePolicy"
)
POD_SECURITY_CONTEXT = Obj(
    {
        **_SHARED_SC,
        "fsGroup": INT,
        "fsGroupChangePolicy": enum("OnRootMismatch", "Always"),
        "supplementalGroups": ListOf(INT),
        "supplementalGroupsPolicy": enum("Merge", "Strict"),
        "sysctls": ListOf(Obj({"name": STR, "value": STR}, required=("name", "value"))),
        "seLinuxChangePolicy": enum("MountOption", "Recursive"),
    },
    hints=dict.fromkeys(_CONTAINER_ONLY, "it is a container-level securityContext field"),
)
CAPABILITY_LIST = ListOf(Scalar((str,), validator=_capability))
CONTAINER_SECURITY_CONTEXT = Obj(
    {
        **_SHARED_SC,
        "allowPrivilegeEscalation": BOOL,
        "privileged": BOOL,
        "readOnlyRootFilesystem": BOOL,
        "capabilities": Obj({"add": CAPABILITY_LIST, "drop": CAPABILITY_LIST}),
        "procMount": enum("Default", "Unmasked"),
    },
    hints=dict.fromkeys(_POD_ONLY, "it is a pod-level securityContext field (spec.securityContext)"),
)
PROTOCOL = enum("TCP", "UDP", "SCTP")
RESOURCES = Obj({"limits": MapOf(INT_OR_STR), "requests": MapOf(INT_OR_STR), "claims": ANY})
VOLUME_MOUNT = Obj(
    {
        "name": STR,
        "mountPath": STR,
        "readOnly": BOOL,
        "subPath": STR,
        "subPathExpr": STR,
        "mountPropagation": enum("None", "HostToContainer", "Bidirectional"),
        "recursiveReadOnly": enum("Disabled", "IfPossible", "Enabled"),
    },
    required=("name", "mountPath"),
)
CONTAINER = Obj(
    {
        "name": STR,
        "image": STR,
        "command": STR_LIST,
        "args": STR_LIST,
        "workingDir": STR,
        "ports": ListOf(
            Obj(
                {"containerPort": PORT, "hostPort": PORT, "hostIP": STR, "name": STR, "protocol": PROTOCOL},
                required=("containerPort",),
            )
        ),
        "env": ListOf(Obj({"name": STR, "value": STR, "valueFrom": ANY}, required=("name",))),
        "envFrom": ANY,
        "resources": RESOURCES,
        "resizePolicy": ANY,
        "restartPolicy": enum("Always"),
        "restartPolicyRules": ANY,
        "volumeMounts": ListOf(VOLUME_MOUNT),
        "volumeDevices": ANY,
        "livenessProbe": ANY,
        "readinessProbe": ANY,
        "startupProbe": ANY,
        "lifecycle": ANY,
        "terminationMessagePath": STR,
        "terminationMessagePolicy": enum("File", "FallbackToLogsOnError"),
        "imagePullPolicy": enum("Always", "Never", "IfNotPresent"),
        "securityContext": CONTAINER_SECURITY_CONTEXT,
        "stdin": BOOL,
        "stdinOnce": BOOL,
        "tty": BOOL,
    },
    required=("name", "image"),
)
_KEY_TO_PATH = ListOf(Obj({"key": STR, "path": STR, "mode": INT}, required=("key", "path")))
VOLUME = Obj(
    {
        "name": STR,
        "hostPath": Obj(
            {
                "path": STR,
                "type": enum(
                    "",
                    "DirectoryOrCreate",
                    "Directory",
                    "FileOrCreate",
                    "File",
                    "Socket",
                    "CharDevice",
                    "BlockDevice",
                ),
            },
            required=("path",),
        ),
        "emptyDir": Obj({"medium": enum("", "Memory"), "sizeLimit": INT_OR_STR}),
        "secret": Obj({"secretName": STR, "items": _KEY_TO_PATH, "defaultMode": INT, "optional": BOOL}),
        "configMap": Obj({"name": STR, "items": _KEY_TO_PATH, "defaultMode": INT, "optional": BOOL}),
        "persistentVolumeClaim": Obj({"claimName": STR, "readOnly": BOOL}, required=("claimName",)),
        "projected": ANY,
        "downwardAPI": ANY,
        "csi": ANY,
        "ephemeral": ANY,
        "nfs": ANY,
        "image": ANY,
        "iscsi": ANY,
        "fc": ANY,
        "rbd": ANY,
        "cephfs": ANY,
        "glusterfs": ANY,
    },
    required=("name",),
)
TOLERATION = Obj(
    {
        "key": STR,
        "operator": enum("Exists", "Equal"),
        "value": STR,
        "effect": enum("NoSchedule", "PreferNoSchedule", "NoExecute"),
        "tolerationSeconds": INT,
    }
)
POD_SPEC = Obj(
    {
        "containers": ListOf(CONTAINER),
        "initContainers": ListOf(CONTAINER),
        "ephemeralContainers": ANY,
        "volumes": ListOf(VOLUME),
        "restartPolicy": enum("Always", "OnFailure", "Never"),
        "terminationGracePeriodSeconds": INT,
        "activeDeadlineSeconds": INT,
        "dnsPolicy": enum("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"),
        "nodeSelector": STR_MAP,
        "serviceAccountName": STR,
        "serviceAccount": STR,
        "automountServiceAccountToken": BOOL,
        "nodeName": STR,
        "hostNetwork": BOOL,
        "hostPID": BOOL,
        "hostIPC": BOOL,
        "hostUsers": BOOL,
        "shareProcessNamespace": BOOL,
        "securityContext": POD_SECURITY_CONTEXT,
        "imagePullSecrets": ListOf(Obj({"name": STR})),
        "hostname": STR,
        "subdomain": STR,
        "affinity": ANY,
        "schedulerName": STR,
        "tolerations": ListOf(TOLERATION),
        "hostAliases": ANY,
        "priorityClassName": STR,
        "priority": INT,
        "dnsConfig": ANY,
        "readinessGates": ANY,
        "runtimeClassName": STR,
        "enableServiceLinks": BOOL,
        "preemptionPolicy": enum("PreemptLowerPriority", "Never"),
        "overhead": ANY,
        "topologySpreadConstraints": ANY,
        "setHostnameAsFQDN": BOOL,
        "os": Obj({"name": enum("linux", "windows")}),
        "schedulingGates": ANY,
        "resourceClaims": ANY,
        "resources": RESOURCES,
        "hostnameOverride": STR,
    },
    required=("containers",),
    hints=dict.fromkeys(
        (*_CONTAINER_ONLY, *_POD_ONLY, "runAsUser", "runAsNonRoot", "seccompProfile"),
        "securityContext fields go under spec.securityContext or a container's securityContext",
    ),
)
TEMPLATE_METADATA = Obj(
    {
        "labels": STR_MAP,
        "annotations": STR_MAP,
        "name": STR,
        "namespace": STR,
        "generateName": STR,
        "finalizers": STR_LIST,
    }
)
POD_TEMPLATE = Obj({"metadata": TEMPLATE_METADATA, "spec": POD_SPEC}, required=("spec",))
