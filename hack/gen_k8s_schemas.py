"""Regenerate operator/falco_reporter/validation/k8s_schemas.json from a kube-apiserver's /openapi/v3.

Usage: python hack/gen_k8s_schemas.py [KUBECONFIG]   (``make k8s-schemas``). Without a kubeconfig it
starts the local control plane (bin/kube-apiserver, the version the project builds), reads
/openapi/v3 of the group-versions below and stops it.

The output keeps only the kinds in KINDS and the definitions they reach, without descriptions,
defaults, formats or patch hints, and without ``status`` (reports never write it). It is strict
the way kubeconform's strict schemas are: every object schema that lists properties gets
``additionalProperties: false``. tests/test_k8s_schemas.py regenerates it from the session's
API server and fails when it differs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "operator" / "falco_reporter" / "validation" / "k8s_schemas.json"

# group-version -> the kinds reports validate (mitigations create or patch these).
KINDS: dict[str, tuple[str, ...]] = {
    "v1": (
        "ConfigMap",
        "LimitRange",
        "Namespace",
        "PersistentVolumeClaim",
        "Pod",
        "ResourceQuota",
        "Secret",
        "Service",
        "ServiceAccount",
    ),
    "apps/v1": ("DaemonSet", "Deployment", "ReplicaSet", "StatefulSet"),
    "batch/v1": ("CronJob", "Job"),
    "networking.k8s.io/v1": ("Ingress", "NetworkPolicy"),
    "rbac.authorization.k8s.io/v1": ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"),
    "policy/v1": ("PodDisruptionBudget",),
    "node.k8s.io/v1": ("RuntimeClass",),
    "admissionregistration.k8s.io/v1": (
        "MutatingWebhookConfiguration",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "ValidatingWebhookConfiguration",
    ),
}
_KEEP = ("type", "required", "enum")
_REF = "#/components/schemas/"
Fetch = Callable[[str], Any]


def openapi_path(group_version: str) -> str:
    """/openapi/v3/api/v1 for the core group, /openapi/v3/apis/GROUP/VERSION otherwise."""
    return f"/openapi/v3/{'api' if '/' not in group_version else 'apis'}/{group_version}"


def reduce(node: Any) -> Any:
    """One schema node without documentation, with local $refs and strict objects."""
    if not isinstance(node, dict):
        return node
    all_of = node.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and "$ref" in all_of[0]:
        return reduce(all_of[0])
    if "$ref" in node:
        return {"$ref": "#/$defs/" + node["$ref"].removeprefix(_REF)}
    out: dict[str, Any] = {k: node[k] for k in _KEEP if k in node}
    if "properties" in node:
        out["properties"] = {k: reduce(v) for k, v in sorted(node["properties"].items())}
        if not node.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = reduce(node["additionalProperties"])
    if "items" in node:
        out["items"] = reduce(node["items"])
    for key in ("oneOf", "anyOf"):
        if key in node:
            out[key] = [reduce(n) for n in node[key]]
    return out


def _refs(node: Any) -> set[str]:
    """Definition names a reduced node refers to."""
    if isinstance(node, dict):
        found = {node["$ref"].removeprefix("#/$defs/")} if "$ref" in node else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def _scopes(doc: dict[str, Any]) -> dict[str, bool]:
    """Kind -> namespaced, from the paths that create it (POST under /namespaces/{namespace}/ or not)."""
    out: dict[str, bool] = {}
    for path, item in doc.get("paths", {}).items():
        gvk = (item.get("post") or {}).get("x-kubernetes-group-version-kind")
        if gvk and "{name}" not in path:
            out[gvk["kind"]] = "{namespace}" in path
    return out


def collect(fetch: Fetch) -> dict[str, Any]:
    """Everything k8s_schemas.json holds, read through ``fetch(path) -> parsed JSON``."""
    version = fetch("/version")["gitVersion"]
    schemas: dict[str, Any] = {}
    kinds: dict[str, dict[str, Any]] = {}
    for group_version, wanted in KINDS.items():
        doc = fetch(openapi_path(group_version))
        components = doc["components"]["schemas"]
        schemas.update(components)
        scopes = _scopes(doc)
        group, _, ver = group_version.rpartition("/")
        for name, schema in components.items():
            for gvk in schema.get("x-kubernetes-group-version-kind", []):
                if (gvk["group"], gvk["version"]) == (group, ver) and gvk["kind"] in wanted:
                    kinds[f"{group_version}/{gvk['kind']}"] = {
                        "definition": name,
                        "namespaced": scopes[gvk["kind"]],
                    }
    missing = {f"{gv}/{k}" for gv, ks in KINDS.items() for k in ks} - set(kinds)
    if missing:
        raise SystemExit(f"the API server does not serve {sorted(missing)}")
    defs: dict[str, Any] = {}
    todo = [k["definition"] for k in kinds.values()]
    while todo:
        name = todo.pop()
        if name in defs:
            continue
        defs[name] = reduce(schemas[name])
        todo += sorted(_refs(defs[name]) - set(defs))
    for entry in kinds.values():
        defs[entry["definition"]]["properties"].pop("status", None)
    # Dropping status leaves its definitions unreachable: keep only what the kinds still reach.
    reachable: set[str] = set()
    todo = [k["definition"] for k in kinds.values()]
    while todo:
        name = todo.pop()
        if name not in reachable:
            reachable.add(name)
            todo += _refs(defs[name])
    return {
        "kubernetes_version": version,
        "generated_by": "hack/gen_k8s_schemas.py from the API server's /openapi/v3",
        "group_versions": sorted(KINDS),
        "kinds": dict(sorted(kinds.items())),
        "$defs": {k: defs[k] for k in sorted(reachable)},
    }


def render(data: dict[str, Any]) -> str:
    """The file's text: one definition per line keeps it small and its diffs readable."""
    head = {k: v for k, v in data.items() if k != "$defs"}
    lines = [json.dumps(head, separators=(",", ":"))[:-1] + ',"$defs":{']
    items = list(data["$defs"].items())
    lines += [
        json.dumps(name)
        + ":"
        + json.dumps(schema, separators=(",", ":"))
        + ("," if i < len(items) - 1 else "")
        for i, (name, schema) in enumerate(items)
    ]
    return "\n".join([*lines, "}}"]) + "\n"


def client_fetch(api_client: Any) -> Fetch:
    """A fetch function over a kubernetes.client.ApiClient (used by the drift test too)."""

    def fetch(path: str) -> Any:
        request = api_client.param_serialize(
            "GET", path, header_params={"Accept": "application/json"}, auth_settings=["BearerToken"]
        )
        response = api_client.call_api(*request, _request_timeout=60)
        response.read()
        if not 200 <= response.status <= 299:
            raise SystemExit(f"GET {path}: HTTP {response.status}")
        return json.loads(response.data)

    return fetch


def main() -> None:
    """Read the schemas from KUBECONFIG (argument) or a freshly started local control plane."""
    from kubernetes import config

    # devcluster lives at the repository root, outside the package.
    sys.path.insert(0, str(ROOT))
    from devcluster.cluster import LocalCluster

    if len(sys.argv) > 1:
        api = config.new_client_from_config(config_file=sys.argv[1])
        data = collect(client_fetch(api))
    else:
        with LocalCluster(controller_manager=False) as cluster:
            api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
            data = collect(client_fetch(api))
    api.close()
    OUT.write_text(render(data), encoding="utf-8")
    size = OUT.stat().st_size
    print(
        f"wrote {OUT.relative_to(ROOT)}: {len(data['kinds'])} kinds, {len(data['$defs'])} definitions, "
        f"{size} bytes, from {data['kubernetes_version']}"
    )


if __name__ == "__main__":
    main()
