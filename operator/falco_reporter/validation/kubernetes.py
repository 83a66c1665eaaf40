"""Kubernetes manifests: a served apiVersion/kind, valid metadata, and the body checked by its schema."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from falco_reporter.validation.k8s_schema import KindInfo, check_body, schemas
from falco_reporter.validation.result import ValidationResult, mask_placeholders, unmask
from falco_reporter.validation.yamlload import YamlError, load_all

SUBJECT = "kubernetes-manifest"
PSA_PREFIX = "pod-security.kubernetes.io/"
PSA_LEVELS = ("privileged", "baseline", "restricted")
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_RBAC_KINDS = frozenset({"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"})
# Custom resources reports may suggest (no schema shipped: server-side dry run checks the body).
# (apiVersion, kind) -> namespaced.
CUSTOM_KINDS: dict[tuple[str, str], bool] = {
    ("cilium.io/v2", "CiliumNetworkPolicy"): True,
    ("cilium.io/v2", "CiliumClusterwideNetworkPolicy"): False,
    ("projectcalico.org/v3", "NetworkPolicy"): True,
    ("projectcalico.org/v3", "GlobalNetworkPolicy"): False,
    ("kyverno.io/v1", "ClusterPolicy"): False,
    ("kyverno.io/v1", "Policy"): True,
}
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


@dataclass
class Ctx:
    """Where errors go and which kind they are reported for."""

    kind: str
    errors: list[str] = field(default_factory=list)

    def error(self, path: str, message: str) -> None:
        """Record ``<Kind> <path>: <message>``."""
        self.errors.append(f"{self.kind} {path}: {message}" if path else f"{self.kind}: {message}")


def known_kinds(config_files: bool) -> dict[tuple[str, str], KindInfo | None]:
    """(apiVersion, kind) -> schema info; None for a known kind without a schema."""
    loaded = schemas()
    kinds: dict[tuple[str, str], KindInfo | None] = {
        **loaded.kinds,
        **dict.fromkeys(CUSTOM_KINDS),
    }
    if config_files:
        kinds |= {k: info if info.definition else None for k, info in loaded.config_kinds.items()}
    return kinds


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
    labels: list[str] = []
    kinds = known_kinds(config_files)
    for index, doc in enumerate(docs, start=1):
        prefix = f"document {index}: " if len(docs) > 1 else ""
        ctx = Ctx(kind="object")
        labels.append(_object(doc, ctx, checks, kinds))
        errors += [prefix + e for e in dict.fromkeys(ctx.errors)]
    detail = labels[0] if len(labels) == 1 else f"{len(labels)} objects: " + ", ".join(labels)
    return ValidationResult.build(
        SUBJECT,
        [unmask(c, mapping) for c in checks],
        [unmask(e, mapping) for e in errors],
        unmask(detail, mapping),
    )


def _object(doc: Any, ctx: Ctx, checks: list[str], kinds: dict[tuple[str, str], KindInfo | None]) -> str:
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
    info = kinds[(api, kind)]
    config_file = (api, kind) in schemas().config_kinds
    if not config_file or meta is not None:
        namespaced = info.namespaced if info else CUSTOM_KINDS.get((api, kind), True)
        _metadata(kind, meta, namespaced, ctx)
    if info is not None:
        for path, problem in check_body(doc, info.definition):
            ctx.error(path, problem)
    elif isinstance(meta, dict):
        for path, problem in check_body(meta, OBJECT_META):
            ctx.error(f"metadata.{path}" if path else "metadata", problem)
    if len(ctx.errors) == before:
        if info is None:
            body = "body not modelled (server-side dry run checks it)"
        else:
            body = "fields checked" if config_file else f"schema of Kubernetes {schemas().kubernetes_version}"
        checks.append(f"{label}: {api} {kind} known, metadata valid, {body}")
    return label


def _metadata(kind: str, meta: Any, namespaced: bool, ctx: Ctx) -> None:
    """Name formats, namespace scope and label formats (the schema checks the field names and types)."""
    if not isinstance(meta, dict):
        ctx.error("metadata", "required mapping with at least name")
        return
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
        if not namespaced:
            ctx.error("metadata.namespace", f"{kind} is cluster-scoped and has no namespace")
        elif problem := (
            dns_name(namespace, label=True) if isinstance(namespace, str) else "must be a string"
        ):
            ctx.error("metadata.namespace", problem)
    for key in ("labels", "annotations"):
        value = meta.get(key)
        if isinstance(value, dict):
            label_map(value.items(), f"metadata.{key}", ctx, annotations=key == "annotations")
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


def dns_name(value: str, *, label: bool = False) -> str | None:
    """Why ``value`` is not a DNS-1123 subdomain (or label), or None."""
    pattern, limit, what = (DNS_LABEL, 63, "label") if label else (DNS_SUBDOMAIN, 253, "subdomain")
    if len(value) > limit or not pattern.fullmatch(value):
        return f"{value!r} is not a valid DNS-1123 {what} (lower-case alphanumerics and '-', max {limit})"
    return None


def label_key(key: str) -> str | None:
    """Kubernetes qualified-name rules for label and annotation keys."""
    prefix, _, name = key.rpartition("/")
    if prefix and dns_name(prefix):
        return f"key {key!r}: prefix {prefix!r} is not a DNS subdomain"
    if len(name) > 63 or not _QUALIFIED_NAME.fullmatch(name):
        return f"key {key!r} is not a valid qualified name"
    return None


def label_map(values: Iterable[tuple[Any, Any]], path: str, ctx: Ctx, *, annotations: bool = False) -> None:
    """Label (or annotation) keys, and label values (max 63, restricted chars); the schema checks types."""
    for key, value in values:
        problem = label_key(key) if isinstance(key, str) else f"key {key!r} must be a string"
        if problem:
            ctx.error(path, problem)
        if (
            isinstance(value, str)
            and not annotations
            and (len(value) > 63 or not _LABEL_VALUE.fullmatch(value))
        ):
            ctx.error(f"{path}.{key}", f"{value!r} is not a valid label value")
