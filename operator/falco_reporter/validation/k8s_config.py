"""Component configuration files that no API server serves, so no OpenAPI exists for them.

Accepted only for 'configuration' snippets (kube-apiserver --audit-policy-file, kubelet --config);
they carry no metadata.name. The audit Policy is modelled (reports recommend audit rules); the
others are known kinds whose body is left to the component.
"""

from __future__ import annotations

from typing import Any

from falco_reporter.validation.result import names

_STAGES = {"enum": names("RequestReceived ResponseStarted ResponseComplete Panic")}
_STRINGS = {"type": "array", "items": {"type": "string"}}


def _strict(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
        "required": list(required),
    }


AUDIT_POLICY = "io.k8s.apiserver.audit.v1.Policy"
CONFIG_DEFS: dict[str, Any] = {
    AUDIT_POLICY: _strict(
        {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "rules": {"type": "array", "items": {"$ref": "#/$defs/io.k8s.apiserver.audit.v1.PolicyRule"}},
            "omitStages": {"type": "array", "items": _STAGES},
            "omitManagedFields": {"type": "boolean"},
        },
        ("rules",),
    ),
    "io.k8s.apiserver.audit.v1.PolicyRule": _strict(
        {
            "level": {"enum": names("None Metadata Request RequestResponse")},
            "users": _STRINGS,
            "userGroups": _STRINGS,
            "verbs": _STRINGS,
            "namespaces": _STRINGS,
            "nonResourceURLs": _STRINGS,
            "omitStages": {"type": "array", "items": _STAGES},
            "omitManagedFields": {"type": "boolean"},
            "resources": {
                "type": "array",
                "items": _strict(
                    {"group": {"type": "string"}, "resources": _STRINGS, "resourceNames": _STRINGS}
                ),
            },
        },
        ("level",),
    ),
}
# (apiVersion, kind) -> definition name, or "" for a known kind whose body is not modelled.
CONFIG_KINDS: dict[tuple[str, str], str] = {
    ("audit.k8s.io/v1", "Policy"): AUDIT_POLICY,
    ("kubelet.config.k8s.io/v1beta1", "KubeletConfiguration"): "",
    ("kubelet.config.k8s.io/v1", "CredentialProviderConfig"): "",
    ("apiserver.config.k8s.io/v1", "AdmissionConfiguration"): "",
    ("pod-security.admission.config.k8s.io/v1", "PodSecurityConfiguration"): "",
}
