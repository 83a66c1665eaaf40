"""Idempotence across operator crashes: exactly one report per alert, never regenerated."""

from __future__ import annotations

import pytest
from kubernetes import client

from tests.objects import GROUP, VERSION, alert_for, get, listed
from tests.operator_proc import FalcoReporterProcess, post, wait_for

pytestmark = pytest.mark.cluster


def test_report_written_after_operator_was_down_and_not_duplicated_on_restart(
    cluster, kube_api, namespace, tmp_path
):
    """Alerts stored while the operator is down get one report when it starts; a kill -9 and restart add none."""
    with FalcoReporterProcess(str(cluster.kubeconfig), mode="receiver", log_dir=tmp_path) as receiver:
        names = [post(receiver.url, alert_for(namespace, f"pod-{i}"))[1]["name"] for i in range(3)]
    assert len(listed(kube_api, "falcoalerts", namespace)) == 3
    assert listed(kube_api, "alertreports", namespace) == []

    operator = FalcoReporterProcess(str(cluster.kubeconfig), log_dir=tmp_path, extra=["--no-receiver"])
    operator.start(wait=False)
    try:
        wait_for(lambda: len(listed(kube_api, "alertreports", namespace)) == 3, what="3 reports")
        versions = {
            r["metadata"]["name"]: r["metadata"]["resourceVersion"]
            for r in listed(kube_api, "alertreports", namespace)
        }
    finally:
        operator.kill()
    operator = FalcoReporterProcess(str(cluster.kubeconfig), log_dir=tmp_path, extra=["--no-receiver"])
    operator.start(wait=False)
    try:
        for name in names:
            wait_for(
                lambda n=name: any(
                    c["type"] == "Reported" and c["status"] == "True"
                    for c in get(kube_api, "falcoalerts", namespace, n)
                    .get("status", {})
                    .get("conditions", [])
                ),
                what=f"{name} Reported",
            )
        reports = listed(kube_api, "alertreports", namespace)
        assert sorted(r["metadata"]["name"] for r in reports) == sorted(names)
        assert {r["metadata"]["name"]: r["metadata"]["resourceVersion"] for r in reports} == versions
    finally:
        operator.stop()


def test_crash_between_report_create_and_status_patch_is_recovered(cluster, kube_api, namespace, tmp_path):
    """If the report exists but the alert's status was never written, the operator completes the status only."""
    with FalcoReporterProcess(str(cluster.kubeconfig), mode="receiver", log_dir=tmp_path) as receiver:
        name = post(receiver.url, alert_for(namespace, "half-done"))[1]["name"]
    alert = get(kube_api, "falcoalerts", namespace, name)
    # What a crash right after the report's create leaves behind: a report, no status on the alert.
    report = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AlertReport",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "ownerReferences": [
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "FalcoAlert",
                    "name": name,
                    "uid": alert["metadata"]["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": {
            "alertRef": {"name": name, "namespace": namespace},
            "rule": "Terminal shell in container",
            "priority": "Notice",
            "source": "syscall",
            "occurrences": {"count": 1},
            "subject": {},
            "summary": "pre-existing",
            "analysis": "pre-existing",
            "severity": "medium",
            "verdict": "suspicious",
            "verdictReason": "pre-existing",
            "writer": {"backend": "builtin"},
        },
    }
    client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, "alertreports", report
    )
    with FalcoReporterProcess(str(cluster.kubeconfig), log_dir=tmp_path, extra=["--no-receiver"]).start(
        wait=False
    ):
        wait_for(
            lambda: get(kube_api, "falcoalerts", namespace, name).get("status", {}).get("reportRef"),
            what="reportRef",
        )
    reports = listed(kube_api, "alertreports", namespace)
    assert len(reports) == 1 and reports[0]["spec"]["summary"] == "pre-existing"
    reasons = {
        c["type"]: c["reason"] for c in get(kube_api, "falcoalerts", namespace, name)["status"]["conditions"]
    }
    assert reasons["Reported"] == "AlreadyReported"
