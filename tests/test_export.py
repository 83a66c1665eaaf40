"""GitOps export: deterministic file trees, clean manifests, the index, remediation files."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from falco_reporter.exporting.files import MANIFEST, clean_manifest, render_files, write_tree
from falco_reporter.exporting.service import parse_duration, select


def report(
    ns: str, name: str, severity: str = "high", verdict: str = "suspicious", last_seen: str = ""
) -> dict:
    return {
        "apiVersion": "falcoreporter.io/v1alpha1",
        "kind": "AlertReport",
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": "1234",
            "resourceVersion": "99",
            "generation": 3,
            "creationTimestamp": "2026-11-20T09:00:00Z",
            "managedFields": [{"manager": "kopf"}],
            "labels": {"b": "2", "a": "1"},
            "annotations": {
                "falcoreporter.io/last-handled-configuration": "{}",
                "kubectl.kubernetes.io/x": "y",
            },
            "ownerReferences": [{"kind": "FalcoAlert", "name": name, "uid": "u"}],
        },
        "spec": {
            "rule": "Terminal shell in container",
            "severity": severity,
            "verdict": verdict,
            "subject": {"workload": {"kind": "Deployment", "name": "web"}},
            "occurrences": {"count": 2, "lastSeen": last_seen},
            "markdown": f"# report {name}\n",
            "mitigations": [
                {
                    "kind": "kubernetes-manifest",
                    "title": "Isolate",
                    "snippet": "apiVersion: v1\nkind: Namespace\n",
                },
                {"kind": "command", "title": "Look", "snippet": "kubectl get pods"},
            ],
        },
        "status": {"conditions": []},
    }


def test_clean_manifest_drops_server_noise():
    """The exported YAML has no uid, resourceVersion, managedFields, ownerReferences, status or kopf state."""
    clean = clean_manifest(report("shop", "r1"))
    assert set(clean) == {"apiVersion", "kind", "metadata", "spec"}
    assert clean["metadata"] == {"name": "r1", "namespace": "shop", "labels": {"a": "1", "b": "2"}}


def test_file_tree_and_index():
    """Each report gives .md and .yaml, manifests give remediation files, and README indexes by severity."""
    files = render_files(
        [report("shop", "r2", "low"), report("ops", "r1", "critical")], frozenset({"markdown", "yaml"})
    )
    assert sorted(files) == [
        "README.md",
        "ops/r1.md",
        "ops/r1.remediation-1.yaml",
        "ops/r1.yaml",
        "shop/r2.md",
        "shop/r2.remediation-1.yaml",
        "shop/r2.yaml",
    ]
    index = files["README.md"].splitlines()
    assert index.index(next(line for line in index if "ops/r1" in line)) < index.index(
        next(line for line in index if "shop/r2" in line)
    )
    assert yaml.safe_load(files["ops/r1.remediation-1.yaml"])["kind"] == "Namespace"


def test_second_export_is_byte_identical_and_stale_files_go(tmp_path):
    """Exporting twice rewrites nothing; a report that disappeared loses its files, foreign files stay."""
    (tmp_path / "notes.txt").write_text("mine")
    reports = [report("shop", "r1"), report("shop", "r2")]
    first = write_tree(tmp_path, render_files(reports, frozenset({"markdown", "yaml"})))
    snapshot = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    second = write_tree(tmp_path, render_files(copy.deepcopy(reports), frozenset({"markdown", "yaml"})))
    assert first.written and not second.written and not second.removed
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == snapshot
    third = write_tree(tmp_path, render_files(reports[:1], frozenset({"markdown", "yaml"})))
    assert sorted(third.removed) == ["shop/r2.md", "shop/r2.remediation-1.yaml", "shop/r2.yaml"]
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert (tmp_path / MANIFEST).is_file()


def test_since_filters_on_last_occurrence():
    """--since keeps reports whose last occurrence is recent."""
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    fresh, stale = (
        report("a", "fresh", last_seen="2026-11-20T11:30:00.000000000Z"),
        report("a", "stale", last_seen="2026-11-18T11:30:00.000000000Z"),
    )
    assert [r["metadata"]["name"] for r in select([fresh, stale], timedelta(hours=2), now)] == ["fresh"]


@pytest.mark.parametrize(("text", "expected"), [("90m", timedelta(minutes=90)), ("7d", timedelta(days=7))])
def test_parse_duration(text, expected):
    """Durations use a number and a unit."""
    assert parse_duration(text) == expected


def test_parse_duration_rejects_garbage():
    """A bad duration names the accepted forms."""
    with pytest.raises(ValueError, match="s, m, h, d, w"):
        parse_duration("soon")
