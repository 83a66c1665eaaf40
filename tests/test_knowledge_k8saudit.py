"""Knowledge-base coverage of the k8saudit plugin rules, checked against the upstream index and rules file."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from falco_reporter.knowledge.base import KnowledgeBase, load
from falco_reporter.knowledge.model import KnowledgeEntry, placeholders_in
from falco_reporter.kube.client import connect
from falco_reporter.kube.dryrun import ManifestDryRun
from falco_reporter.reporting.values import fill_yaml

# Entries whose first question is not "what may this user do": anonymous requests are checked as
# system:anonymous, node joins by the node list and CSRs, and the debug firehose has no single subject.
NO_USER_RIGHTS_STEP = {
    "Anonymous Request Allowed",
    "Untrusted Node Successfully Joined the Cluster",
    "Untrusted Node Unsuccessfully Tried to Join the Cluster",
    "All K8s Audit Events",
}


def upstream_dir() -> Path:
    directory = os.environ.get("FALCO_UPSTREAM_DIR")
    if not directory:
        pytest.fail("FALCO_UPSTREAM_DIR is not set (CI sets FALCO_UPSTREAM_DIR=../shared/falco)")
    return Path(directory)


@pytest.fixture(scope="module")
def index() -> dict[str, dict[str, Any]]:
    """The upstream k8saudit rules index by rule name."""
    rules = json.loads((upstream_dir() / "rules-index-k8saudit.json").read_text(encoding="utf-8"))
    return {r["rule"]: r for r in rules}


@pytest.fixture(scope="module")
def rules_file() -> list[dict[str, Any]]:
    """The upstream k8saudit rules file (rules, macros and lists)."""
    path = upstream_dir() / "rules" / "plugins" / "k8saudit" / "k8s_audit_rules.yaml"
    items: list[dict[str, Any]] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return items


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return load()


def k8saudit_entries(kb: KnowledgeBase) -> dict[str, KnowledgeEntry]:
    return {n: e for n, e in kb.entries.items() if e.source == "k8s_audit" or e.maturity == "k8saudit"}


def names_used(rule: str, items: list[dict[str, Any]]) -> set[str]:
    """Every macro and list the rule's condition reaches, directly or through other macros and lists."""
    macros = {i["macro"]: i["condition"] for i in items if "macro" in i}
    lists = {i["list"]: [str(x) for x in i["items"]] for i in items if "list" in i}
    (condition,) = [i["condition"] for i in items if i.get("rule") == rule]
    seen: set[str] = set()
    todo = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", condition)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if name in macros:
            seen.add(name)
            todo += re.findall(r"[A-Za-z_][A-Za-z0-9_]*", macros[name])
        elif name in lists:
            seen.add(name)
            todo += [x for x in lists[name] if x in lists]
    return seen


def test_every_k8saudit_rule_has_an_entry(index: dict[str, dict[str, Any]], kb: KnowledgeBase) -> None:
    """Each of the 48 upstream k8saudit plugin rules has a knowledge-base entry."""
    assert len(index) == 48
    assert [n for n in index if n not in kb.entries] == []


def test_every_k8saudit_entry_names_a_rule_in_the_index(
    index: dict[str, dict[str, Any]], kb: KnowledgeBase
) -> None:
    """Every k8saudit entry is an indexed rule, with maturity 'k8saudit', source k8s_audit and its priority."""
    entries = k8saudit_entries(kb)
    assert len(entries) == len(index)
    wrong = [
        (n, e.maturity, e.source, e.priority)
        for n, e in entries.items()
        if n not in index
        or (e.maturity, e.source, e.priority) != ("k8saudit", "k8s_audit", index[n]["priority"])
    ]
    assert wrong == []


def test_investigation_centres_on_the_audit_user(kb: KnowledgeBase) -> None:
    """Each entry asks what the user may do and who binds it, reads the audit log, and never runs in the pod."""
    problems: list[tuple[str, str]] = []
    for name, entry in k8saudit_entries(kb).items():
        commands = [(s.runs, s.command) for s in entry.investigation]
        if not any(runs == "audit-log" and "jq " in cmd for runs, cmd in commands):
            problems.append((name, "no audit-log query"))
        if any(runs == "container" or "kubectl exec" in cmd for runs, cmd in commands):
            problems.append((name, "runs inside the suspect container"))
        if any("get events" in cmd for _, cmd in commands):
            problems.append((name, "Kubernetes events do not record API requests; use the audit log"))
        if name in NO_USER_RIGHTS_STEP:
            continue
        if not any(
            runs == "cluster" and "auth can-i --list --as={{audit_user}}" in cmd for runs, cmd in commands
        ):
            problems.append((name, "no 'kubectl auth can-i --list --as={{audit_user}}'"))
        if not any("rolebindings,clusterrolebindings" in cmd for _, cmd in commands):
            problems.append((name, "does not show who binds the user"))
        if not any(runs == "audit-log" and "{{audit_user}}" in cmd for runs, cmd in commands):
            problems.append((name, "audit-log query is not for the alert's user"))
    assert problems == []


def test_tuning_hooks_extend_what_the_rule_consults(
    kb: KnowledgeBase, rules_file: list[dict[str, Any]]
) -> None:
    """Every hook names a list or macro of the upstream file that the rule's condition actually reaches."""
    wrong = [
        (name, hook.kind, hook.name)
        for name, entry in k8saudit_entries(kb).items()
        for hook in entry.tuning_hooks
        if hook.name not in names_used(name, rules_file)
        or not any(i.get(hook.kind) == hook.name for i in rules_file)
    ]
    assert wrong == []


def test_signals_test_fields_the_alert_carries(index: dict[str, dict[str, Any]], kb: KnowledgeBase) -> None:
    """Benign-cause signals only test output fields of their rule, so a matching alert can satisfy them."""
    wrong = [
        (name, signal.field)
        for name, entry in k8saudit_entries(kb).items()
        for cause in entry.benign_causes
        for signal in cause.signals
        if signal.field not in index[name]["output_fields"]
    ]
    assert wrong == []


def test_list_valued_exception_fields_use_in(index: dict[str, dict[str, Any]], kb: KnowledgeBase) -> None:
    """Exceptions on list fields (images, binding subjects) compare with 'in', which Falco allows on lists."""
    list_fields = {"ka.req.pod.containers.image", "ka.req.binding.subjects", "ka.req.role.rules"}
    wrong = [
        (name, field, comp)
        for name, entry in k8saudit_entries(kb).items()
        for field, comp in zip(entry.exception.fields, entry.exception.comps, strict=True)
        if (field in list_fields) != (comp == "in")
    ]
    assert wrong == []


def test_snippets_use_only_values_an_audit_event_gives(kb: KnowledgeBase) -> None:
    """Audit alerts carry no process or container fields, so entries use only user, namespace, pod and node."""
    fillable = {"audit_user", "namespace", "pod", "node"}
    wrong = [
        (name, sorted(used - fillable))
        for name, entry in k8saudit_entries(kb).items()
        for text in [s.command for s in entry.investigation] + [m.snippet for m in entry.mitigations]
        if (used := placeholders_in(text)) - fillable
    ]
    assert wrong == []


@pytest.mark.cluster
async def test_manifests_pass_a_server_side_dry_run(kb: KnowledgeBase, cluster: Any, namespace: str) -> None:
    """Every k8saudit manifest, filled for a real namespace, is accepted by the API server's dry run."""
    check = ManifestDryRun(connect(str(cluster.kubeconfig)))
    manifests = [
        (name, m.title, fill_yaml(m.snippet, {"namespace": namespace}))
        for name, entry in k8saudit_entries(kb).items()
        for m in entry.mitigations
        if m.kind == "kubernetes-manifest"
    ]
    assert len(manifests) >= 8
    rejected = []
    for name, title, text in manifests:
        assert text is not None, (name, title)
        result = await check(text)
        if not result.ok or not any(c.startswith("server-side dry run") for c in result.checks):
            rejected.append((name, title, result.errors, result.checks))
    assert rejected == []
