"""Wire the layers together and run the operator and/or the receiver in one event loop."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import kopf

from falco_reporter.exporting.files import ExportResult
from falco_reporter.exporting.service import export, run_continuous
from falco_reporter.knowledge.base import KnowledgeBase
from falco_reporter.knowledge.base import load as load_knowledge
from falco_reporter.kube.client import Kube, connect
from falco_reporter.kube.dryrun import ManifestDryRun
from falco_reporter.kube.errors import KubeError
from falco_reporter.kube.objects import KubeObjects
from falco_reporter.kube.resources import CustomResources
from falco_reporter.models.resources import (
    ALERTREPORTS,
    FALCOALERTS,
    LABEL_FALSE_POSITIVE,
    accepted_false_positive,
    accepted_suppression,
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
from falco_reporter.receiver.secrets import FileSecret
from falco_reporter.reconciler import persistence
from falco_reporter.reconciler.handlers import register
from falco_reporter.reconciler.incidents import IncidentTracker
from falco_reporter.reconciler.review import ReviewReconciler
from falco_reporter.reconciler.service import AlertReconciler
from falco_reporter.reporting.llm_config import LLMConfig
from falco_reporter.reporting.service import ManifestCheck, ReportService
from falco_reporter.reporting.suppression import merge_rules_file
from falco_reporter.settings import DEFAULTS, Settings, host_port

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class RunSettings:
    """The pieces' configuration, built from :class:`Settings` (tests build it directly)."""

    kubeconfig: str | None = DEFAULTS.kubeconfig
    namespaces: tuple[str, ...] = DEFAULTS.namespaces
    fallback_namespace: str = DEFAULTS.fallback_namespace
    peering: str = DEFAULTS.peering
    liveness: str = DEFAULTS.liveness
    receiver: ReceiverSettings | None = field(default_factory=ReceiverSettings)
    flush_interval: float = DEFAULTS.flush_interval
    export_dir: str = DEFAULTS.export_dir
    export_interval: float = DEFAULTS.export_interval
    llm: LLMConfig = field(default_factory=LLMConfig)
    #: host:port of a plain-HTTP server with /healthz, /readyz and /metrics only ("" = none).
    health_bind: str = DEFAULTS.health_bind
    #: kopf peering: of two live operators the higher priority works, the other pauses (equal
    #: priorities pause both); a peer whose record is older than its lifetime counts as dead.
    peering_priority: int = DEFAULTS.peering_priority
    peering_lifetime: int = DEFAULTS.peering_lifetime
    #: kopf workers (objects handled concurrently); bounds memory with a large backlog.
    max_workers: int = DEFAULTS.max_workers
    #: Seconds: one subject's alerts within one window form an incident (0: no correlation).
    incident_window: int = DEFAULTS.incident_window
    #: The receiver's durable journal (None: store before answering, as without one).
    journal: JournalConfig | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, llm: bool = True) -> RunSettings:
        """Each piece's part of ``settings``; ``llm=False`` (the receiver) skips the LLM writer.

        Raises SecretFileError for a missing or empty token file (refuse to start) and
        LLMConfigError for a bad LLM configuration.
        """
        receiver = _receiver_settings(settings) if settings.receiver else None
        journal = None
        if settings.journal_dir and receiver is not None:
            journal = JournalConfig(
                Path(settings.journal_dir),
                settings.journal_max_entries,
                settings.journal_max_bytes,
                fsync=settings.journal_sync == "fsync",
            )
        return cls(
            kubeconfig=settings.kubeconfig,
            namespaces=settings.namespaces,
            fallback_namespace=settings.fallback_namespace,
            peering=settings.peering,
            liveness=settings.liveness,
            receiver=receiver,
            flush_interval=settings.flush_interval,
            export_dir=settings.export_dir,
            export_interval=settings.export_interval,
            llm=LLMConfig.from_settings(settings) if llm else LLMConfig(),
            health_bind=settings.health_bind,
            peering_priority=settings.peering_priority,
            peering_lifetime=settings.peering_lifetime,
            max_workers=settings.max_workers,
            incident_window=settings.incident_window,
            journal=journal,
        )


def _receiver_settings(settings: Settings) -> ReceiverSettings:
    for path in (settings.token_file, settings.metrics_token_file):
        if path:
            FileSecret(path)  # raises SecretFileError when missing or empty: refuse to start
    host, port = host_port(settings.bind)
    return ReceiverSettings(
        host=host,
        port=port,
        token_file=settings.token_file,
        metrics_token_file=settings.metrics_token_file,
        client_subjects=settings.tls_client_subjects,
        max_body=settings.max_body,
        request_timeout=settings.request_timeout,
        tls_cert=settings.tls_cert,
        tls_key=settings.tls_key,
        tls_client_ca=settings.tls_client_ca,
    )


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


def ready_probe(objects: KubeObjects, settings: RunSettings) -> ReadyProbe:
    """Ready while the API server answers: a namespace lookup that returns at all (found, missing
    or forbidden) proves it; unreachable, a 5xx or refused credentials (KubeError) do not."""

    async def api_server_answers() -> bool:
        try:
            await objects.namespace_exists(settings.fallback_namespace)
        except KubeError as exc:
            log.warning("not ready: %s", exc)
            return False
        return True

    return cached_probe(api_server_answers)


def _ingest(settings: RunSettings, kube: Kube) -> tuple[IngestService, ReadyProbe]:
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
    return service, ready_probe(objects, settings)


def _health_task(
    settings: RunSettings, stop: asyncio.Event, probe: ReadyProbe | None, kube: Kube
) -> asyncio.Task[None]:
    """The plain-HTTP probe and metrics server of ``--health-bind``."""
    host, port = host_port(settings.health_bind)
    if probe is None:
        probe = ready_probe(KubeObjects(kube, settings.namespaces), settings)
    where = ReceiverSettings(host=host, port=port)
    metrics_token = settings.receiver.metrics_token_file if settings.receiver else ""
    return asyncio.create_task(
        serve(build_health_app(probe, metrics_token_file=metrics_token), where, stop, name="health"),
        name="health-server",
    )


def _receiver_tasks(settings: RunSettings, stop: asyncio.Event, kube: Kube) -> list[asyncio.Task[None]]:
    """The receiver (server, then its final flush or drain) and the health server, as tasks that
    end when ``stop`` is set."""
    probe: ReadyProbe | None = None
    tasks: list[asyncio.Task[None]] = []
    if settings.receiver is not None:
        service, probe = _ingest(settings, kube)
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
        tasks.append(_health_task(settings, stop, probe, kube))
    return tasks


async def run_receiver(settings: RunSettings) -> None:
    """The receiver alone (it scales as its own Deployment)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    kube = connect(settings.kubeconfig)
    await kube.api()  # an unusable kubeconfig fails the start, not the first alert
    tasks = _receiver_tasks(settings, stop, kube)
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await kube.close()


def build_registry(
    settings: RunSettings, kube: Kube, service: ReportService | None = None
) -> kopf.OperatorRegistry:
    """The kopf registry with our handlers, login and persistence settings.

    ``service`` replaces the configured report service (tests inject one with a fake model).
    """
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
            return in_cluster_server(kopf.login_with_service_account(**kwargs), os.environ)
        return kopf.login_with_kubeconfig(**kwargs)

    return registry


def in_cluster_server(info: kopf.ConnectionInfo | None, env: Mapping[str, str]) -> kopf.ConnectionInfo | None:
    """Aim kopf's service-account login at the address the kubelet puts in the environment.

    kopf names the API server ``kubernetes.default.svc``, which needs cluster DNS; the Kubernetes
    client (our receiver) and client-go use ``KUBERNETES_SERVICE_HOST``/``_PORT`` instead, so both
    halves of the operator reach the API server the same way, with or without DNS.
    """
    host, port = env.get("KUBERNETES_SERVICE_HOST", ""), env.get("KUBERNETES_SERVICE_PORT", "443")
    if info is None or not host:
        return info
    return dataclasses.replace(info, server=f"https://{f'[{host}]' if ':' in host else host}:{port}")


async def run_operator(
    settings: RunSettings, *, service: ReportService | None = None, stop_flag: asyncio.Event | None = None
) -> None:
    """The kopf operator, with the receiver embedded in the same loop unless disabled.

    ``stop_flag`` stops it from outside (embedding, tests); signals stop it too.
    """
    if settings.kubeconfig:
        os.environ["KUBECONFIG"] = settings.kubeconfig
    # The operator's and the receiver's API calls get separate connection pools, as before.
    operator_kube, receiver_kube = connect(settings.kubeconfig), connect(settings.kubeconfig)
    await operator_kube.api()  # an unusable kubeconfig fails the start, not the first alert
    registry = build_registry(settings, operator_kube, service)
    stop = asyncio.Event()
    # kopf cancels every task created after it starts when it stops; ours must exist before it
    # does, so the receiver can finish in-flight requests and flush repeat counts on shutdown.
    tasks = _receiver_tasks(settings, stop, receiver_kube)
    if settings.export_dir:
        reports = CustomResources(operator_kube, ALERTREPORTS)
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
        await operator_kube.close()
        await receiver_kube.close()


async def _closing(kube: Kube, work: Awaitable[T]) -> T:
    try:
        return await work
    finally:
        await kube.close()


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
    kube = connect(kubeconfig)
    reports = CustomResources(kube, ALERTREPORTS)
    return asyncio.run(
        _closing(
            kube,
            export(reports, directory, namespace=namespace, since=since, formats=formats, progress=progress),
        )
    )


def suppressions_file(kubeconfig: str | None, *, namespace: str | None) -> str:
    """All accepted false positives as one Falco rules file."""
    kube = connect(kubeconfig)
    reports = CustomResources(kube, ALERTREPORTS)
    accepted = asyncio.run(
        _closing(kube, reports.list(namespace, label_selector=f"{LABEL_FALSE_POSITIVE}=true"))
    )
    ordered = sorted(accepted, key=lambda r: (r["metadata"]["namespace"], r["metadata"]["name"]))
    suppressions = [accepted_suppression(r) for r in ordered if accepted_false_positive(r)]
    return merge_rules_file([s.exception for s in suppressions if s is not None and s.exception])
