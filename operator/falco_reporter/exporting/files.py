"""Turn AlertReport objects into a deterministic file tree.

Same reports in, same bytes out: keys in a fixed order, no server-managed metadata, a
sorted index. The tree is ``DIR/<namespace>/<report>.md`` and ``.yaml``, remediation
manifests as ``<report>.remediation-<n>.yaml``, and ``DIR/README.md`` as the index. A
manifest file lists what the export wrote, so files of reports that disappeared are removed
and nothing else in DIR is touched.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

MANIFEST = ".falco-reporter-export"
FORMATS = frozenset({"markdown", "yaml"})
_SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
_KEEP_ANNOTATIONS = ("falcoreporter.io/",)


@dataclass
class ExportResult:
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def clean_manifest(obj: dict[str, Any]) -> dict[str, Any]:
    """The report as a re-appliable manifest: identity, labels, our annotations and spec only.

    No status, uid, resourceVersion, managedFields or ownerReferences (an owner uid from
    one cluster would be wrong in another and would stop a re-apply).
    """
    meta = obj.get("metadata") or {}
    annotations = {
        k: v
        for k, v in sorted((meta.get("annotations") or {}).items())
        if k.startswith(_KEEP_ANNOTATIONS) and "last-handled" not in k and "kopf" not in k
    }
    clean_meta: dict[str, Any] = {"name": meta["name"], "namespace": meta.get("namespace", "")}
    if meta.get("labels"):
        clean_meta["labels"] = dict(sorted(meta["labels"].items()))
    if annotations:
        clean_meta["annotations"] = annotations
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": clean_meta, "spec": obj["spec"]}


def dump_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100, default_flow_style=False)


def render_files(reports: Iterable[dict[str, Any]], formats: frozenset[str]) -> dict[str, str]:
    """Relative path -> content for every file of an export (pure, deterministic)."""
    files: dict[str, str] = {}
    index_rows: list[tuple[int, str, str, str, str, str, str]] = []
    reports_by_incident: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for obj in sorted(reports, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"])):
        meta, spec = obj["metadata"], obj["spec"]
        base = f"{meta.get('namespace', '') or '_cluster'}/{meta['name']}"
        if "markdown" in formats:
            files[f"{base}.md"] = spec.get("markdown", "")
        if "yaml" in formats:
            files[f"{base}.yaml"] = dump_yaml(clean_manifest(obj))
        n = 0
        for mitigation in spec.get("mitigations") or []:
            if mitigation.get("kind") == "kubernetes-manifest" and mitigation.get("snippet"):
                n += 1
                files[f"{base}.remediation-{n}.yaml"] = (
                    f"# {mitigation.get('title', '')}\n# Proposed by AlertReport {base}; review before applying.\n"
                    + mitigation["snippet"].rstrip("\n")
                    + "\n"
                )
        incident = spec.get("incident") or {}
        if incident.get("id"):
            own = {**incident, "time": (spec.get("occurrences") or {}).get("firstSeen", "")}
            reports_by_incident.setdefault(incident["id"], []).append((base, own))
        review = (spec.get("review") or {}).get("state", "new")
        subject = spec.get("subject") or {}
        workload = subject.get("workload") or {}
        index_rows.append(
            (
                _SEVERITY_ORDER.get(spec.get("severity", ""), 9),
                spec.get("severity", ""),
                spec.get("verdict", ""),
                base,
                spec.get("rule", ""),
                f"{workload.get('kind', '')}/{workload.get('name', '')}".strip("/"),
                review,
            )
        )
    files["README.md"] = _index(index_rows, formats) + _incidents(reports_by_incident, formats)
    return files


def _incidents(groups: dict[str, list[tuple[str, dict[str, Any]]]], formats: frozenset[str]) -> str:
    """One index section per incident of more than one report, its members in time order."""
    shown = {k: v for k, v in groups.items() if len(v) > 1}
    if not shown:
        return ""
    lines = ["", "## Incidents", ""]
    suffix = ".md" if "markdown" in formats else ".yaml"
    for incident_id in sorted(shown):
        members = sorted(shown[incident_id], key=lambda m: (m[1].get("time", ""), m[0]))
        first = members[0][1]
        lines += [
            f"### {incident_id}: {first.get('verdict', '')}, {first.get('severity', '')}",
            "",
            f"{first.get('subject', '')}, window from {first.get('windowStart', '')}.",
            "",
            *[f"- [{base}]({base}{suffix})" for base, _ in members],
            "",
        ]
    return "\n".join(lines)


def _index(rows: list[tuple[int, str, str, str, str, str, str]], formats: frozenset[str]) -> str:
    lines = ["# Falco alert reports", "", f"{len(rows)} reports, by severity then verdict.", ""]
    if not rows:
        return "\n".join(lines) + "\n"
    lines += ["| severity | verdict | review | rule | workload | report |", "|---|---|---|---|---|---|"]
    for _, severity, verdict, base, rule, workload, review in sorted(rows, key=lambda r: (r[0], r[2], r[3])):
        link = f"[{base}]({base}.md)" if "markdown" in formats else f"[{base}]({base}.yaml)"
        lines.append(
            f"| {severity} | {verdict} | {review} | {rule.replace('|', '/')} | {workload} | {link} |"
        )
    return "\n".join(lines) + "\n"


def write_tree(directory: Path, files: dict[str, str]) -> ExportResult:
    """Write ``files`` under ``directory``; unchanged files are not rewritten; stale ones removed."""
    result = ExportResult()
    directory.mkdir(parents=True, exist_ok=True)
    previous = _read_manifest(directory)
    for rel, content in sorted(files.items()):
        path = directory / rel
        data = content.encode("utf-8")
        if path.is_file() and path.read_bytes() == data:
            result.unchanged.append(rel)
            continue
        _atomic_write(path, data)
        result.written.append(rel)
    for rel in sorted(previous - files.keys()):
        path = directory / rel
        if path.is_file():
            path.unlink()
            result.removed.append(rel)
            if path.parent != directory and not any(path.parent.iterdir()):
                path.parent.rmdir()
    manifest, listing = directory / MANIFEST, ("\n".join(sorted(files)) + "\n").encode()
    if not (manifest.is_file() and manifest.read_bytes() == listing):  # unchanged: leave its mtime alone
        _atomic_write(manifest, listing)
    return result


def _read_manifest(directory: Path) -> set[str]:
    path = directory / MANIFEST
    if not path.is_file():
        return set()
    # Only relative paths inside DIR, so a tampered manifest cannot delete elsewhere.
    return {
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("/") and ".." not in Path(line).parts
    }


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would make reviewers' checkouts differ
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
