"""GitOps review of reports on the real control plane: export, review by re-applying YAML, suppressions.

Each test runs its own operator (the real ``falco-reporter run`` process, or the operator in-process
with a fake chat model) restricted to the test's namespace, so no other operator handles its objects.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from langchain_core.language_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatResult

from falco_reporter import runtime
from falco_reporter.cli import build_parser
from falco_reporter.exporting.files import MANIFEST
from falco_reporter.knowledge.base import load
from falco_reporter.receiver.http import ReceiverSettings
from falco_reporter.reporting.chain import LLMWriter
from falco_reporter.reporting.llm_config import LLMConfig
from falco_reporter.reporting.service import ReportService
from falco_reporter.validation import upstream_names, validate_rules_file, validate_snippet
from tests.objects import GROUP, VERSION, condition, custom, get, listed, wait_report
from tests.operator_proc import FalcoReporterProcess, free_port, post, probe, wait_for

pytestmark = pytest.mark.cluster
ROOT = Path(__file__).resolve().parent.parent
FP_LABEL = "falcoreporter.io/false-positive"
SERVER_FIELDS = (
    "managedFields",
    "resourceVersion",
    "uid",
    "ownerReferences",
    "creationTimestamp",
    "generation",
)


# --- helpers -------------------------------------------------------------------------------------


def patch_review(kube_api: client.ApiClient, ns: str, name: str, review: dict[str, str]) -> None:
    custom(kube_api).patch_namespaced_custom_object(
        GROUP, VERSION, ns, "alertreports", name, {"spec": {"review": review}}
    )


def alert(
    namespace: str, pod: str, rule: str = "Terminal shell in container", **fields: Any
) -> dict[str, Any]:
    """A Falco alert as Falcosidekick's webhook sends it, in ``namespace``."""
    output_fields = {
        "k8s.ns.name": namespace,
        "k8s.pod.name": pod,
        "container.id": "4b1f0a9c2d3e",
        "container.name": "web",
        "container.image.repository": "docker.io/library/busybox",
        "container.image.tag": "1.36",
        "proc.name": "bash",
        "proc.exepath": "/bin/bash",
        "proc.cmdline": "bash",
        "proc.pname": "runc",
        "user.name": "root",
        **fields,
    }
    return {
        "uuid": "0d1f6c5e-2b7a-4c3e-9f10-6a2b3c4d5e6f",
        "rule": rule,
        "priority": "Notice",
        "time": "2026-11-20T09:12:44.120345678Z",
        "output": f"{rule} (user=root process={output_fields['proc.name']} pod={pod})",
        "source": "syscall",
        "hostname": "worker-1",
        "tags": ["container", "maturity_stable"],
        "output_fields": output_fields,
    }


def _file_alert(namespace: str, pod: str, rule: str, tool: str, path: str) -> dict[str, Any]:
    """``tool path`` run in ``pod``, firing the file rule ``rule``."""
    fields = {
        "proc.name": tool,
        "proc.exepath": f"/bin/{tool}",
        "proc.cmdline": f"{tool} {path}",
        "fd.name": path,
    }
    return alert(namespace, pod, rule, **fields)


def sensitive_read(namespace: str, pod: str) -> dict[str, Any]:
    return _file_alert(namespace, pod, "Read sensitive file untrusted", "cat", "/etc/shadow")


def write_below_etc(namespace: str, pod: str) -> dict[str, Any]:
    return _file_alert(namespace, pod, "Write below etc", "touch", "/etc/x")


def store(url: str, body: dict[str, Any]) -> tuple[str, str]:
    """Post one alert; return the FalcoAlert's (namespace, name)."""
    status, answer = post(url, body)
    assert status == 202, answer
    return answer["namespace"], answer["name"]


def report_count(kube_api: client.ApiClient, ns: str, name: str) -> int:
    report = get(kube_api, "alertreports", ns, name) or {}
    return int(report.get("spec", {}).get("occurrences", {}).get("count", 0))


def wait_suppression(kube_api: client.ApiClient, ns: str, name: str, present: bool = True) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        report = get(kube_api, "alertreports", ns, name)
        accepted = bool((report or {}).get("status", {}).get("suppression"))
        return report if report is not None and accepted == present else None

    report: dict[str, Any] = wait_for(done, timeout=30, what=f"suppression {'set' if present else 'gone'}")
    return report


def cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    """The real ``falco-reporter`` command, with stdout and stderr piped."""
    return subprocess.run(
        [sys.executable, "-m", "falco_reporter.cli", *args],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


def export(kubeconfig: Path, directory: Path, namespace: str) -> subprocess.CompletedProcess[bytes]:
    done = cli("export", "--dir", str(directory), "--namespace", namespace, "--kubeconfig", str(kubeconfig))
    assert done.returncode == 0, done.stderr.decode()
    return done


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``directory`` (dotfiles included): relative path -> (bytes, mtime in ns)."""
    return {
        str(p.relative_to(directory)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(directory.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(directory).parts
    }


def git(repo: Path, *args: str) -> str:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(repo),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "reviewer",
        "GIT_AUTHOR_EMAIL": "reviewer@example.com",
        "GIT_COMMITTER_NAME": "reviewer",
        "GIT_COMMITTER_EMAIL": "reviewer@example.com",
    }
    done = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def kubectl(cluster: Any, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(cluster.kubectl), "--kubeconfig", str(cluster.kubeconfig), *args],
        capture_output=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def operator(cluster: Any, namespace: str, tmp_path: Path) -> Iterator[FalcoReporterProcess]:
    """The real ``falco-reporter run`` process, watching only the test's namespace."""
    proc = FalcoReporterProcess(str(cluster.kubeconfig), extra=["--namespace", namespace], log_dir=tmp_path)
    with proc:
        yield proc


# --- export ----------------------------------------------------------------------------------------


def expected_tree(reports: list[dict[str, Any]]) -> set[str]:
    """The files an export of ``reports`` must write, derived from the live objects."""
    files = {"README.md", MANIFEST}
    for r in reports:
        base = f"{r['metadata']['namespace']}/{r['metadata']['name']}"
        files |= {f"{base}.md", f"{base}.yaml"}
        manifests = [
            m for m in r["spec"]["mitigations"] if m["kind"] == "kubernetes-manifest" and m.get("snippet")
        ]
        files |= {f"{base}.remediation-{i}.yaml" for i in range(1, len(manifests) + 1)}
    return files


def test_export_writes_the_exact_tree_and_a_second_export_changes_nothing(
    operator: FalcoReporterProcess, cluster: Any, kube_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    """Exporting N reports gives exactly the expected files and clean YAML; re-exporting rewrites nothing and git stays clean."""
    names = [
        store(operator.url, body)[1]
        for body in (
            alert(namespace, "web-a"),
            sensitive_read(namespace, "web-b"),
            write_below_etc(namespace, "web-c"),
        )
    ]
    for name in names:
        wait_report(kube_api, namespace, name)
    reports = sorted(listed(kube_api, "alertreports", namespace), key=lambda r: r["metadata"]["name"])
    assert sorted(r["metadata"]["name"] for r in reports) == sorted(names)

    repo = tmp_path / "review"
    repo.mkdir()
    git(repo, "init", "-q")
    out = repo / "reports"
    first = export(cluster.kubeconfig, out, namespace)
    assert (first.stdout, first.stderr) == (b"", b"")  # silent when piped

    tree = snapshot(out)
    expected = expected_tree(reports)
    assert any(".remediation-" in f for f in expected)  # a kubernetes-manifest mitigation is exported
    assert set(tree) == expected
    assert tree[MANIFEST][0].decode().splitlines() == sorted(expected - {MANIFEST})
    index = tree["README.md"][0].decode()
    assert f"{len(reports)} reports" in index
    for r in reports:
        base = f"{namespace}/{r['metadata']['name']}"
        assert f"[{base}]({base}.md)" in index
        assert tree[f"{base}.md"][0].decode() == r["spec"]["markdown"]
        manifest = yaml.safe_load(tree[f"{base}.yaml"][0])
        assert set(manifest) == {"apiVersion", "kind", "metadata", "spec"}
        assert [k for k in SERVER_FIELDS if k in manifest["metadata"]] == []
        assert manifest["metadata"]["labels"] == r["metadata"]["labels"]
        assert manifest["spec"] == r["spec"]
        kinds = [m for m in r["spec"]["mitigations"] if m["kind"] == "kubernetes-manifest"]
        for i, m in enumerate(kinds, 1):
            remediation = tree[f"{base}.remediation-{i}.yaml"][0].decode()
            assert yaml.safe_load(remediation) == yaml.safe_load(m["snippet"])
            assert validate_snippet("kubernetes-manifest", "yaml", remediation).ok

    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "export 1")
    second = export(cluster.kubeconfig, out, namespace)
    assert (second.stdout, second.stderr) == (b"", b"")
    assert snapshot(out) == tree  # same bytes, same mtimes: nothing rewritten
    assert git(repo, "status", "--porcelain") == ""


def test_run_export_dir_keeps_a_report_in_the_directory(
    cluster: Any, kube_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    """`falco-reporter run --export-dir DIR` writes a stored alert's report as Markdown and YAML into DIR."""
    out = tmp_path / "exported"
    extra = ["--namespace", namespace, "--export-dir", str(out), "--export-interval", "0.5"]
    with FalcoReporterProcess(str(cluster.kubeconfig), extra=extra, log_dir=tmp_path) as proc:
        _, name = store(proc.url, alert(namespace, "web-exported"))
        wait_report(kube_api, namespace, name)
        markdown = out / namespace / f"{name}.md"
        wait_for(
            lambda: markdown.exists() and (out / "README.md").exists(), timeout=60, what="exported files"
        )
    exported = yaml.safe_load((out / namespace / f"{name}.yaml").read_text())
    assert (exported["kind"], exported["metadata"]["name"]) == ("AlertReport", name)
    assert name in (out / "README.md").read_text()


def test_export_help_names_every_flag() -> None:
    """`falco-reporter export --help` mentions every flag the export command accepts."""
    parser = build_parser()
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    flags = [
        s
        for a in subcommands.choices["export"]._actions
        for s in a.option_strings
        if s not in ("-h", "--help")
    ]
    assert {"--dir", "--namespace", "--all-namespaces", "--since", "--format", "--kubeconfig"} <= set(flags)
    done = cli("export", "--help")
    assert done.returncode == 0
    assert done.stderr == b""
    text = done.stdout.decode()
    assert [f for f in flags if f not in text] == []


# --- review by re-applying the exported YAML ---------------------------------------------------------


def test_reapplied_false_positive_review_is_accepted_without_regenerating(
    operator: FalcoReporterProcess, cluster: Any, kube_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    """kubectl apply of the exported YAML with review false-positive keeps the report, adds a valid exception, and makes it durable."""
    _, name = store(operator.url, alert(namespace, "web-reviewed"))
    _, control = store(operator.url, alert(namespace, "web-control"))
    before = wait_report(kube_api, namespace, name)
    wait_report(kube_api, namespace, control)
    assert before["metadata"]["ownerReferences"][0]["kind"] == "FalcoAlert"

    export(cluster.kubeconfig, tmp_path / "out", namespace)
    path = tmp_path / "out" / namespace / f"{name}.yaml"
    manifest = yaml.safe_load(path.read_text())
    manifest["spec"]["review"] = {
        "state": "false-positive",
        "by": "alice",
        "note": "our debug shell, expected",
    }
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    applied = kubectl(cluster, "apply", "-f", str(path))
    assert applied.returncode == 0, applied.stderr.decode()

    after = wait_suppression(kube_api, namespace, name)
    unchanged = {k: v for k, v in after["spec"].items() if k != "review"}
    assert unchanged == {k: v for k, v in before["spec"].items() if k != "review"}
    assert after["spec"]["review"] == manifest["spec"]["review"]
    suppression = after["status"]["suppression"]
    assert validate_snippet("falco-exception", "yaml", suppression["exception"]).ok
    assert validate_rules_file(suppression["exception"], upstream_names().rules).ok
    item = yaml.safe_load(suppression["exception"])[0]
    assert item["rule"] == "Terminal shell in container"
    assert item["exceptions"][0]["values"] == [[namespace, "docker.io/library/busybox", "bash"]]
    assert suppression["acceptedBy"] == "alice"
    assert suppression["fingerprint"] == get(kube_api, "falcoalerts", namespace, name)["spec"]["fingerprint"]
    accepted = condition(after, "FalsePositiveAccepted")
    assert (accepted["status"], accepted["reason"]) == ("True", "Accepted")
    assert after["metadata"]["labels"][FP_LABEL] == "true"
    assert not after["metadata"].get("ownerReferences")

    # Durable: deleting the alerts garbage-collects the control report but not the reviewed one.
    for alert_name in (name, control):
        custom(kube_api).delete_namespaced_custom_object(GROUP, VERSION, namespace, "falcoalerts", alert_name)
    wait_for(lambda: get(kube_api, "alertreports", namespace, control) is None, timeout=60, what="control GC")
    assert get(kube_api, "falcoalerts", namespace, name) is None
    kept = get(kube_api, "alertreports", namespace, name)
    assert kept is not None
    assert kept["status"]["suppression"] == suppression


def test_review_back_to_acknowledged_withdraws_the_suppression(
    operator: FalcoReporterProcess, cluster: Any, kube_api: client.ApiClient, namespace: str
) -> None:
    """Changing an accepted false positive back to acknowledged removes status.suppression and the label."""
    _, name = store(operator.url, alert(namespace, "web-undo"))
    wait_report(kube_api, namespace, name)
    patch_review(kube_api, namespace, name, {"state": "false-positive", "by": "alice", "note": "expected"})
    accepted = wait_suppression(kube_api, namespace, name)
    assert accepted["metadata"]["labels"][FP_LABEL] == "true"

    patched = kubectl(
        cluster,
        "patch",
        "alertreports.falcoreporter.io",
        name,
        "-n",
        namespace,
        "--type",
        "merge",
        "-p",
        json.dumps(
            {"spec": {"review": {"state": "acknowledged", "by": "bob", "note": "not benign after all"}}}
        ),
    )
    assert patched.returncode == 0, patched.stderr.decode()
    withdrawn = wait_suppression(kube_api, namespace, name, present=False)
    wait_for(
        lambda: (
            FP_LABEL
            not in (get(kube_api, "alertreports", namespace, name) or {})["metadata"].get("labels", {})
        ),
        what="false-positive label removed",
    )
    assert "suppression" not in withdrawn["status"]
    state = condition(get(kube_api, "alertreports", namespace, name), "FalsePositiveAccepted")
    assert (state["status"], state["reason"]) == ("False", "NotFalsePositive")
    assert withdrawn["spec"]["review"]["state"] == "acknowledged"
    listing = cli("suppressions", "-n", namespace, "--kubeconfig", str(cluster.kubeconfig))
    assert listing.stdout.decode() == "# No accepted false positives.\n"


# --- suppressions --------------------------------------------------------------------------------------


def test_suppressions_prints_one_merged_valid_rules_file(
    operator: FalcoReporterProcess, cluster: Any, kube_api: client.ApiClient, namespace: str
) -> None:
    """Accepted false positives of two rules (one of them on two pods) become one valid rules file, one item per rule."""
    bodies = [
        alert(namespace, "shell-a"),
        alert(namespace, "shell-b", **{"container.image.repository": "docker.io/library/alpine"}),
        sensitive_read(namespace, "reader"),
    ]
    names = [store(operator.url, b)[1] for b in bodies]
    for name in names:
        wait_report(kube_api, namespace, name)
        patch_review(
            kube_api, namespace, name, {"state": "false-positive", "by": "alice", "note": "expected"}
        )
    exceptions = [
        wait_suppression(kube_api, namespace, n)["status"]["suppression"]["exception"] for n in names
    ]

    everywhere = cli("suppressions", "-A", "--kubeconfig", str(cluster.kubeconfig))
    assert everywhere.returncode == 0, everywhere.stderr.decode()
    assert everywhere.stderr == b""
    text = everywhere.stdout.decode()
    assert validate_rules_file(text, known_rules=upstream_names().rules).ok
    (items,) = list(yaml.safe_load_all(text))  # ONE rules file: one YAML document
    rules = [i["rule"] for i in items]
    assert len(rules) == len(set(rules))  # one item per rule, whatever other namespaces hold
    by_rule = {i["rule"]: i for i in items}
    for snippet in exceptions:
        (own,) = yaml.safe_load(snippet)
        merged = {e["name"]: e for e in by_rule[own["rule"]]["exceptions"]}
        mine = own["exceptions"][0]
        assert merged[mine["name"]]["fields"] == mine["fields"]
        assert mine["values"][0] in merged[mine["name"]]["values"]

    ours = cli(
        "suppressions", "--namespace", namespace, "--kubeconfig", str(cluster.kubeconfig)
    ).stdout.decode()
    assert validate_rules_file(ours, known_rules=upstream_names().rules).ok
    items = yaml.safe_load(ours)
    assert sorted(i["rule"] for i in items) == [
        "Read sensitive file untrusted",
        "Terminal shell in container",
    ]
    shell = next(i for i in items if i["rule"] == "Terminal shell in container")
    assert len(shell["exceptions"]) == 1  # the two pods' exceptions are merged into one
    assert shell["exceptions"][0]["values"] == [
        [namespace, "docker.io/library/alpine", "bash"],
        [namespace, "docker.io/library/busybox", "bash"],
    ]
    assert all(i["override"] == {"exceptions": "append"} for i in items)


# --- a suppressed repeat makes no model call -----------------------------------------------------------


class CountingChatModel(FakeMessagesListChatModel):
    """A chat model answering with one canned tool call, counting how often it is called."""

    calls: int = 0

    def bind_tools(self, tools: Any, *, tool_choice: Any = None, **kwargs: Any) -> CountingChatModel:  # type: ignore[override]
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        self.calls += 1
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)

    async def _agenerate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        return self._generate(messages, stop=stop, **kwargs)


def llm_answer(pod: str) -> AIMessage:
    answer = {
        "summary": f"An interactive shell (bash) started in pod {pod} with a terminal attached.",
        "analysis": "**What happened.** `bash` ran as root in container web, started by runc, with a "
        "terminal attached: a person typed commands in the workload.",
        "severity": "medium",
        "verdict": "suspicious",
        "verdict_reason": "An interactive root shell in a workload container.",
        "false_positive_hints": ["An engineer ran kubectl exec -it to debug."],
        "mitigations": [],
        "references": [],
    }
    return AIMessage(content="", tool_calls=[{"name": "LLMAnswer", "args": answer, "id": "call-1"}])


class InProcessOperator:
    """``runtime.run_operator`` with an injected ReportService, in a thread with its own event loop."""

    def __init__(self, settings: runtime.RunSettings, service: ReportService) -> None:
        self.settings, self.service = settings, service
        self.url = f"http://127.0.0.1:{settings.receiver.port}" if settings.receiver else ""
        self.error: BaseException | None = None
        self._started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="in-process-operator", daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            self._started.set()
            await runtime.run_operator(self.settings, service=self.service, stop_flag=self._stop)

        try:
            asyncio.run(main())
        except BaseException as exc:
            self.error = exc

    def start(self) -> None:
        self._thread.start()
        assert self._started.wait(10)
        wait_for(
            lambda: self.error is not None or probe(f"{self.url}/healthz"),
            timeout=30,
            what="embedded receiver",
        )
        assert self.error is None, self.error

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)
        assert not self._thread.is_alive(), "the in-process operator did not stop"


def repost(url: str, body: dict[str, Any], kube_api: client.ApiClient, namespace: str, name: str) -> None:
    """Post an alert whose FalcoAlert was deleted, until the receiver stores it again.

    The receiver still counts the deleted object as known, so its first repeat is merged into a
    flush that finds nothing (see the xfail test below); the flush forgets it, the next post creates.
    """

    def stored() -> bool:
        status, answer = post(url, body)
        assert status == 202, answer
        assert (answer["namespace"], answer["name"]) == (namespace, name)  # same fingerprint, same name
        return get(kube_api, "falcoalerts", namespace, name) is not None

    wait_for(stored, timeout=20, interval=0.6, what="the repeated alert stored as a FalcoAlert")


def test_identical_alert_after_acceptance_is_suppressed_without_a_model_call(
    cluster: Any, kube_api: client.ApiClient, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a false positive is accepted and its alert deleted, the same alert is marked Suppressed and the LLM is not called."""
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))  # run_operator sets it; restored afterwards
    kb = load()
    model = CountingChatModel(responses=[llm_answer("web-llm")])
    # No answer cache: only the suppression may prevent the second model call.
    config = LLMConfig(provider="ollama", model="fake-model", timeout_s=10.0, cache_size=0)
    service = ReportService(kb, LLMWriter(config, kb, model=model), timeout=30)
    settings = runtime.RunSettings(
        kubeconfig=str(cluster.kubeconfig),
        namespaces=(namespace,),
        receiver=ReceiverSettings(host="127.0.0.1", port=free_port()),
        flush_interval=0.5,
    )
    op = InProcessOperator(settings, service)
    try:
        op.start()
        body = alert(namespace, "web-llm")
        _, name = store(op.url, body)
        report = wait_report(kube_api, namespace, name)
        assert report["spec"]["writer"]["backend"] == "ollama"
        assert (
            report["spec"]["summary"]
            == "An interactive shell (bash) started in pod web-llm with a terminal attached."
        )
        assert model.calls == 1

        review = {"state": "false-positive", "by": "alice", "note": "debug shell"}
        patch_review(kube_api, namespace, name, review)
        accepted = wait_suppression(kube_api, namespace, name)
        assert not accepted["metadata"].get("ownerReferences")
        custom(kube_api).delete_namespaced_custom_object(GROUP, VERSION, namespace, "falcoalerts", name)
        wait_for(lambda: get(kube_api, "falcoalerts", namespace, name) is None, what="alert deleted")

        again = copy.deepcopy(body)
        again["uuid"], again["time"] = (
            "7e0c2a11-5f3b-4d6e-8a9b-0c1d2e3f4a5b",
            "2026-11-21T10:00:00.000000000Z",
        )
        repost(op.url, again, kube_api, namespace, name)
        suppressed = wait_for(
            lambda: condition(get(kube_api, "falcoalerts", namespace, name), "Suppressed") or None,
            timeout=30,
            what="Suppressed condition on the new FalcoAlert",
        )
        assert (suppressed["status"], suppressed["reason"]) == ("True", "MatchesAcceptedFalsePositive")
        assert (
            condition(get(kube_api, "falcoalerts", namespace, name), "Reported")["reason"]
            == "AlreadyReported"
        )
        assert model.calls == 1
        kept = get(kube_api, "alertreports", namespace, name)
        assert kept is not None
        assert kept["spec"]["review"] == review
        assert kept["spec"]["summary"] == report["spec"]["summary"]
        assert kept["status"]["suppression"] == accepted["status"]["suppression"]
    finally:
        op.stop()
    assert op.error is None, op.error


def test_alert_repeated_after_its_falcoalert_was_deleted_is_stored_again(
    operator: FalcoReporterProcess, kube_api: client.ApiClient, namespace: str
) -> None:
    """An acknowledged repeat of an alert whose FalcoAlert was deleted is stored again at the next flush, not lost."""
    _, name = store(operator.url, alert(namespace, "web-deleted"))
    wait_report(kube_api, namespace, name)
    custom(kube_api).delete_namespaced_custom_object(GROUP, VERSION, namespace, "falcoalerts", name)
    wait_for(lambda: get(kube_api, "falcoalerts", namespace, name) is None, what="alert deleted")
    status, _ = post(operator.url, alert(namespace, "web-deleted"))
    assert status == 202
    # The repeat was acknowledged from memory (the key was known); the flush finds the object
    # gone and recreates it from the acknowledged alert.
    wait_for(lambda: get(kube_api, "falcoalerts", namespace, name), timeout=10, what="alert stored again")


def test_suppressed_repeat_never_moves_the_report_history_backwards(
    operator: FalcoReporterProcess, kube_api: client.ApiClient, namespace: str
) -> None:
    """A repeat of an accepted false positive after its FalcoAlert was deleted keeps the report's count and firstSeen."""
    body = alert(namespace, "web-history")
    for _ in range(4):
        _, name = store(operator.url, body)
    wait_for(lambda: report_count(kube_api, namespace, name) == 4, what="report count 4")
    patch_review(kube_api, namespace, name, {"state": "false-positive", "by": "alice", "note": "expected"})
    before = wait_suppression(kube_api, namespace, name)["spec"]["occurrences"]
    custom(kube_api).delete_namespaced_custom_object(GROUP, VERSION, namespace, "falcoalerts", name)
    wait_for(lambda: get(kube_api, "falcoalerts", namespace, name) is None, what="alert deleted")
    later = copy.deepcopy(body)
    later["time"] = "2026-11-21T10:00:00.000000000Z"
    repost(operator.url, later, kube_api, namespace, name)
    wait_for(
        lambda: condition(get(kube_api, "falcoalerts", namespace, name), "Suppressed") or None,
        what="Suppressed",
    )
    store(operator.url, later)  # one more repeat, so the new alert has occurrences to sync
    wait_for(
        lambda: (get(kube_api, "falcoalerts", namespace, name) or {}).get("status", {}).get("occurrences"),
        what="the new alert's repeats flushed",
    )
    time.sleep(2)  # give the occurrence sync its chance to (wrongly) copy the new count over
    after = get(kube_api, "alertreports", namespace, name)["spec"]["occurrences"]
    assert after["firstSeen"] == before["firstSeen"]
    assert after["count"] >= before["count"]
    # The later FalcoAlert's occurrences are counted as suppressed on the reviewed report.
    wait_for(
        lambda: (
            (get(kube_api, "alertreports", namespace, name).get("status") or {}).get(
                "suppressedOccurrences", 0
            )
            >= 1
        ),
        what="suppressedOccurrences",
    )
