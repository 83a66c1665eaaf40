"""Wire the layers together and run the operator and/or the receiver in one event loop."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import kopf

from falco_reporter.exporting.files import ExportResult
from falco_reporter.exporting.service import export, run_continuous
from falco_reporter.knowledge.base import KnowledgeBase
from falco_reporter.knowledge.base import load as load_knowledge
from falco_reporter.kube.client import connect
from falco_reporter.kube.dryrun import ManifestDryRun
from falco_reporter.kube.objects import KubeObjects
from falco_reporter.kube.resources import CustomResources
from falco_reporter.models.resources import (
    ALERTREPORTS,
    FALCOALERTS,
    LABEL_FALSE_POSITIVE,
    accepted_false_positive,
)
from falco_reporter.receiver.http import (
    ReadyProbe,
    ReceiverSettings,
    build_health_app,
    cached_probe,
    journal_probe,
    serve,
)
from falco_reporter.receiver.ingest import IngestConfig, IngestService
from falco_reporter.receiver.journal import Journal, JournalConfig
from falco_reporter.receiver.lifecycle import run_receiver as run_receiver_service
from falco_reporter.reconciler import persistence
from falco_reporter.reconciler.handlers import register
from falco_reporter.reconciler.incidents import IncidentTracker
from falco_reporter.reconciler.review import ReviewReconciler
from falco_reporter.reconciler.service import AlertReconciler
from falco_reporter.reporting.incidents import DEFAULT_WINDOW as DEFAULT_INCIDENT_WINDOW
from falco_reporter.reporting.llm_config import LLMConfig
from falco_reporter.reporting.service import ManifestCheck, ReportService
from falco_reporter.reporting.suppression import merge_rules_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSettings:
    kubeconfig: str | None = None
    namespaces: tuple[str, ...] = ()
    fallback_namespace: str = "falco-reporter"
    peering: str = ""
    liveness: str = ""
    receiver: ReceiverSettings | None = field(default_factory=ReceiverSettings)
    flush_interval: float = 2.0
    export_dir: str = ""
    export_interval: float = 30.0
    llm: LLMConfig = field(default_factory=LLMConfig)
    #: host:port of a plain-HTTP server with /healthz, /readyz and /metrics only ("" = none).
    health_bind: str = ""
    #: kopf peering: of two live operators the higher priority works, the other pauses (equal
    #: priorities pause both); a peer whose record is older than its lifetime counts as dead.
    peering_priority: int = 0
    peering_lifetime: int = 60
    #: kopf workers (objects handled concurrently); bounds memory with a large backlog.
    max_workers: int = 128
    #: Seconds: one subject's alerts within one window form an incident (0: no correlation).
    incident_window: int = DEFAULT_INCIDENT_WINDOW
    #: The receiver's durable journal (None: store before answering, as without one).
    journal: JournalConfig | None = None


def report_service(
    kb: KnowledgeBase, llm: LLMConfig, manifest_check: ManifestCheck | None = None
) -> ReportService:
    """The built-in writer only, or the LLM writer with the built-in one as its fallback."""
    if not llm.enabled:
        return ReportService(kb, manifest_check=manifest_check)
    from falco_reporter.reporting.chain import LLMWriter  # imports LangChain only when configured

    log.info("report writer: %s (built-in writer as fallback)", llm.describe())
    # Up to two model calls per report (one retry), plus waiting behind other reports.
    return ReportService(
        kb,
        LLMWriter(llm, kb),
        timeout=2 * llm.timeout_s + 30,
        manifest_check=manifest_check,
        redact=llm.redact,
    )


def _ready_probe(objects: KubeObjects, settings: RunSettings) -> ReadyProbe:
    return cached_probe(lambda: objects.namespace_exists(settings.fallback_namespace) or True)


def _ingest(settings: RunSettings) -> tuple[IngestService, ReadyProbe]:
    kube = connect(settings.kubeconfig)
    objects = KubeObjects(kube, namespaces=settings.namespaces)
    service = IngestService(
        CustomResources(kube, FALCOALERTS),
        objects,
        IngestConfig(
            fallback_namespace=settings.fallback_namespace,
            flush_interval=settings.flush_interval,
            namespaces=frozenset(settings.namespaces),
        ),
    )
    return service, _ready_probe(objects, settings)


def _health_task(settings: RunSettings, stop: asyncio.Event, probe: ReadyProbe | None) -> asyncio.Task[None]:
    """The plain-HTTP probe and metrics server of ``--health-bind``."""
    host, _, port = settings.health_bind.rpartition(":")
    if probe is None:
        probe = _ready_probe(KubeObjects(connect(settings.kubeconfig), settings.namespaces), settings)
    where = ReceiverSettings(host=host or "0.0.0.0", port=int(port))  # noqa: S104 - probes come from the kubelet
    metrics_token = settings.receiver.metrics_token_file if settings.receiver else ""
    return asyncio.create_task(
        serve(build_health_app(probe, metrics_token_file=metrics_token), where, stop, name="health"),
        name="health-server",
    )


def _receiver_tasks(settings: RunSettings, stop: asyncio.Event) -> list[asyncio.Task[None]]:
    """The receiver (server, then its final flush or drain) and the health server, as tasks that
    end when ``stop`` is set."""
    probe: ReadyProbe | None = None
    tasks: list[asyncio.Task[None]] = []
    if settings.receiver is not None:
        service, probe = _ingest(settings)
        journal = Journal(settings.journal) if settings.journal is not None else None
        if journal is not None:
            probe = journal_probe(journal)
        tasks.append(
            asyncio.create_task(
                run_receiver_service(service, settings.receiver, probe, stop, journal=journal),
                name="receiver",
            )
        )
    if settings.health_bind:
        tasks.append(_health_task(settings, stop, probe))
    return tasks


async def run_receiver(settings: RunSettings) -> None:
    """The receiver alone (it scales as its own Deployment)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks = _receiver_tasks(settings, stop)
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.set()
        await asyncio.gather(*tasks)


def build_registry(settings: RunSettings, service: ReportService | None = None) -> kopf.OperatorRegistry:
    """The kopf registry with our handlers, login and persistence settings.

    ``service`` replaces the configured report service (tests inject one with a fake model).
    """
    kube = connect(settings.kubeconfig)
    alerts, reports, kb = (
        CustomResources(kube, FALCOALERTS),
        CustomResources(kube, ALERTREPORTS),
        load_knowledge(),
    )
    service = service or report_service(kb, settings.llm, ManifestDryRun(kube))
    window = settings.incident_window
    reconciler = AlertReconciler(
        alerts,
        reports,
        KubeObjects(kube, namespaces=settings.namespaces),
        service,
        IncidentTracker(reports, window=window, narrator=service) if window > 0 else None,
    )
    registry = kopf.OperatorRegistry()
    register(registry, reconciler, ReviewReconciler(alerts, reports, kb))
    run_settings = settings

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        persistence.configure(settings, max_workers=run_settings.max_workers)
        settings.posting.level = logging.WARNING
        settings.watching.server_timeout = 300
        settings.networking.request_timeout = 30
        settings.peering.lifetime = run_settings.peering_lifetime

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        if os.environ.get("KUBERNETES_SERVICE_HOST") and not settings.kubeconfig:
            return kopf.login_with_service_account(**kwargs)
        return kopf.login_with_kubeconfig(**kwargs)

    return registry


async def run_operator(
    settings: RunSettings, *, service: ReportService | None = None, stop_flag: asyncio.Event | None = None
) -> None:
    """The kopf operator, with the receiver embedded in the same loop unless disabled.

    ``stop_flag`` stops it from outside (embedding, tests); signals stop it too.
    """
    if settings.kubeconfig:
        os.environ["KUBECONFIG"] = settings.kubeconfig
    registry = build_registry(settings, service)
    stop = asyncio.Event()
    # kopf cancels every task created after it starts when it stops; ours must exist before it
    # does, so the receiver can finish in-flight requests and flush repeat counts on shutdown.
    tasks = _receiver_tasks(settings, stop)
    if settings.export_dir:
        reports = CustomResources(connect(settings.kubeconfig), ALERTREPORTS)
        namespace = settings.namespaces[0] if len(settings.namespaces) == 1 else None
        tasks.append(
            asyncio.create_task(
                run_continuous(
                    reports,
                    Path(settings.export_dir),
                    namespace=namespace,
                    interval=settings.export_interval,
                    stop=stop,
                )
            )
        )
    try:
        await kopf.operator(
            registry=registry,
            clusterwide=not settings.namespaces,
            namespaces=settings.namespaces,
            standalone=not settings.peering,
            peering_name=settings.peering or None,
            priority=settings.peering_priority,
            liveness_endpoint=settings.liveness or None,
            stop_flag=stop_flag,
        )
    finally:
        stop.set()
        await asyncio.gather(*tasks)


def export_reports(
    kubeconfig: str | None,
    directory: Path,
    *,
    namespace: str | None,
    since: timedelta | None,
    formats: frozenset[str],
    progress: Callable[[str], None] | None,
) -> ExportResult:
    """One export of AlertReports into ``directory``."""
    reports = CustomResources(connect(kubeconfig), ALERTREPORTS)
    return export(reports, directory, namespace=namespace, since=since, formats=formats, progress=progress)


def suppressions_file(kubeconfig: str | None, *, namespace: str | None) -> str:
    """All accepted false positives as one Falco rules file."""
    reports = CustomResources(connect(kubeconfig), ALERTREPORTS)
    accepted = reports.list(namespace, label_selector=f"{LABEL_FALSE_POSITIVE}=true")
    snippets = [
        r["status"]["suppression"]["exception"]
        for r in sorted(accepted, key=lambda r: (r["metadata"]["namespace"], r["metadata"]["name"]))
        if accepted_false_positive(r) and r["status"]["suppression"].get("exception")
    ]
    return merge_rules_file(snippets)
