"""The vertical slice on the real control plane: alert -> FalcoAlert -> enrichment -> AlertReport."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubernetes import client

from devcluster.seed import seed
from falco_reporter.models.falco import normalise, object_name, parse_alert_body
from falco_reporter.models.report import AlertReportSpec
from tests.objects import alert_for, get, listed, wait_report
from tests.operator_proc import FalcoReporterProcess, post, wait_for
from tests.samples import REAL_SAMPLES

pytestmark = pytest.mark.cluster
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def fallback_ns(kube_api):
    core = client.CoreV1Api(kube_api)
    try:
        core.create_namespace({"metadata": {"name": "falco-reporter"}})
    except client.ApiException as exc:
        if exc.status != 409:  # created by an earlier module: fine
            raise
    return "falco-reporter"


@pytest.fixture(scope="module")
def operator(cluster, fallback_ns, tmp_path_factory):
    proc = FalcoReporterProcess(str(cluster.kubeconfig), log_dir=tmp_path_factory.mktemp("logs"))
    with proc:
        yield proc


@pytest.mark.parametrize("path", REAL_SAMPLES, ids=lambda p: p.stem)
def test_real_sample_becomes_alert_and_report(operator, kube_api, path):
    """Every real Falco payload is acknowledged and yields a FalcoAlert and a schema-valid AlertReport."""
    status, body = post(operator.url, path.read_bytes())
    assert status == 202, body
    ns, name = body["namespace"], body["name"]
    assert get(kube_api, "falcoalerts", ns, name) is not None
    report = wait_for(lambda: get(kube_api, "alertreports", ns, name), what=f"report {ns}/{name}")
    spec = AlertReportSpec.model_validate(report["spec"])
    raw = json.loads(path.read_bytes())
    assert spec.rule == raw["rule"]
    assert spec.alert_ref.name == name
    assert report["metadata"]["ownerReferences"][0]["kind"] == "FalcoAlert"
    assert spec.markdown.startswith(f"# {raw['rule']}")


def test_burst_of_identical_alerts_merges_into_one(operator, kube_api, namespace):
    """500 identical alerts make one FalcoAlert whose count reaches 500 after the flush."""
    payload = json.dumps(alert_for(namespace, "burst-pod")).encode()
    names = set()
    for _ in range(500):
        status, body = post(operator.url, payload)
        assert status == 202
        names.add(body["name"])
    assert len(names) == 1
    assert len(listed(kube_api, "falcoalerts", namespace)) == 1
    name = names.pop()
    wait_for(
        lambda: (
            (
                get(kube_api, "falcoalerts", namespace, name)
                .get("status", {})
                .get("occurrences", {})
                .get("count")
            )
            == 500
        ),
        what="count 500",
    )
    wait_for(
        lambda: (
            (get(kube_api, "alertreports", namespace, name) or {})
            .get("spec", {})
            .get("occurrences", {})
            .get("count")
            == 500
        ),
        what="report count synced to 500",
    )
    alert = wait_for(
        lambda: (
            (a := get(kube_api, "falcoalerts", namespace, name))
            and (a.get("status") or {}).get("reportRef", {}).get("occurrences") == 500
            and a
        ),
        what="the alert records the synced count",
    )
    # Level-triggered handlers: kopf keeps no copy of the spec on the object, and no progress once done.
    assert not any(
        key.endswith("last-handled-configuration") for key in alert["metadata"].get("annotations", {})
    )
    assert not (alert["status"].get("kopf") or {}).get("progress")


def test_alerts_for_two_pods_make_two_objects(operator, kube_api, namespace):
    """Different pods are different alerts."""
    for pod in ("pod-a", "pod-b", "pod-a"):
        assert post(operator.url, alert_for(namespace, pod))[0] == 202
    assert len(listed(kube_api, "falcoalerts", namespace)) == 2


def test_report_names_the_deployment_and_digest(operator, cluster, kube_api, namespace):
    """A Deployment's pod: the report names the Deployment, the image digest, node and service account."""
    seed(
        str(cluster.kubectl),
        str(cluster.kubeconfig),
        ROOT / "samples" / "workloads.yaml",
        namespace=namespace,
    )
    body = json.loads((ROOT / "samples" / "alerts" / "01-terminal-shell-shop-web.json").read_text())
    body["output_fields"]["k8s.ns.name"] = namespace
    status, answer = post(operator.url, body)
    assert status == 202 and answer["namespace"] == namespace
    report = wait_report(kube_api, namespace, answer["name"])
    subject = report["spec"]["subject"]
    assert subject["workload"] == {"kind": "Deployment", "name": "web"}
    assert subject["imageDigest"].startswith("sha256:") and len(subject["imageDigest"]) == 71
    assert subject["node"] == "worker-1"
    assert subject["serviceAccount"] == "web"
    alert = get(kube_api, "falcoalerts", namespace, answer["name"])
    chain = [o["kind"] for o in alert["status"]["enrichment"]["ownerChain"]]
    assert chain == ["ReplicaSet", "Deployment"]
    conditions = {c["type"]: c for c in alert["status"]["conditions"]}
    assert conditions["Enriched"]["reason"] == "PodFound"
    assert conditions["Reported"]["status"] == "True"


def test_missing_pod_still_yields_a_report_that_says_so(operator, kube_api, namespace):
    """An alert naming a pod that does not exist gets a report recording the gap."""
    status, answer = post(operator.url, alert_for(namespace, "ghost-pod"))
    assert status == 202
    report = wait_report(kube_api, namespace, answer["name"])
    assert f"Pod {namespace}/ghost-pod" in report["spec"]["analysis"]
    alert = get(kube_api, "falcoalerts", namespace, answer["name"])
    assert alert["status"]["enrichment"]["missing"] == [f"Pod {namespace}/ghost-pod"]
    assert {c["type"]: c["reason"] for c in alert["status"]["conditions"]}["Enriched"] == "PodMissing"


def test_alert_for_unknown_namespace_goes_to_fallback(operator, kube_api, fallback_ns):
    """An alert naming a namespace that does not exist is stored in the operator's namespace."""
    status, answer = post(operator.url, alert_for("no-such-namespace-xyz", "p"))
    assert status == 202 and answer["namespace"] == fallback_ns


def test_render_matches_operator_fields():
    """The offline pipeline produces the same deterministic name the receiver uses."""
    body = (ROOT / "samples" / "alerts" / "03-drop-exec-backup-job.json").read_bytes()
    assert object_name(normalise(parse_alert_body(body))).startswith(
        "drop-and-execute-new-binary-in-container-"
    )
