"""The real chain with a real small model: Qwen2.5-Coder-0.5B-Instruct (GGUF) in process via ChatLlamaCpp.

Setup (``make test`` does it): ``CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install llama-cpp-python`` and
``hack/llm-model.sh``. A missing piece FAILS this test with the setup command, it never skips.
"""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path
from typing import Any

import pytest

from falco_reporter.knowledge.base import load
from falco_reporter.kube.client import connect
from falco_reporter.kube.objects import KubeObjects
from falco_reporter.kube.resources import CustomResources
from falco_reporter.models.falco import normalise, object_name, parse_alert_body
from falco_reporter.models.report import AlertReportSpec
from falco_reporter.models.resources import ALERTREPORTS, FALCOALERTS
from falco_reporter.receiver.ingest import alert_object
from falco_reporter.reconciler.service import AlertReconciler
from falco_reporter.reporting.chain import PROMPT_VERSION, LLMWriter
from falco_reporter.reporting.llm_config import LLMConfig, default_model_path
from falco_reporter.reporting.service import ReportService
from tests.samples import REAL_DIR

SETUP = (
    "run the LLM test setup: CMAKE_ARGS=\"-DGGML_NATIVE=OFF\" .venv/bin/pip install 'llama-cpp-python>=0.3' "
    "&& bash hack/llm-model.sh (or `make test`, which does both)"
)
SAMPLE = "syscall_terminal_shell_in_container_0_43.json"


def model_path() -> Path:
    configured = os.environ.get("FALCO_REPORTER_LLM_MODEL_PATH")
    return Path(configured) if configured else default_model_path()


def local_model() -> Path:
    """The model file the suite assembles, with llama_cpp importable; a missing piece FAILS with the setup command."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.fail(f"llama_cpp is not importable; {SETUP}")
    path = model_path()
    if not path.is_file():
        pytest.fail(f"model file {path} is missing; {SETUP}")
    return path


@pytest.mark.slow
@pytest.mark.cluster
async def test_real_small_model_writes_a_valid_report_or_a_reasoned_fallback(
    capsys: pytest.CaptureFixture[str], cluster: Any, namespace: str
) -> None:
    """A real alert through ChatLlamaCpp and the operator's code path stores a schema-valid AlertReport on the API server."""
    path = local_model()
    kb = load()
    started = time.monotonic()
    config = LLMConfig(provider="llamacpp", model_path=str(path), timeout_s=240.0, max_tokens=1500)
    writer = LLMWriter(config, kb)
    loaded = time.monotonic()
    service = ReportService(kb, writer, timeout=600.0)
    alert = normalise(parse_alert_body((REAL_DIR / SAMPLE).read_bytes()))
    kube = connect(str(cluster.kubeconfig))
    alerts, reports = CustomResources(kube, FALCOALERTS), CustomResources(kube, ALERTREPORTS)
    name = object_name(alert)
    created = await alerts.create(namespace, alert_object(namespace, name, alert))
    reconciler = AlertReconciler(alerts, reports, KubeObjects(kube), service)
    outcome = await reconciler.reconcile(
        namespace=namespace,
        name=name,
        uid=created["metadata"]["uid"],
        generation=1,
        spec=created["spec"],
        status={},
    )
    finished = time.monotonic()
    assert outcome.created
    # What the API server stored (validated there against the CRD schema) is what we check.
    stored = await reports.get(namespace, name)
    spec = AlertReportSpec.model_validate(stored["spec"])
    assert stored["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]
    assert spec.rule == "Terminal shell in container"
    # The deterministic plan stays whoever writes the text: a suspicious shell is confirmed first,
    # and its exact exception comes last among the curated steps.
    assert spec.mitigations[0].title.startswith("Confirm or rule out")
    assert "falco-exception" in [m.kind for m in spec.mitigations]
    assert all(kb.allowed_url(r.url) for r in spec.references)
    if spec.writer.backend == "llamacpp":
        assert spec.writer.fallback_reason == ""
        assert spec.writer.model == "qwen2.5-coder-0.5b-instruct-q4_k_m"
        assert spec.writer.prompt_version == PROMPT_VERSION
        assert spec.writer.tokens > 0
        assert writer.structured is True
        assert writer.model_calls in (1, 2)
        assert spec.summary.strip()
        # The accepted answer passed the sense checks; every earlier one was rejected with reasons.
        review = writer.last_review
        assert review is not None and review.attempts[-1].problems == []
        assert all(a.problems for a in review.attempts[:-1])
        assert [(m.tactic, m.technique) for m in spec.mitre] == [("Execution", "T1059")]
    else:
        assert spec.writer.backend == "builtin"
        assert spec.writer.fallback_reason.startswith(("llamacpp answer rejected", "llamacpp model call")), (
            spec.writer.fallback_reason
        )
    with capsys.disabled():
        print(
            f"\n[llm-real] load {loaded - started:.1f}s, write {finished - loaded:.1f}s, "
            f"backend={spec.writer.backend}, calls={writer.model_calls}, tokens={spec.writer.tokens}"
            + (f", fallback={spec.writer.fallback_reason!r}" if spec.writer.fallback_reason else "")
        )
