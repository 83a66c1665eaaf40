"""What the knowledge base says is checkable, safe to run and true: signals, investigation, exceptions.

Structure (schema, placeholders, snippet syntax) is checked in tests/test_render.py; this module checks
content rules a schema cannot express: signals name fields the alert really carries, identity causes pin
who acts, investigation runs from outside the suspect container and never repeats the flagged action,
exceptions pin only values that will repeat, and no entry claims Kubernetes events show exec sessions.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from falco_reporter.knowledge.base import load
from falco_reporter.knowledge.model import DERIVED_FIELDS, KnowledgeEntry

# Container and Kubernetes metadata Falco appends to every syscall rule's output.
APPENDED_FIELDS = frozenset(
    {
        "container.id",
        "container.name",
        "container.image.repository",
        "container.image.tag",
        "k8s.ns.name",
        "k8s.pod.name",
    }
)
# Fields whose values never repeat (or repeat by chance): an exception on them matches nothing later.
VOLATILE_FIELD = re.compile(
    r"^(proc\.(pid|vpid|ppid|tid|start_ts|pcmdline)|thread\.(tid|vtid)|evt\.(time.*|rawtime.*|num|datetime.*)"
    r"|container\.start_ts|fd\.(?!sport$)\w*port)$"
)
# Rules that fire when a file holding secrets is opened, with the files they watch. An investigation
# command that opens one of these again re-triggers the rule (and repeats what the attacker did).
READ_RULES: dict[str, tuple[str, ...]] = {
    "Read sensitive file untrusted": ("/etc/shadow", "/etc/sudoers", "/etc/pam", "/etc/security/pwquality"),
    "Read sensitive file trusted after startup": (
        "/etc/shadow",
        "/etc/sudoers",
        "/etc/pam",
        "/etc/security/pwquality",
    ),
    "Directory traversal monitored file read": ("/etc/shadow", "/etc/sudoers", "/etc/pam", "/etc/passwd"),
    "Find AWS Credentials": (".aws/credentials", ".aws/config"),
    "Search Private Keys or Passwords": ("id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", ".pem", ".key"),
    "Read ssh information": ("/.ssh/",),
    "Read Shell Configuration File": (".bashrc", ".bash_profile", ".profile", ".zshrc", "/etc/profile"),
    "Read environment variable from /proc files": ("/environ",),
    "Container Access to Host Sensitive Paths": ("/etc/shadow", "/etc/sudoers", "/root/.ssh"),
}
# Programs that look at a file's metadata or name without opening it for reading.
METADATA_ONLY = frozenset({"stat", "ls", "find", "getfacl", "lsattr", "readlink", "realpath", "file"})
EXEC_SESSIONS_IN_EVENTS = re.compile(
    r"\bevents?\b(?![^.]*\b(not|never|no)\b)[^.]*\b(show|shows|list|lists|record|records|reveal|reveals|"
    r"contain|contains|include|includes)\b[^.]*\b(exec|attach)\b",
    re.IGNORECASE,
)


def entries() -> list[KnowledgeEntry]:
    return sorted(load().entries.values(), key=lambda e: e.rule)


@pytest.fixture(scope="module")
def output_fields() -> dict[str, frozenset[str]]:
    """Each upstream rule's output fields, from the rules index (FALCO_UPSTREAM_DIR is required)."""
    directory = os.environ.get("FALCO_UPSTREAM_DIR")
    if not directory:
        pytest.fail(
            "FALCO_UPSTREAM_DIR is not set: point it at the upstream Falco snapshot holding rules-index.json "
            "(CI sets FALCO_UPSTREAM_DIR=../shared/falco)"
        )
    index: list[dict[str, Any]] = [
        rule
        for name in ("rules-index.json", "rules-index-k8saudit.json")
        for rule in json.loads((Path(directory) / name).read_text(encoding="utf-8"))
    ]
    return {r["rule"]: frozenset(r["output_fields"]) for r in index}


def texts(entry: KnowledgeEntry) -> list[str]:
    """Every prose string of an entry (titles, descriptions, causes)."""
    out = [entry.detects, entry.why_it_matters]
    out += [t for c in entry.benign_causes for t in (c.cause, c.how_to_recognise)]
    out += [s.title for s in entry.investigation]
    out += [t for m in entry.mitigations for t in (m.title, m.description)]
    return out


@pytest.mark.parametrize("entry", entries(), ids=lambda e: e.rule)
def test_no_entry_claims_events_show_exec_sessions(entry: KnowledgeEntry) -> None:
    """Exec sessions are only in the API audit log: no entry says Kubernetes events show them."""
    claims = [t for t in texts(entry) if EXEC_SESSIONS_IN_EVENTS.search(t)]
    claims += [
        s.title
        for s in entry.investigation
        if re.search(r"kubectl (get )?events\b", s.command) and re.search(r"\b(exec|attach)", s.title, re.I)
    ]
    assert claims == []


def test_exec_claim_check_catches_the_old_wording() -> None:
    """The claim detector flags the wording entries used before and accepts the corrected one."""
    assert EXEC_SESSIONS_IN_EVENTS.search("Kubernetes events show recent exec sessions for the pod")
    assert not EXEC_SESSIONS_IN_EVENTS.search(
        "Kubernetes events do not record exec sessions; read the audit log"
    )


@pytest.mark.parametrize("entry", entries(), ids=lambda e: e.rule)
def test_investigation_runs_outside_the_container_first(entry: KnowledgeEntry) -> None:
    """At most one step runs inside the suspect container, and never the first one."""
    inside = [i for i, s in enumerate(entry.investigation) if s.runs == "container"]
    assert len(inside) <= 1 and 0 not in inside, [s.command for s in entry.investigation]


@pytest.mark.parametrize("entry", entries(), ids=lambda e: e.rule)
def test_no_in_container_exec_outside_container_steps(entry: KnowledgeEntry) -> None:
    """A step that execs into the pod says so (runs: container); others do not hide an exec."""
    hidden = [
        s.command
        for s in entry.investigation
        if s.runs != "container" and re.search(r"kubectl exec|kubectl cp|crictl exec", s.command)
    ]
    assert hidden == []


@pytest.mark.parametrize("entry", entries(), ids=lambda e: e.rule)
def test_signal_fields_are_carried_by_the_alert(
    entry: KnowledgeEntry, output_fields: dict[str, frozenset[str]]
) -> None:
    """Every signal names a field of the rule's upstream output, appended container/k8s metadata or a derived name."""
    known = output_fields[entry.rule] | APPENDED_FIELDS | DERIVED_FIELDS
    unknown = [s.field for c in entry.benign_causes for s in c.signals if s.field not in known]
    assert unknown == []


def pins_identity(cause: Any) -> bool:
    """True when the signals name an exact image repository, a namespace plus the workload, or (audit
    events) the exact authenticated user."""
    exact = {s.field for s in cause.signals if s.op in ("equals", "in")}
    image = bool(exact & {"image.repository", "container.image.repository"})
    user = "ka.user.name" in exact
    return image or user or ("k8s.ns.name" in exact and bool(exact & {"workload.name", "k8s.pod.name"}))


@pytest.mark.parametrize("entry", entries(), ids=lambda e: e.rule)
def test_identity_causes_pin_who_acts(entry: KnowledgeEntry) -> None:
    """A cause marked identity has an exact image-repository signal, or namespace and workload signals."""
    loose = [c.cause for c in entry.benign_causes if c.identity and not pins_identity(c)]
    assert loose == []


def test_identity_check_rejects_a_process_name() -> None:
    """A process name alone is not an identity (the check itself can fail)."""
    from falco_reporter.knowledge.model import BenignCause, Signal

    by_name = BenignCause(
        cause="x",
        how_to_recognise="y",
        signals=[Signal(field="proc.name", op="equals", values=["falco"])],
        identity=True,
    )
    assert not pins_identity(by_name)


@pytest.mark.parametrize("entry", entries(), ids=lambda e: e.rule)
def test_exception_templates_pin_only_stable_fields(entry: KnowledgeEntry) -> None:
    """Exceptions never pin pids, client ports or times (values that do not repeat)."""
    assert [f for f in entry.exception.fields if VOLATILE_FIELD.match(f)] == []


def programs_and_args(command: str) -> list[tuple[str, list[str]]]:
    """Each program a command runs, with its arguments (wrappers such as kubectl debug ... -- are unwrapped)."""
    words = shlex.split(command)
    out: list[tuple[str, list[str]]] = []
    start = 0
    for i, w in enumerate(words):
        if w == "--" or (i > start and words[i - 1] in ("chroot",) and w.startswith("/")):
            start = i + 1
    wrappers = {"chroot": 1, "nsenter": 0, "sudo": 0, "timeout": 1}
    rest = words[start:]
    while rest and rest[0] in wrappers:
        rest = [w for w in rest[1 + wrappers[rest[0]] :] if not w.startswith("-")] or rest[1:]
    if rest:
        out.append((os.path.basename(rest[0]), rest[1:]))
    return out


@pytest.mark.parametrize("entry", [e for e in entries() if e.rule in READ_RULES], ids=lambda e: e.rule)
def test_investigation_of_a_read_rule_does_not_read_the_flagged_files(entry: KnowledgeEntry) -> None:
    """For rules about reading secrets, no command opens a watched file again (metadata tools are fine)."""
    watched = READ_RULES[entry.rule]
    rereads = [
        s.command
        for s in entry.investigation
        for program, args in programs_and_args(s.command)
        if program not in METADATA_ONLY and any(w in a for a in args for w in watched)
    ]
    assert rereads == []


def test_read_rules_exist() -> None:
    """Every rule the re-read check names is in the knowledge base (so the check is not vacuous)."""
    assert [r for r in READ_RULES if r not in load().entries] == []


def test_reread_check_catches_cat_of_the_file() -> None:
    """The re-read check sees through kubectl debug and chroot to the program that opens the file."""
    cmd = "kubectl debug node/n -it --image=busybox -- chroot /host cat /proc/1/root/etc/shadow"
    assert programs_and_args(cmd) == [("cat", ["/proc/1/root/etc/shadow"])]


def test_most_entries_have_checkable_benign_causes() -> None:
    """At least 60 of the syscall entries recognise a benign cause from the alert's fields."""
    syscall = [e for e in load().entries.values() if e.source == "syscall"]
    with_signals = [e.rule for e in syscall if any(c.signals for c in e.benign_causes)]
    assert len(syscall) >= 97
    assert len(with_signals) >= 60, f"{len(with_signals)} of {len(syscall)}"


@pytest.mark.parametrize("entry", entries(), ids=lambda e: e.rule)
def test_no_role_is_offered_as_a_restriction(entry: KnowledgeEntry) -> None:
    """RBAC only adds rights: a Role or ClusterRole alone is never offered to restrict or limit access."""
    only_roles = [
        m.title
        for m in entry.mitigations
        if m.kind == "kubernetes-manifest"
        and re.search(r"\b(restrict|limit)", m.title, re.IGNORECASE)
        and set(re.findall(r"^kind: (\S+)", m.snippet, re.MULTILINE)) <= {"Role", "ClusterRole"}
        and re.search(r"^kind: (Cluster)?Role$", m.snippet, re.MULTILINE)
    ]
    assert only_roles == []
