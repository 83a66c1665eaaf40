"""Incidents: one story per pod across alerts, offline and on the real control plane."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from devcluster.reporter import scrape
from falco_reporter.models.report import AlertReportSpec, Occurrences, Subject, Writer
from falco_reporter.models.resources import LABEL_INCIDENT
from falco_reporter.offline import render_alerts
from falco_reporter.reconciler.incidents import IncidentTracker
from falco_reporter.reporting.incidents import incident_key
from tests.objects import listed, wait_report
from tests.operator_proc import FalcoReporterProcess, post, wait_for

ROOT = Path(__file__).resolve().parent.parent


def _alert(namespace: str, pod: str, rule: str, priority: str, time: str, **fields: Any) -> dict[str, Any]:
    return {
        "rule": rule,
        "priority": priority,
        "time": time,
        "source": "syscall",
        "hostname": "worker-1",
        "output": rule,
        "output_fields": {
            "k8s.ns.name": namespace,
            "k8s.pod.name": pod,
            "container.id": "6bc1b4be90d6",
            "container.image.repository": "registry.acme.internal/shop/web",
            **fields,
        },
    }


def intrusion(namespace: str, pod: str = "web-7d9f8c6b5-x2x7q") -> list[dict[str, Any]]:
    """Shell, then a read of /etc/shadow, then a dropped binary run: one pod, five minutes."""
    return [
        _alert(namespace, pod, "Terminal shell in container", "Notice", "2026-11-20T09:01:00.000000000Z",
               **{"proc.name": "bash", "proc.exepath": "/bin/bash", "proc.cmdline": "bash", "proc.pname": "runc"}),
        _alert(namespace, pod, "Read sensitive file untrusted", "Warning", "2026-11-20T09:02:30.000000000Z",
               **{"proc.name": "cat", "proc.exepath": "/bin/cat", "proc.cmdline": "cat /etc/shadow",
                  "fd.name": "/etc/shadow", "proc.pname": "bash"}),
        _alert(namespace, pod, "Drop and execute new binary in container", "Critical",
               "2026-11-20T09:05:10.000000000Z",
               **{"proc.name": "updater", "proc.exepath": "/usr/local/bin/updater",
                  "proc.cmdline": "updater --daemon", "proc.pname": "bash"}),
    ]  # fmt: skip


def audit_exec(namespace: str, pod: str = "web-7d9f8c6b5-x2x7q") -> dict[str, Any]:
    return {
        "rule": "Attach/Exec Pod",
        "priority": "Notice",
        "time": "2026-11-20T09:00:58.000000000Z",
        "source": "k8s_audit",
        "hostname": "falco-k8saudit-0",
        "output": "Attach/Exec to pod",
        "output_fields": {
            "ka.target.name": pod,
            "ka.target.namespace": namespace,
            "ka.target.resource": "pods",
            "ka.target.subresource": "exec",
            "ka.uri.param[command]": "bash",
            "ka.user.name": "mallory@example.com",
        },
    }


def other_pod(namespace: str) -> dict[str, Any]:
    return _alert(namespace, "api-5c4b3a2d1-q9w8e", "Terminal shell in container", "Notice",
                  "2026-11-20T09:03:00.000000000Z", **{"proc.name": "sh", "proc.cmdline": "sh"})  # fmt: skip


# --- offline, the same correlation code ----------------------------------------------------------


def test_out_of_order_alerts_of_one_pod_form_one_incident_in_time_order() -> None:
    """Drop, read, shell (arriving in that order) plus another pod's shell: one incident of three, one alone."""
    alerts = intrusion("shop")
    bodies = [json.dumps(a).encode() for a in [alerts[2], other_pod("shop"), alerts[1], alerts[0]]]
    items = render_alerts(bodies, [])
    times = [i["spec"]["occurrences"]["firstSeen"] for i in items]
    assert times == sorted(times)
    incidents = {i["metadata"]["name"]: i["spec"]["incident"] for i in items}
    ids = {inc["id"] for inc in incidents.values()}
    assert len(ids) == 2
    three = next(inc for inc in incidents.values() if inc["alerts"] == 3)
    assert [e["rule"] for e in three["timeline"]] == [a["rule"] for a in alerts]
    assert three["verdict"] in ("suspicious", "likely-malicious")
    assert "progression" in three["reason"]
    members = [i for i in items if i["spec"]["incident"]["id"] == three["id"]]
    assert all(i["metadata"]["labels"][LABEL_INCIDENT] == three["id"] for i in members)
    assert all("## Part of an incident" in i["spec"]["markdown"] for i in members)


def test_audit_exec_joins_the_syscall_alerts_of_the_shell_it_started() -> None:
    """The audit log's exec into the pod lands in the same incident as the pod's syscall alerts."""
    bodies = [json.dumps(a).encode() for a in [*intrusion("shop"), audit_exec("shop")]]
    items = render_alerts(bodies, [])
    assert len({i["spec"]["incident"]["id"] for i in items}) == 1
    assert items[0]["spec"]["rule"] == "Attach/Exec Pod"
    assert items[0]["spec"]["incident"]["alerts"] == 4


def test_incident_id_ignores_arrival_order_and_depends_on_subject_and_window() -> None:
    """The id is the same for any order, changes with the subject, and with the window bucket."""
    a = incident_key("pod/shop/web", "2026-11-20T09:01:00Z", 1800)
    assert a == incident_key("pod/shop/web", "2026-11-20T09:29:59.999999999Z", 1800)
    assert a != incident_key("pod/shop/api", "2026-11-20T09:01:00Z", 1800)
    assert a != incident_key("pod/shop/web", "2026-11-20T09:31:00Z", 1800)
    assert a[1] == "2026-11-20T09:00:00Z"


def test_benign_actor_alerts_stay_benign_whatever_the_tactics() -> None:
    """The event-generator's alerts across tactics form a likely-benign incident."""
    bodies = [
        json.dumps(
            a
            | {
                "output_fields": a["output_fields"]
                | {"container.image.repository": "docker.io/falcosecurity/event-generator"}
            }
        ).encode()
        for a in intrusion("event-generator", "event-generator-5c9d8f7b6-abcde")
    ]
    items = render_alerts(bodies, [])
    assert {i["spec"]["incident"]["verdict"] for i in items} == {"likely-benign"}


def test_cli_render_of_several_files_prints_a_list(tmp_path: Path) -> None:
    """`falco-reporter render A B C --format json` prints a v1 List of AlertReports in time order."""
    paths = []
    for i, alert in enumerate(reversed(intrusion("shop"))):
        path = tmp_path / f"{i}.json"
        path.write_text(json.dumps(alert), encoding="utf-8")
        paths.append(str(path))
    out = subprocess.run(
        [sys.executable, "-m", "falco_reporter.cli", "render", *paths, "--format", "json"],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    document = json.loads(out.stdout)
    assert (document["apiVersion"], document["kind"]) == ("v1", "List")
    assert [i["kind"] for i in document["items"]] == ["AlertReport"] * 3
    assert [i["spec"]["rule"] for i in document["items"]] == [a["rule"] for a in intrusion("shop")]
    md = subprocess.run(
        [sys.executable, "-m", "falco_reporter.cli", "render", *paths],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    assert md.startswith("# Incident inc-")
    assert md.count("\n# ") >= 3


# --- the tracker against a small fake of the kube layer -------------------------------------------


class FakeReports:
    """Stores reports by name and counts the calls the tracker makes."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.lists = 0
        self.patches = 0

    async def list(
        self, namespace: str | None = None, *, label_selector: str = "", metadata_only: bool = False
    ) -> list[dict[str, Any]]:
        self.lists += 1
        key, equals, value = label_selector.partition("=")  # "key=value", or "key": it exists
        found = [
            i
            for i in self.items.values()
            if (i["metadata"]["labels"].get(key) == value if equals else key in i["metadata"]["labels"])
        ]
        return [{"metadata": i["metadata"]} for i in found] if metadata_only else found

    async def patch(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self.patches += 1
        self.items[name]["spec"] |= patch["spec"]
        return self.items[name]


def _report(rule: str, tactic: str, time: str) -> AlertReportSpec:
    return AlertReportSpec.model_validate(
        {
            "alertRef": {"name": "x", "namespace": "shop"},
            "rule": rule,
            "priority": "Notice",
            "source": "syscall",
            "occurrences": Occurrences(count=1, first_seen=time, last_seen=time).model_dump(by_alias=True),
            "subject": Subject().model_dump(by_alias=True),
            "summary": "s",
            "analysis": "a",
            "severity": "low",
            "verdict": "suspicious",
            "verdictReason": "r",
            "mitre": [{"tactic": tactic}],
            "writer": Writer(backend="builtin").model_dump(by_alias=True),
        }
    )


async def test_a_burst_into_one_incident_costs_bounded_updates() -> None:
    """1,000 alerts of one pod cost one listing and a bounded number of patches of earlier members."""
    fake = FakeReports()
    tracker = IncidentTracker(fake, window=1800, settle=0.05)  # type: ignore[arg-type]
    for i in range(1000):
        name = f"alert-{i:04d}"
        report = _report(f"rule {i % 7}", ("Execution", "Credential Access", "Persistence")[i % 3],
                         f"2026-11-20T09:{10 + i // 100:02d}:{i % 60:02d}.{i:09d}Z")  # fmt: skip
        incident = await tracker.join("shop", "pod/shop/web", name, report)
        spec = report.model_copy(update={"incident": incident}).model_dump(by_alias=True, mode="json")
        fake.items[name] = {"metadata": {"name": name, "labels": {LABEL_INCIDENT: incident.id}}, "spec": spec}
    await asyncio.sleep(0.2)
    for task in list(tracker._pending.values()):
        await task
    assert fake.lists <= 30
    assert fake.patches <= 25 * 25, fake.patches
    assert {i["spec"]["incident"]["id"] for i in fake.items.values()} == {incident.id}


async def test_forgetting_a_deleted_alert_retells_its_incident() -> None:
    """After an alert is deleted, the others' timeline no longer lists it."""
    fake = FakeReports()
    tracker = IncidentTracker(fake, window=1800, settle=0.01)  # type: ignore[arg-type]
    for i, tactic in enumerate(("Execution", "Credential Access")):
        name, time = f"a{i}", f"2026-11-20T09:0{i}:00Z"
        incident = await tracker.join("shop", "pod/shop/web", name, _report(f"r{i}", tactic, time))
        spec = _report(f"r{i}", tactic, time).model_copy(update={"incident": incident})
        fake.items[name] = {"metadata": {"name": name, "labels": {LABEL_INCIDENT: incident.id}},
                            "spec": spec.model_dump(by_alias=True, mode="json")}  # fmt: skip
    await tracker.refresh(("shop", incident.id))
    assert len(fake.items["a0"]["spec"]["incident"]["timeline"]) == 2
    tracker.forget("shop", "pod/shop/web", "2026-11-20T09:01:00Z", "a1")
    for task in list(tracker._pending.values()):
        await task
    assert [e["alert"] for e in fake.items["a0"]["spec"]["incident"]["timeline"]] == ["a0"]


async def test_new_pods_after_a_start_cost_one_listing_not_one_each() -> None:
    """200 alerts of new pods in windows begun before the start are read back with one metadata listing."""
    fake = FakeReports()
    earlier = _report("r", "Execution", "2026-11-20T09:00:00Z")
    tracker = IncidentTracker(fake, window=1800, settle=0.01)  # type: ignore[arg-type]
    old_id = tracker.key("shop", "pod/shop/old", "2026-11-20T09:00:00Z")[0][1]
    fake.items["old-0"] = {
        "metadata": {
            "name": "old-0",
            "labels": {LABEL_INCIDENT: old_id},
            "creationTimestamp": "2026-11-20T09:00:01Z",
        },
        "spec": earlier.model_copy(update={"incident": None}).model_dump(by_alias=True, mode="json"),
    }
    for i in range(200):
        await tracker.join(
            "shop", f"pod/shop/web-{i}", f"a-{i}", _report("r", "Execution", "2026-11-20T09:00:00Z")
        )
    await tracker.join("shop", "pod/shop/old", "old-1", _report("r", "Persistence", "2026-11-20T09:05:00Z"))
    for task in list(tracker._pending.values()):
        await task
    # One metadata listing for the namespace, then a read-back of the one incident that had a member.
    assert fake.lists == 2
    assert [e["alert"] for e in fake.items["old-0"]["spec"]["incident"]["timeline"]] == ["old-0", "old-1"]


# --- on the real control plane --------------------------------------------------------------------


@pytest.fixture
def operator(cluster, tmp_path):
    proc = FalcoReporterProcess(str(cluster.kubeconfig), log_dir=tmp_path)
    with proc:
        yield proc


@pytest.mark.cluster
def test_incident_on_the_real_api_server(operator, kube_api, namespace) -> None:
    """Three alerts of one pod out of order plus an audit exec share one incident; another pod's alert does not."""
    alerts = intrusion(namespace)
    sent = [alerts[2], other_pod(namespace), alerts[0], audit_exec(namespace), alerts[1]]
    names = []
    for alert in sent:
        status, body = post(operator.url, json.dumps(alert).encode())
        assert status == 202, body
        names.append(body["name"])
    reports = {n: wait_report(kube_api, namespace, n, timeout=60) for n in names}
    incident_ids = {n: r["metadata"]["labels"][LABEL_INCIDENT] for n, r in reports.items()}
    the_one = incident_ids[names[0]]
    assert incident_ids[names[1]] != the_one
    assert {incident_ids[n] for n in (names[0], names[2], names[3], names[4])} == {the_one}

    def settled() -> list[dict[str, Any]] | None:
        items = [
            r
            for r in listed(kube_api, "alertreports", namespace)
            if r["metadata"]["labels"].get(LABEL_INCIDENT) == the_one
        ]
        return items if items and all(r["spec"]["incident"]["alerts"] == 4 for r in items) else None

    members = wait_for(settled, timeout=60, what="every member told of all four alerts")
    timeline = members[0]["spec"]["incident"]["timeline"]
    assert [e["time"] for e in timeline] == sorted(e["time"] for e in timeline)
    assert timeline[0]["rule"] == "Attach/Exec Pod"
    assert members[0]["spec"]["incident"]["verdict"] in ("suspicious", "likely-malicious")
    metrics = scrape(operator.url + "/metrics")
    assert "falco_reporter_incident_refreshes_total" in metrics
    assert metrics["falco_reporter_incident_updates_total"] <= 3 * 4


def test_export_groups_an_incident_in_the_index_deterministically() -> None:
    """The export index has one section per incident listing its reports in time order, the same every time."""
    from falco_reporter.exporting.files import render_files

    items = render_alerts([json.dumps(a).encode() for a in [*intrusion("shop"), other_pod("shop")]], [])
    first = render_files(items, frozenset({"markdown", "yaml"}))
    assert first == render_files(list(reversed(items)), frozenset({"markdown", "yaml"}))
    index = first["README.md"]
    section = index.split("## Incidents", 1)[1]
    assert section.count("### inc-") == 1
    order = [line for line in section.splitlines() if line.startswith("- [")]
    assert len(order) == 3
    assert "terminal-shell-in-container" in order[0]
    assert "drop-and-execute" in order[2]


@pytest.mark.cluster
def test_restarting_the_operator_mid_burst_changes_nothing(cluster, kube_api, namespace, tmp_path) -> None:
    """Half an incident's alerts before an operator restart, half after: one incident, every member told of all."""
    pod = "worker-6f7d8c9b5-k2m4p"
    alerts = [
        _alert(namespace, pod, rule, priority, f"2026-11-20T10:0{i}:00.000000000Z",
               **{"proc.name": f"p{i}", "proc.exepath": f"/usr/bin/p{i}", "proc.cmdline": f"p{i} --run"})
        for i, (rule, priority) in enumerate([
            ("Terminal shell in container", "Notice"),
            ("Read sensitive file untrusted", "Warning"),
            ("Search Private Keys or Passwords", "Warning"),
            ("Drop and execute new binary in container", "Critical"),
            ("Clear Log Activities", "Warning"),
            ("Redirect STDOUT/STDIN to Network Connection in Container", "Notice"),
        ])
    ]  # fmt: skip
    names: list[str] = []
    for half in (alerts[:3], alerts[3:]):
        with FalcoReporterProcess(str(cluster.kubeconfig), log_dir=tmp_path) as proc:
            for alert in half:
                status, body = post(proc.url, json.dumps(alert).encode())
                assert status == 202, body
                names.append(body["name"])
            for name in names:
                wait_report(kube_api, namespace, name, timeout=60)

        def told() -> list[dict[str, Any]] | None:
            items = [r for r in listed(kube_api, "alertreports", namespace) if r["metadata"]["name"] in names]
            counts = {r["spec"]["incident"]["alerts"] for r in items}
            return items if len(items) == len(names) and counts == {len(names)} else None

        # The first process tells the first half of each other; the second, started cold, reads
        # them back and tells everyone (pending changes are told at shutdown, not dropped).
        items = wait_for(told, timeout=90, what=f"the {len(names)} members told of each other")
    assert len({r["metadata"]["labels"][LABEL_INCIDENT] for r in items}) == 1
    timeline = items[0]["spec"]["incident"]["timeline"]
    assert [e["alert"] for e in timeline] == names


def test_run_takes_the_documented_export_and_incident_flags() -> None:
    """`run --export-dir DIR --incident-window 0` parses into the settings (the README documents both)."""
    from falco_reporter.cli import build_parser
    from falco_reporter.cli.flags import settings_from_args

    args = build_parser().parse_args(["run", "--export-dir", "/tmp/reports", "--incident-window", "0"])
    settings = settings_from_args(args)
    assert (settings.export_dir, settings.incident_window, settings.export_interval) == (
        "/tmp/reports",
        0,
        30.0,
    )
