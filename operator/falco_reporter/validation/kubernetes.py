"""Kubernetes manifests: known apiVersion/kind, valid metadata, and a structural check of the body."""

from __future__ import annotations

from typing import Any

from falco_reporter.validation.k8s_kinds import CLUSTER_SCOPED, CONFIG_KINDS, KINDS, POD_TEMPLATE_PATHS
from falco_reporter.validation.k8s_schema import Ctx, Obj, dns_name, label_map
from falco_reporter.validation.result import ValidationResult, mask_placeholders, names, unmask
from falco_reporter.validation.yamlload import YamlError, load_all

SUBJECT = "kubernetes-manifest"
PSA_PREFIX = "pod-security.kubernetes.io/"
PSA_LEVELS = ("privileged", "baseline", "restricted")
_METADATA_FIELDS = names("name namespace labels annotations generateName finalizers ownerReferences")
_RBAC_KINDS = frozenset({"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"})


def validate_manifest(text: str, *, config_files: bool = False) -> ValidationResult:
    """Validate one or more YAML documents, each a Kubernetes object of a known kind.

    ``config_files`` also accepts component configuration files (audit Policy, KubeletConfiguration).
    """
    masked, mapping = mask_placeholders(text)
    try:
        docs = [d for d in load_all(masked) if d is not None]
    except YamlError as exc:
        return ValidationResult.failure(SUBJECT, str(exc))
    if not docs:
        return ValidationResult.failure(SUBJECT, "no Kubernetes object in the snippet")
    checks = [f"yaml parses ({len(docs)} document(s))"]
    errors: list[str] = []
    names: list[str] = []
    for index, doc in enumerate(docs, start=1):
        prefix = f"document {index}: " if len(docs) > 1 else ""
        ctx = Ctx(kind="object")
        label = _object(doc, ctx, checks, {**KINDS, **CONFIG_KINDS} if config_files else KINDS)
        names.append(label)
        errors += [prefix + e for e in ctx.errors]
    detail = names[0] if len(names) == 1 else f"{len(names)} objects: " + ", ".join(names)
    return ValidationResult.build(
        SUBJECT,
        [unmask(c, mapping) for c in checks],
        [unmask(e, mapping) for e in errors],
        unmask(detail, mapping),
    )


def _object(doc: Any, ctx: Ctx, checks: list[str], kinds: dict[tuple[str, str], Obj | None]) -> str:
    """Check one object; return 'Kind name' for the summary."""
    if not isinstance(doc, dict):
        ctx.error("", f"a Kubernetes object must be a mapping with apiVersion, kind, metadata, got {doc!r}")
        return "?"
    api, kind = doc.get("apiVersion"), doc.get("kind")
    if not isinstance(api, str) or not isinstance(kind, str):
        ctx.error("", "apiVersion and kind are required strings")
        return "?"
    ctx.kind = kind
    meta = doc.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    label = f"{kind} {name}" if isinstance(name, str) else kind
    if kind == "List" and api == "v1":
        for i, item in enumerate(doc.get("items") or []):
            sub = Ctx(kind="object")
            _object(item, sub, checks, kinds)
            ctx.errors += [f"items[{i}]: {e}" for e in sub.errors]
        return label
    if (api, kind) not in kinds:
        served = sorted(a for a, k in kinds if k == kind)
        if served:
            ctx.error("apiVersion", f"{api!r} does not serve {kind}; use {' or '.join(served)}")
        else:
            ctx.error("kind", f"unknown kind {kind!r} for apiVersion {api!r}")
        return label
    before = len(ctx.errors)
    if (api, kind) not in CONFIG_KINDS or meta is not None:
        _metadata(kind, meta, ctx)
    shape = kinds[(api, kind)]
    if shape is not None:
        shape.check(doc, "", ctx)
        _pod_template_rules(kind, doc, ctx)
    if len(ctx.errors) == before:
        body = "fields checked" if shape is not None else "body not modelled (server-side dry run checks it)"
        checks.append(f"{label}: {api} {kind} known, metadata valid, {body}")
    return label


def _metadata(kind: str, meta: Any, ctx: Ctx) -> None:
    if not isinstance(meta, dict):
        ctx.error("metadata", "required mapping with at least name")
        return
    for key in meta:
        if key not in _METADATA_FIELDS:
            ctx.error(f"metadata.{key}", f"unknown field (expected {', '.join(_METADATA_FIELDS)})")
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        ctx.error("metadata.name", "required string")
    elif kind in _RBAC_KINDS:
        if name in (".", "..") or "/" in name or "%" in name:
            ctx.error("metadata.name", f"{name!r} is not a valid RBAC name (no '/', '%', '.' or '..')")
    elif problem := dns_name(name, label=kind == "Namespace"):
        ctx.error("metadata.name", problem)
    namespace = meta.get("namespace")
    if namespace is not None:
        if kind in CLUSTER_SCOPED:
            ctx.error("metadata.namespace", f"{kind} is cluster-scoped and has no namespace")
        elif problem := (
            dns_name(namespace, label=True) if isinstance(namespace, str) else "must be a string"
        ):
            ctx.error("metadata.namespace", problem)
    for key in ("labels", "annotations"):
        value = meta.get(key)
        if isinstance(value, dict):
            label_map(value.items(), f"metadata.{key}", ctx, annotations=key == "annotations")
        elif value is not None:
            ctx.error(f"metadata.{key}", "must be a mapping of strings")
    labels = meta.get("labels")
    if isinstance(labels, dict):
        _pod_security_labels(kind, labels, ctx)


def _pod_security_labels(kind: str, labels: dict[Any, Any], ctx: Ctx) -> None:
    """Pod Security Admission labels: only on Namespaces, with real modes and levels."""
    for key, value in labels.items():
        if not isinstance(key, str) or not key.startswith(PSA_PREFIX):
            continue
        where = f"metadata.labels.{key}"
        if kind != "Namespace":
            ctx.error(where, "Pod Security Admission labels only take effect on a Namespace")
        mode, _, version = key.removeprefix(PSA_PREFIX).partition("-")
        if mode not in ("enforce", "audit", "warn") or version not in ("", "version"):
            ctx.error(where, "not a Pod Security label (enforce|audit|warn[-version])")
        elif not version and value not in PSA_LEVELS:
            ctx.error(where, f"{value!r} is not a Pod Security level ({', '.join(PSA_LEVELS)})")
        elif version and not (
            value == "latest" or (isinstance(value, str) and value.startswith("v1.") and value[3:].isdigit())
        ):
            ctx.error(where, f"{value!r} is not 'latest' or a version like v1.30")


def _pod_template_rules(kind: str, doc: dict[str, Any], ctx: Ctx) -> None:
    """Selector must match the template labels; restartPolicy must suit the controller."""
    path = POD_TEMPLATE_PATHS.get(kind)
    if path is None:
        return
    node: Any = doc
    for part in path[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    template = node.get(path[-1]) if isinstance(node, dict) else None
    if not isinstance(template, dict) or not isinstance(node, dict):
        return
    dotted = ".".join(path)
    spec: dict[str, Any] = template["spec"] if isinstance(template.get("spec"), dict) else {}
    policy = spec.get("restartPolicy")
    allowed = ("OnFailure", "Never") if kind in ("Job", "CronJob") else ("Always",)
    if policy is not None and policy not in allowed:
        ctx.error(f"{dotted}.spec.restartPolicy", f"{kind} pods need restartPolicy {' or '.join(allowed)}")
    selector = node.get("selector")
    meta: dict[str, Any] = template["metadata"] if isinstance(template.get("metadata"), dict) else {}
    labels: dict[str, Any] = meta["labels"] if isinstance(meta.get("labels"), dict) else {}
    if isinstance(selector, dict) and isinstance(selector.get("matchLabels"), dict):
        missing = {k: v for k, v in selector["matchLabels"].items() if labels.get(k) != v}
        if missing:
            ctx.error(f"{dotted}.metadata.labels", f"must include the selector's matchLabels {missing}")
