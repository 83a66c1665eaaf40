"""Fit a knowledge-base manifest example to the real subject: its owner kind, name, container, image.

Knowledge-base hardening examples are written as a Deployment or a Pod. A responder needs the
change for the object that actually runs the container: the Deployment, StatefulSet, DaemonSet
or CronJob (``jobTemplate``) at the top of the owner chain, with the container's own name and image,
so the manifest can be merged with ``kubectl apply --server-side``. A writable emptyDir is never
proposed for the directory the flagged program ran from.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from falco_reporter.models.enrichment import Enrichment

_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SafeDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_CONTROLLERS = {
    "Deployment": "apps/v1",
    "StatefulSet": "apps/v1",
    "DaemonSet": "apps/v1",
    "ReplicaSet": "apps/v1",
    "CronJob": "batch/v1",
    "Job": "batch/v1",
}
#: Labels a controller adds to its pods; they never belong in a template or selector we write.
_GENERATED = (
    "pod-template-hash",
    "controller-revision-hash",
    "pod-template-generation",
    "statefulset.kubernetes.io/pod-name",
    "apps.kubernetes.io/pod-index",
    "controller-uid",
    "job-name",
    "batch.kubernetes.io/",
)


def _pod_template(doc: dict[str, Any]) -> dict[str, Any] | None:
    kind = doc.get("kind")
    if kind == "Pod":
        return {
            "metadata": {"labels": dict((doc.get("metadata") or {}).get("labels") or {})},
            "spec": copy.deepcopy(doc.get("spec") or {}),
        }
    spec: dict[str, Any] = doc.get("spec") or {}
    if kind == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"):
        template = spec.get("template")
        return copy.deepcopy(template) if isinstance(template, dict) else None
    return None


def _labels(enr: Enrichment) -> dict[str, str]:
    return {k: v for k, v in sorted(enr.labels.items()) if not k.startswith(_GENERATED)}


def fit_manifest(text: str, enr: Enrichment, exe_dir: str = "") -> str:
    """The manifest retargeted to the subject's workload, or the text unchanged when it cannot be."""
    docs = list(yaml.load_all(text, Loader=_SafeLoader))
    if len(docs) != 1 or not isinstance(docs[0], dict):
        return text
    doc = docs[0]
    template = _pod_template(doc)
    if template is None:
        return text
    if not enr.pod_found or not enr.container.name:
        return _without_mounts_over(doc, text, exe_dir)
    spec = template.setdefault("spec", {})
    containers = spec.get("containers") or [{}]
    container = containers[0]
    container["name"] = enr.container.name
    container["image"] = enr.container.image or container.get("image", "")
    spec["containers"] = [container]
    _drop_mounts_over(spec, container, exe_dir)
    kind, name = enr.workload.kind or "Pod", enr.workload.name or enr.pod
    labels = _labels(enr)
    template["metadata"] = {"labels": labels} if labels else {}
    namespace = enr.namespace
    if kind == "Pod" or kind not in _CONTROLLERS:
        out: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": enr.pod, "namespace": namespace, **({"labels": labels} if labels else {})},
            "spec": spec,
        }
    else:
        out = {
            "apiVersion": _CONTROLLERS[kind],
            "kind": kind,
            "metadata": {"name": name, "namespace": namespace},
        }
        if kind == "CronJob":
            spec.setdefault("restartPolicy", "OnFailure")
            out["spec"] = {
                "schedule": enr.workload.schedule or "0 * * * *",
                "jobTemplate": {"spec": {"template": template}},
            }
        elif kind == "Job":
            spec.setdefault("restartPolicy", "OnFailure")
            out["spec"] = {"template": template}
        else:
            selector = enr.workload.selector or labels
            if not selector:
                return text
            out["spec"] = {"selector": {"matchLabels": selector}, "template": template}
    return _dump(out)


def _without_mounts_over(doc: dict[str, Any], text: str, exe_dir: str) -> str:
    spec = (doc.get("spec") or {}) if doc.get("kind") == "Pod" else _inner_pod_spec(doc)
    containers = spec.get("containers") or []
    before = _dump(doc)
    for container in containers:
        _drop_mounts_over(spec, container, exe_dir)
    after = _dump(doc)
    return text if after == before else after


def _dump(doc: dict[str, Any]) -> str:
    return yaml.dump(doc, Dumper=_SafeDumper, sort_keys=False, default_flow_style=False, width=1000)


def _inner_pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = doc.get("spec") or {}
    if doc.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    return (spec.get("template") or {}).get("spec") or {}


def _drop_mounts_over(spec: dict[str, Any], container: dict[str, Any], exe_dir: str) -> None:
    """Remove writable volume mounts covering the directory the flagged program ran from."""
    if not exe_dir:
        return
    mounts = container.get("volumeMounts") or []
    over = {
        m.get("name")
        for m in mounts
        if exe_dir == m.get("mountPath") or exe_dir.startswith(str(m.get("mountPath", "")).rstrip("/") + "/")
    }
    if not over:
        return
    container["volumeMounts"] = [m for m in mounts if m.get("name") not in over]
    if not container["volumeMounts"]:
        del container["volumeMounts"]
    spec["volumes"] = [v for v in spec.get("volumes") or [] if v.get("name") not in over]
    if not spec["volumes"]:
        del spec["volumes"]
