"""CRDs: generated from the models, served by the real API server, useful in kubectl."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from falco_reporter.models.crds import build_crds
from falco_reporter.models.falco import FalcoAlertSpec
from falco_reporter.models.report import AlertReportSpec
from falco_reporter.offline import render_alert

ROOT = Path(__file__).resolve().parent.parent


def test_crd_files_match_the_models():
    """crds/*.yaml is exactly what the pydantic models generate (run `make crds` after a model change)."""
    for crd in build_crds():
        path = ROOT / "crds" / f"{crd['spec']['names']['plural']}.yaml"
        assert yaml.safe_load(path.read_text()) == crd, f"{path} is stale: run make crds"


@pytest.mark.parametrize(
    ("path", "model"),
    [("samples/falcoalert.yaml", FalcoAlertSpec), ("samples/alertreport.yaml", AlertReportSpec)],
)
def test_samples_validate_against_models(path, model):
    """The sample manifests validate against the pydantic models."""
    doc = yaml.safe_load((ROOT / path).read_text())
    model.model_validate(doc["spec"])


@pytest.mark.cluster
@pytest.mark.parametrize("path", ["samples/falcoalert.yaml", "samples/alertreport.yaml"])
def test_samples_validate_server_side(cluster, namespace, path):
    """The real API server accepts the sample manifests against the CRD schema (server-side dry run)."""
    proc = subprocess.run(
        [
            str(cluster.kubectl),
            "--kubeconfig",
            str(cluster.kubeconfig),
            "create",
            "--dry-run=server",
            "-n",
            namespace,
            "-f",
            str(ROOT / path),
            "-o",
            "name",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


@pytest.mark.cluster
def test_api_server_rejects_a_bad_report(cluster, namespace, tmp_path):
    """A report with an unknown severity is refused by the CRD schema."""
    doc = yaml.safe_load((ROOT / "samples/alertreport.yaml").read_text())
    doc["spec"]["severity"] = "apocalyptic"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    proc = subprocess.run(
        [
            str(cluster.kubectl),
            "--kubeconfig",
            str(cluster.kubeconfig),
            "create",
            "--dry-run=server",
            "-n",
            namespace,
            "-f",
            str(bad),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0 and "severity" in proc.stderr


@pytest.mark.cluster
def test_kubectl_columns_and_explain(cluster, namespace):
    """`kubectl get alertreports -A` shows the documented columns and `kubectl explain` describes mitigations."""
    kubectl = [str(cluster.kubectl), "--kubeconfig", str(cluster.kubeconfig)]
    subprocess.run(
        [*kubectl, "create", "-n", namespace, "-f", str(ROOT / "samples/alertreport.yaml")],
        check=True,
        capture_output=True,
    )
    out = subprocess.run(
        [*kubectl, "get", "alertreports", "-A"], capture_output=True, text=True, check=True
    ).stdout
    header = out.splitlines()[0].split()
    assert header == [
        "NAMESPACE",
        "NAME",
        "RULE",
        "SEVERITY",
        "VERDICT",
        "WORKLOAD",
        "COUNT",
        "WRITER",
        "REVIEW",
        "AGE",
        "INCIDENT",
    ]
    wide = subprocess.run(
        [*kubectl, "get", "ar", "-n", namespace, "-o", "wide"], capture_output=True, text=True, check=True
    ).stdout
    assert "SUMMARY" in wide.splitlines()[0]
    explain = subprocess.run(
        [*kubectl, "explain", "alertreport.spec.mitigations"], capture_output=True, text=True, check=True
    ).stdout
    assert "validated" in explain and "Concrete mitigations" in explain
    fa = subprocess.run([*kubectl, "get", "fa", "-A"], capture_output=True, text=True, check=True)
    assert fa.returncode == 0


@pytest.mark.cluster
def test_reports_are_selectable_by_review_state(cluster, namespace):
    """The API server filters AlertReports by spec.review.state, the selector the operator watches with."""
    kubectl = [str(cluster.kubectl), "--kubeconfig", str(cluster.kubeconfig), "-n", namespace]
    doc = yaml.safe_load((ROOT / "samples/alertreport.yaml").read_text())
    for name, review in (
        ("unreviewed", None),
        ("accepted", {"state": "false-positive", "by": "alice"}),
        ("acked", {"state": "acknowledged", "by": "bob"}),
    ):
        doc["metadata"]["name"] = name
        doc["spec"].pop("review", None)
        if review:
            doc["spec"]["review"] = review
        subprocess.run(
            [*kubectl, "create", "-f", "-"],
            input=yaml.safe_dump(doc),
            text=True,
            check=True,
            capture_output=True,
        )

    def selected(selector: str) -> list[str]:
        out = subprocess.run(
            [*kubectl, "get", "ar", "--field-selector", selector, "-o", "name"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return sorted(line.rsplit("/", 1)[1] for line in out.split())

    assert selected("spec.review.state=false-positive") == ["accepted"]
    assert selected("spec.review.state!=false-positive") == ["acked", "unreviewed"]
    both = f"spec.verdict={doc['spec']['verdict']},spec.severity={doc['spec']['severity']}"
    assert selected(both) == ["accepted", "acked", "unreviewed"]


def test_the_sample_report_is_what_render_writes_today() -> None:
    """samples/alertreport.yaml is the current output of the command its header names (minus the namespace)."""
    objects = list(yaml.safe_load_all((ROOT / "samples/workloads.yaml").read_text()))
    body = (ROOT / "samples/alerts/01-terminal-shell-shop-web.json").read_bytes()
    fresh = render_alert(body, [o for o in objects if o])
    fresh["metadata"].pop("namespace", None)
    assert yaml.safe_load((ROOT / "samples/alertreport.yaml").read_text()) == fresh
