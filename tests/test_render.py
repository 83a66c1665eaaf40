"""Reports that are right: subject, mitigations, URLs, secrets, knowledge-base coverage, known-benign actors.

Everything here runs offline through ``falco_reporter.offline.render_alert`` (the built-in writer)
and, for a few samples, the real ``falco-reporter render`` command. The known-bad snippets an LLM
once wrote (INI-style falco.conf, a ``- alert:`` pseudo-rule, a NetworkPolicy with ``source``
instead of ``from``) are rejected in tests/test_validation.py (``test_ini_style_falco_conf_is_
rejected_everywhere``, ``test_alert_pseudo_rule_is_rejected``, ``test_network_policy_with_wrong_
field_names_the_path``) and are not repeated here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from falco_reporter.knowledge.base import KnowledgeBase, load
from falco_reporter.knowledge.model import PLACEHOLDERS, KnowledgeEntry
from falco_reporter.models.enrichment import Enrichment
from falco_reporter.models.falco import normalise, parse_alert_body
from falco_reporter.models.report import AlertReportSpec
from falco_reporter.offline import render_alert
from falco_reporter.reporting import markdown
from falco_reporter.reporting.evidence.fields import FieldView
from falco_reporter.reporting.exceptions import plan_exception
from falco_reporter.reporting.suppression import SuppressionError, build_suppression
from falco_reporter.reporting.values import fill_shell, fill_yaml
from falco_reporter.validation import upstream_names, validate_snippet
from falco_reporter.validation.yamlload import load_one
from tests.samples import REAL_DIR, REAL_SAMPLES

ROOT = Path(__file__).resolve().parent.parent
PLANTED = json.loads(
    (Path(__file__).parent / "data" / "secrets" / "planted.json").read_text(encoding="utf-8")
)
URL_RE = re.compile(r"https?://[^\s)\]>`'\"|]+")
# The language each kind of mitigation must be written in (configuration may be any of them).
LANGUAGES = {
    "falco-exception": {"yaml"},
    "kubernetes-manifest": {"yaml"},
    "command": {"shell"},
    "process": {"text"},
    "configuration": {"yaml", "shell", "text"},
}
# Container and Kubernetes metadata Falco appends to every rule's output (append_output / -pk).
APPENDED_FIELDS = frozenset(
    {"k8s.ns.name", "k8s.pod.name", "container.id", "container.name", "container.image.repository"}
)
# Exception fields the report writer derives from the alert: fd.sport, the server port, from fd.lport/fd.rport
# and the connection's direction (a client port never repeats; the server port does).
EXCEPTION_DERIVED = frozenset({"fd.sport"})
DUMMY_VALUES = {
    "namespace": "shop",
    "pod": "web-5d9c7b8f4-x2x7q",
    "container": "web",
    "container_id": "4b1f0a9c2d3e",
    "node": "worker-1",
    "image": "registry.example.com/shop/web:1.4.2",
    "proc_name": "sh",
    "proc_exepath": "/bin/sh",
    "workload_kind": "Deployment",
    "workload_name": "web",
    "service_account": "web",
    "pid": "48213",
    "falco_host": "worker-1",
    "audit_user": "alice@example.com",
}


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return load()


def render_file(path: Path) -> dict[str, Any]:
    return render_alert(path.read_bytes(), [])


def text_field(fields: dict[str, Any], *names: str) -> str:
    """The first present output field as text, with Falco's '<NA>' and empty values treated as absent."""
    for name in names:
        value = fields.get(name)
        if value is not None and value not in ("", "<NA>"):
            return str(value)
    return ""


def expected_subject(raw: dict[str, Any]) -> dict[str, Any]:
    """The subject the report must show for an alert with no enrichment, derived from the raw JSON."""
    fields = raw.get("output_fields") or {}
    pod = text_field(fields, "k8s.pod.name")
    if not pod and text_field(fields, "ka.target.resource") == "pods":
        pod = text_field(fields, "ka.target.name")
    repo, tag = text_field(fields, "container.image.repository"), text_field(fields, "container.image.tag")
    return {
        "namespace": text_field(fields, "k8s.ns.name", "ka.target.namespace"),
        "pod": pod,
        "container": text_field(fields, "container.name"),
        "image": f"{repo}:{tag}" if repo and tag else repo,
        # No objects are given, so no Node exists: the node stays empty and the hostname is only the Falco host.
        "node": "",
        "falcoHost": raw.get("hostname") or "",
        "process": {
            "name": text_field(fields, "proc.name"),
            "exepath": text_field(fields, "proc.exepath", "proc.exe"),
            "cmdline": text_field(fields, "proc.cmdline"),
            "parent": text_field(fields, "proc.pname"),
            "user": text_field(fields, "user.name", "ka.user.name"),
        },
    }


def urls_in(spec: dict[str, Any]) -> set[str]:
    """Every URL the report shows: references and any URL written in its prose or Markdown."""
    texts = [spec["markdown"], spec["analysis"], spec["summary"], spec["verdictReason"]]
    texts += [m["description"] for m in spec["mitigations"]]
    found = {u.rstrip(".,;:") for t in texts for u in URL_RE.findall(t)}
    return found | {r["url"] for r in spec["references"]}


def cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "falco_reporter.cli", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )


# --- every real sample ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", REAL_SAMPLES, ids=lambda p: p.stem)
def test_subject_matches_the_alert(path: Path) -> None:
    """The report's subject names exactly the namespace, pod, container, image, process and user the alert names."""
    raw = json.loads(path.read_bytes())
    subject = render_file(path)["spec"]["subject"]
    expected = expected_subject(raw)
    assert {k: subject[k] for k in ("namespace", "pod", "container", "image", "node", "falcoHost")} == {
        k: expected[k] for k in ("namespace", "pod", "container", "image", "node", "falcoHost")
    }
    assert {k: subject["process"][k] for k in expected["process"]} == expected["process"]


@pytest.mark.parametrize("path", REAL_SAMPLES, ids=lambda p: p.stem)
def test_every_mitigation_validates_with_a_consistent_language(path: Path) -> None:
    """Each mitigation passes its validator again, records what was checked, and uses its kind's language."""
    spec = render_file(path)["spec"]
    mitigations = spec["mitigations"]
    # Routine Falco health events (a metrics snapshot, an idle source) need nothing done.
    routine = spec["rule"].startswith("Falco internal:") and spec["severity"] in ("info", "low")
    assert bool(mitigations) != routine, "a report offers a mitigation unless it is routine health telemetry"
    for m in mitigations:
        result = validate_snippet(m["kind"], m["language"], m.get("snippet", ""))
        assert result.ok, (m["title"], result.errors)
        assert m["language"] in LANGUAGES[m["kind"]], m
        assert m["validated"] == result.summary()
        assert bool(m.get("snippet")) == (m["kind"] != "process"), m


@pytest.mark.parametrize("path", REAL_SAMPLES, ids=lambda p: p.stem)
def test_every_url_is_allow_listed(path: Path, kb: KnowledgeBase) -> None:
    """References and every URL in the Markdown, analysis and prose are curated pages or MITRE ATT&CK pages."""
    spec = render_file(path)["spec"]
    urls = urls_in(spec)
    assert urls, "every report cites at least one reference"
    assert [u for u in sorted(urls) if not kb.allowed_url(u)] == []


@pytest.mark.parametrize("path", REAL_SAMPLES, ids=lambda p: p.stem)
def test_markdown_is_deterministic_and_renders_the_spec(path: Path) -> None:
    """Rendering twice gives the same bytes, and the Markdown is exactly the rendering of the report's own spec."""
    first, second = render_file(path), render_file(path)
    assert first["spec"]["markdown"].encode() == second["spec"]["markdown"].encode()
    assert first == second
    spec = AlertReportSpec.model_validate(first["spec"])
    assert markdown.render(spec) == first["spec"]["markdown"]
    assert first["spec"]["markdown"].startswith(f"# {markdown.text(json.loads(path.read_bytes())['rule'])}\n")


def test_falco_internal_events_are_health_reports_even_without_a_source() -> None:
    """Falco's own health events (with or without source 'internal') are health reports: never an intrusion, never 'unknown'."""
    internal = [p for p in REAL_SAMPLES if json.loads(p.read_bytes())["rule"].startswith("Falco internal:")]
    assert len(internal) == 3
    assert any("source" not in json.loads(p.read_bytes()) for p in internal)
    severities = {}
    for path in internal:
        spec = render_file(path)["spec"]
        assert spec["verdict"] == "likely-benign", path.name
        assert not [m for m in spec["mitigations"] if m["kind"] == "falco-exception"], path.name
        severities[json.loads(path.read_bytes())["rule"]] = spec["severity"]
    assert severities == {
        "Falco internal: metrics snapshot": "info",
        "Falco internal: syscall event drop": "high",
        "Falco internal: timeouts notification": "low",
    }


@pytest.mark.parametrize(
    ("sample", "fmt"),
    [
        ("syscall_terminal_shell_in_container_ovh_docs_2024.json", "markdown"),
        ("syscall_read_sensitive_file_untrusted.json", "yaml"),
        ("k8saudit_attach_exec_pod_2025.json", "json"),
    ],
)
def test_cli_render_prints_the_same_report(sample: str, fmt: str) -> None:
    """`falco-reporter render --format F` prints exactly what render_alert builds, with nothing on stderr."""
    path = REAL_DIR / sample
    report = render_file(path)
    done = cli("render", str(path), "--format", fmt)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr == b""
    out = done.stdout.decode()
    if fmt == "markdown":
        assert out == report["spec"]["markdown"]
    elif fmt == "yaml":
        assert yaml.safe_load(out) == report
    else:
        assert json.loads(out) == report


def test_cli_render_reads_stdin_and_rejects_a_non_alert() -> None:
    """`render -` reads the alert from stdin; a body that is not an alert exits 2 with the reason on stderr."""
    path = REAL_DIR / "syscall_run_shell_untrusted.json"
    done = cli("render", "-", "--format", "json", stdin=path.read_bytes())
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout) == render_file(path)
    bad = cli("render", "-", stdin=b'{"priority": "Notice"}')
    assert bad.returncode == 2
    assert bad.stdout == b""
    assert "field 'rule' is required" in bad.stderr.decode()


# --- planted secrets -----------------------------------------------------------------------------

CASES = PLANTED["cases"]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_planted_secrets_never_reach_the_report(case: dict[str, Any]) -> None:
    """No planted secret appears anywhere in the rendered AlertReport, and writer.redactions names every kind found."""
    body = json.dumps(case["alert"]).encode()
    raw_dump = json.dumps(case["alert"])
    assert all(s in raw_dump for s in case["secrets"])  # the secrets really are in the alert
    report = render_alert(body, [])
    dump = json.dumps(report)
    assert [s for s in case["secrets"] if s in dump] == []
    redactions = report["spec"]["writer"]["redactions"]
    assert set(case["kinds"]) <= set(redactions)
    assert f"redacted: {', '.join(redactions)}." in report["spec"]["markdown"]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_falco_exception_never_holds_a_redaction_placeholder(case: dict[str, Any]) -> None:
    """An exception never pins '[REDACTED-n]' nor drops the field: where a needed field held a secret, none is offered and the report says why."""
    spec = render_alert(json.dumps(case["alert"]).encode(), [])["spec"]
    exceptions = [m for m in spec["mitigations"] if m["kind"] == "falco-exception"]
    assert len(exceptions) <= 1
    if not exceptions:
        assert "was redacted" in spec["analysis"]
        return
    snippet = exceptions[0]["snippet"]
    assert "REDACTED" not in snippet
    item = yaml.safe_load(snippet)[0]
    fields, values = item["exceptions"][0]["fields"], item["exceptions"][0]["values"][0]
    assert len(fields) == len(values) >= 2
    assert (
        dict(zip(fields, values, strict=True))["k8s.ns.name"] == case["alert"]["output_fields"]["k8s.ns.name"]
    )


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_accepted_false_positive_exception_holds_no_secret(case: dict[str, Any], kb: KnowledgeBase) -> None:
    """The suppression built from the raw FalcoAlert carries no planted secret, or is refused because a needed field held one."""
    alert = normalise(parse_alert_body(json.dumps(case["alert"]).encode()))
    refused = ""
    try:
        snippet, result = build_suppression(kb, alert)
    except SuppressionError as exc:
        refused = str(exc)
    if refused:
        assert "redacted" in refused
        return
    assert result.ok
    assert [s for s in case["secrets"] if s in snippet] == []
    assert "REDACTED" not in snippet
    assert f"rule: {alert.rule}" in snippet


# --- knowledge base coverage -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def upstream_rules() -> dict[str, dict[str, Any]]:
    """The upstream rules indexes by rule name: the rulesets (stable ... deprecated) and the k8saudit plugin's.

    The k8saudit rules carry no maturity upstream; their entries use maturity 'k8saudit'.
    """
    directory = os.environ.get("FALCO_UPSTREAM_DIR")
    if not directory:
        pytest.fail(
            "FALCO_UPSTREAM_DIR is not set: point it at the upstream Falco snapshot holding rules-index.json "
            "(CI sets FALCO_UPSTREAM_DIR=../shared/falco)"
        )
    index = json.loads((Path(directory) / "rules-index.json").read_text(encoding="utf-8"))
    k8saudit = json.loads((Path(directory) / "rules-index-k8saudit.json").read_text(encoding="utf-8"))
    return {r["rule"]: r for r in index} | {r["rule"]: {**r, "maturity": "k8saudit"} for r in k8saudit}


def test_every_upstream_rule_has_an_entry(
    upstream_rules: dict[str, dict[str, Any]], kb: KnowledgeBase
) -> None:
    """Every rule of the upstream stable, incubating and sandbox rulesets has a knowledge-base entry."""
    maintained = [
        n for n, r in upstream_rules.items() if r["maturity"] in ("stable", "incubating", "sandbox")
    ]
    assert len(maintained) > 80
    assert [n for n in maintained if n not in kb.entries] == []


def test_every_entry_names_an_upstream_rule(
    upstream_rules: dict[str, dict[str, Any]], kb: KnowledgeBase
) -> None:
    """Every entry's rule exists upstream (deprecated included) with the same maturity, priority and source."""
    assert [n for n in kb.entries if n not in upstream_rules] == []
    mismatched = [
        (n, (e.maturity, e.priority, e.source))
        for n, e in kb.entries.items()
        if (e.maturity, e.priority, e.source)
        != (upstream_rules[n]["maturity"], upstream_rules[n]["priority"], upstream_rules[n]["source"])
    ]
    assert mismatched == []


def test_exception_fields_are_in_the_rule_output(
    upstream_rules: dict[str, dict[str, Any]], kb: KnowledgeBase
) -> None:
    """Every exception field is one the upstream rule's output carries (or appended metadata, or the derived server port)."""
    missing = [
        (n, f)
        for n, e in kb.entries.items()
        for f in e.exception.fields
        if f not in upstream_rules[n]["output_fields"]
        and f not in APPENDED_FIELDS
        and f not in EXCEPTION_DERIVED
    ]
    assert missing == []


def entries() -> list[KnowledgeEntry]:
    return sorted(load().entries.values(), key=lambda e: e.rule)


@pytest.mark.parametrize("entry", entries(), ids=lambda e: e.rule)
def test_every_knowledge_snippet_validates(entry: KnowledgeEntry) -> None:
    """Investigation commands, mitigations (as written and filled), tuning hooks and the exception all validate."""
    known = upstream_names()
    problems: list[str] = []

    def check(what: str, kind: str, language: str, snippet: str, **kwargs: Any) -> None:
        result = validate_snippet(kind, language, snippet, **kwargs)
        if not result.ok:
            problems.append(f"{what}: {'; '.join(result.errors)}")

    for step in entry.investigation:
        check(f"investigation {step.title!r}", "command", "shell", step.command)
        filled = fill_shell(step.command, DUMMY_VALUES)
        assert filled is not None and "{{" not in filled
        check(f"investigation {step.title!r} filled", "command", "shell", filled)
    for m in entry.mitigations:
        check(f"mitigation {m.title!r}", m.kind, m.language, m.snippet, known=known)
        if m.snippet and m.language in ("shell", "yaml"):
            filled = (fill_shell if m.language == "shell" else fill_yaml)(m.snippet, DUMMY_VALUES)
            assert filled is not None and "{{" not in filled, m.title
            check(f"mitigation {m.title!r} filled", m.kind, m.language, filled, known=known)
    for hook in entry.tuning_hooks:
        check(f"tuning hook {hook.name!r}", "falco-exception", "yaml", hook.snippet, known=known)
        items = load_one(hook.snippet, yaml12=True)
        assert [i.get(hook.kind) for i in items] == [hook.name], hook.snippet
    alert = normalise(
        {
            "rule": entry.rule,
            "priority": "Notice",
            "time": "2026-11-20T09:12:44Z",
            "output_fields": {
                "k8s.ns.name": "shop",
                "container.id": "4b1f0a9c2d3e",
                "container.image.repository": "registry.example.com/shop/web",
                # The server port is derived from the direction, which network rules' outputs carry.
                "evt.type": "accept" if "fd.lport" in entry.exception.fields else "connect",
                **{f: f"value-{chr(97 + i)}" for i, f in enumerate(entry.exception.fields)},
            },
        }
    )
    plan = plan_exception(entry.rule, entry.exception, FieldView(alert, Enrichment()))
    assert plan.snippet, plan.refused
    snippet = plan.snippet
    check("exception template", "falco-exception", "yaml", snippet, known=known)
    assert problems == []


@pytest.mark.parametrize("entry", entries(), ids=lambda e: e.rule)
def test_knowledge_references_are_allow_listed(entry: KnowledgeEntry, kb: KnowledgeBase) -> None:
    """Every reference an entry cites is in the allow-list reports are checked against."""
    assert [str(r.url) for r in entry.references if not kb.allowed_url(str(r.url))] == []


def test_dummy_values_cover_every_placeholder() -> None:
    """The dummy values fill every placeholder a knowledge-base snippet may use (so the filled checks are complete)."""
    assert set(DUMMY_VALUES) == PLACEHOLDERS


# --- known-benign actors ------------------------------------------------------------------------------


def actor_alert(
    rule: str, namespace: str, repository: str, tag: str, proc: str, exepath: str, **extra: str
) -> bytes:
    fields: dict[str, Any] = {
        "k8s.ns.name": namespace,
        "k8s.pod.name": f"{proc}-7c9d8b6f5-abcde",
        "container.id": "0123456789ab",
        "container.name": proc,
        "proc.name": proc,
        "proc.exepath": exepath,
        "proc.cmdline": proc,
        "proc.pname": "containerd-shim",
        "user.name": "root",
        **extra,
    }
    if repository:
        fields |= {"container.image.repository": repository, "container.image.tag": tag}
    body = {
        "rule": rule,
        "priority": "Warning",
        "time": "2026-11-20T09:12:44.120345678Z",
        "source": "syscall",
        "hostname": "worker-1",
        "output": f"{rule} | process={proc}",
        "output_fields": fields,
    }
    return json.dumps(body).encode()


BENIGN = [
    pytest.param(
        "Contact K8S API Server From Container",
        "falco",
        "docker.io/falcosecurity/falco",
        "0.42.1",
        "falco",
        "/usr/bin/falco",
        "Falco",
        id="falco",
    ),
    pytest.param(
        "Linux Kernel Module Injection Detected",
        "falco",
        "docker.io/falcosecurity/falco-driver-loader",
        "0.42.1",
        "insmod",
        "/usr/sbin/insmod",
        "Falco",
        id="falco-driver-loader",
    ),
    pytest.param(
        "Write below etc",
        "falco",
        "docker.io/falcosecurity/falcoctl",
        "0.11.0",
        "falcoctl",
        "/usr/bin/falcoctl",
        "falcoctl",
        id="falcoctl",
    ),
    pytest.param(
        "Contact K8S API Server From Container",
        "falco",
        "docker.io/falcosecurity/falcosidekick",
        "2.34.1",
        "falcosidekick",
        "/app/falcosidekick",
        "Falcosidekick",
        id="falcosidekick",
    ),
    pytest.param(
        "Read sensitive file untrusted",
        "event-generator",
        "docker.io/falcosecurity/event-generator",
        "latest",
        "event-generator",
        "/bin/event-generator",
        "Falco event-generator",
        id="event-generator",
    ),
    pytest.param(
        "Read environment variable from /proc files",
        "datadog",
        "gcr.io/datadoghq/agent",
        "7.60.0",
        "agent",
        "/opt/datadog-agent/bin/agent/agent",
        "Datadog agent",
        id="datadog-gcr",
    ),
    pytest.param(
        "Read environment variable from /proc files",
        "datadog",
        "docker.io/datadog/agent",
        "7.60.0",
        "agent",
        "/opt/datadog-agent/bin/agent/agent",
        "Datadog agent",
        id="datadog-dockerhub",
    ),
]


@pytest.mark.parametrize(("rule", "namespace", "repository", "tag", "proc", "exepath", "actor"), BENIGN)
def test_known_benign_actor_is_recognised_with_a_precise_exception(
    rule: str, namespace: str, repository: str, tag: str, proc: str, exepath: str, actor: str
) -> None:
    """Falco's components, event-generator and the Datadog agent are likely-benign, named, and excepted precisely."""
    spec = render_alert(
        actor_alert(rule, namespace, repository, tag, proc, exepath, **{"fd.name": "/etc/x"}), []
    )["spec"]
    assert spec["verdict"] == "likely-benign"
    assert spec["severity"] == ("info" if actor == "Falco event-generator" else "low")
    assert actor in spec["verdictReason"]
    assert spec["evidence"][0]["direction"] == "benign"
    assert spec["evidence"][0]["strength"] == "strong"
    # A test tool's run needs no fix first; anything else's first step is the exact exception.
    first = 1 if actor == "Falco event-generator" else 0
    assert spec["mitigations"][first]["kind"] == "falco-exception"
    (exception,) = [m for m in spec["mitigations"] if m["kind"] == "falco-exception"]
    item = yaml.safe_load(exception["snippet"])[0]
    assert item["rule"] == rule
    values = dict(zip(item["exceptions"][0]["fields"], item["exceptions"][0]["values"][0], strict=True))
    assert values["k8s.ns.name"] == namespace
    assert values["proc.exepath"] == exepath
    if repository:
        assert values["container.image.repository"] == repository


LOOKALIKES = [
    pytest.param("ghcr.io/evil/falcosecurity/falco-miner", "falco", "xmrig", id="falco-prefixed-image"),
    pytest.param("docker.io/attacker/falcosecurity-falco", "shop", "xmrig", id="falco-in-repository-name"),
    pytest.param("gcr.io/datadoghq/agent", "shop", "agent", id="agent-image-outside-its-namespace"),
    pytest.param("docker.io/shop/web", "shop", "falco", id="process-named-falco-elsewhere"),
    pytest.param(
        "ghcr.io/someone/falcosecurity/falco", "falco", "falco", id="falco-path-under-another-owner"
    ),
    pytest.param("", "falco", "falco", id="falco-process-name-without-image-or-owner"),
]


@pytest.mark.parametrize(("repository", "namespace", "proc"), LOOKALIKES)
def test_lookalikes_are_not_taken_for_known_actors(repository: str, namespace: str, proc: str) -> None:
    """Images merely containing a known name, agents outside their namespace and a process named falco elsewhere stay suspicious."""
    body = actor_alert(
        "Contact K8S API Server From Container", namespace, repository, "1.0", proc, f"/usr/bin/{proc}"
    )
    spec = render_alert(body, [])["spec"]
    # A miner's name makes a lookalike likely malicious; otherwise it stays suspicious: never benign.
    assert spec["verdict"] == ("likely-malicious" if proc == "xmrig" else "suspicious")
    assert spec["severity"] != "info"
    assert [e["id"] for e in spec["evidence"] if e["id"].startswith(("actor-", "agent-"))] == []


@pytest.mark.parametrize("path", REAL_SAMPLES, ids=lambda p: p.stem)
def test_the_first_step_never_points_to_steps_that_are_not_there(path: Path) -> None:
    """A first step that says to run the read-only steps is only written when the report lists some."""
    spec = render_file(path)["spec"]
    first = spec["mitigations"][0]["description"] if spec["mitigations"] else ""
    if "read-only steps" in first:
        assert spec["investigation"], f"{path.stem}: step 1 points to investigation steps, none listed"


def test_a_container_outside_kubernetes_gets_a_host_side_inspect_step() -> None:
    """A shell in a container with no pod is investigated from the host that ran it, by container id."""
    path = REAL_DIR / "syscall_terminal_shell_in_container_0_43.json"
    spec = render_file(path)["spec"]
    cid, host = json.loads(path.read_bytes())["output_fields"]["container.id"], spec["subject"]["falcoHost"]
    assert cid and host and not spec["subject"]["pod"]
    assert any(f"On host {host}" in s and s.endswith(f"crictl inspect {cid}") for s in spec["investigation"])


def test_an_undecided_verdict_says_why_above_its_evidence() -> None:
    """A suspicious report whose only evidence leans benign states that it is undecided and why."""
    spec = render_file(REAL_DIR / "syscall_terminal_shell_in_container_0_43.json")["spec"]
    assert spec["verdict"] == "suspicious"
    assert {e["direction"] for e in spec["evidence"]} <= {"benign", "context"}
    md = markdown.render(AlertReportSpec.model_validate(spec))
    why = md.split("## Why this verdict", 1)[1].split("## Context", 1)[0]
    assert "Undecided:" in why and "without proving it" in why
    assert "Matches a known benign cause" not in md, "a moderate signal is worded as proof"


def test_an_identity_is_not_listed_again_as_a_curated_cause_of_the_same_field() -> None:
    """The event-generator image is one fact: one evidence item, not an identity plus a cause on the same field."""
    spec = render_file(REAL_DIR / "syscall_find_aws_credentials.json")["spec"]
    on_image = [e for e in spec["evidence"] if e["source"] == "image.repository"]
    assert len(on_image) == 1, on_image


def test_a_host_event_says_why_no_exception_in_host_terms() -> None:
    """A write on the node itself is refused an exception because it has no namespace, said as such."""
    spec = render_file(REAL_DIR / "syscall_write_below_binary_dir_legacy.json")["spec"]
    assert "ran on the node itself" in spec["analysis"]
    assert "the alert has no value for" not in spec["analysis"]


@pytest.mark.parametrize("path", REAL_SAMPLES, ids=lambda p: p.stem)
def test_one_confirmation_step_and_no_fixed_example_values(path: Path) -> None:
    """A report asks to confirm once, and a tuning snippet names this alert's user, not a fixed example."""
    raw = json.loads(path.read_bytes())
    spec = render_file(path)["spec"]
    confirms = [m for m in spec["mitigations"] if m["title"].lower().startswith("confirm")]
    assert len(confirms) <= 1, [m["title"] for m in confirms]
    user = (raw.get("output_fields") or {}).get("ka.user.name")
    for m in spec["mitigations"]:
        if "allowed_k8s_users" in m["snippet"]:
            assert f'"{user}"' in m["snippet"], m["snippet"]


def test_a_quoted_yaml_placeholder_takes_any_value_escaped_and_once() -> None:
    """A user name with '@' or quotes fills a quoted YAML placeholder as one escaped string, never re-filled."""
    template = '- list: allowed_k8s_users\n  items: ["{{audit_user}}"]\n'
    for user in ("alice@example.com", 'x"] \n- rule: y', "{{namespace}}"):
        filled = fill_yaml(template, {"audit_user": user, "namespace": "prod"})
        assert filled is not None
        assert yaml.safe_load(filled) == [{"list": "allowed_k8s_users", "items": [user]}]
    assert fill_yaml("namespace: {{audit_user}}\n", {"audit_user": "alice@example.com"}) is None


def test_revoking_an_unrecognised_user_comes_right_after_confirming() -> None:
    """For an exec by a user, the conditional revoke step comes before any RBAC hardening."""
    spec = render_file(REAL_DIR / "k8saudit_attach_exec_pod_2025.json")["spec"]
    titles = [m["title"] for m in spec["mitigations"]]
    assert titles[0].startswith("Confirm") and titles[1].startswith("If the user is not recognised"), titles
