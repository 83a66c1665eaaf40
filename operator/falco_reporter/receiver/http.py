"""aiohttp application: thin handlers that validate, call the ingest service, and answer."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from cachetools import TTLCache

from falco_reporter import metrics
from falco_reporter.kube.errors import KubeError, KubeInvalid, KubeUnavailable
from falco_reporter.models.falco import FalcoAlertSpec, InvalidAlert
from falco_reporter.receiver.ingest import IngestResult, IngestService
from falco_reporter.receiver.intake import alert_from_body
from falco_reporter.receiver.journal import Journal, JournalFull
from falco_reporter.receiver.secrets import FileSecret, ReloadingTLS, peer_subject_allowed
from falco_reporter.settings import DEFAULTS, host_port

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReceiverSettings:
    host: str = host_port(DEFAULTS.bind)[0]
    port: int = host_port(DEFAULTS.bind)[1]
    #: File holding the bearer token for POST /v1/alerts (re-read on change); "" = no auth.
    token_file: str = DEFAULTS.token_file
    #: File holding a bearer token required for /metrics; "" = /metrics open.
    metrics_token_file: str = DEFAULTS.metrics_token_file
    #: With mutual TLS: client certificate subjects allowed (common name or CN=..,O=..); () = any.
    client_subjects: tuple[str, ...] = DEFAULTS.tls_client_subjects
    max_body: int = DEFAULTS.max_body
    request_timeout: float = DEFAULTS.request_timeout
    tls_cert: str = DEFAULTS.tls_cert
    tls_key: str = DEFAULTS.tls_key
    tls_client_ca: str = DEFAULTS.tls_client_ca


ReadyProbe = Callable[[], Awaitable[bool]]
SERVICE_KEY = web.AppKey("ingest", IngestService)
SETTINGS_KEY = web.AppKey("settings", ReceiverSettings)
PROBE_KEY: web.AppKey[ReadyProbe] = web.AppKey("ready_probe")
TOKEN_KEY = web.AppKey("token", FileSecret)
METRICS_TOKEN_KEY = web.AppKey("metrics_token", FileSecret)
JOURNAL_KEY = web.AppKey("journal", Journal)


# Bound once: the series exist (at 0) from the start, and no label lookup per request.
_ACCEPTED = {
    True: metrics.ALERTS_ACCEPTED.labels("created"),
    False: metrics.ALERTS_ACCEPTED.labels("merged"),
    None: metrics.ALERTS_ACCEPTED.labels("journaled"),
}


def _error(status: int, code: str, message: str, **headers: str) -> web.Response:
    metrics.ALERTS_REJECTED.labels(code).inc()
    return web.json_response({"error": code, "message": message}, status=status, headers=headers or None)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every failure as JSON and never let one request take the process down."""
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[SETTINGS_KEY].max_body
        return _error(413, "body_too_large", f"body exceeds the limit of {limit} bytes")
    except web.HTTPNotFound:
        return _error(404, "not_found", f"no such endpoint: {request.method} {request.path}")
    except web.HTTPMethodNotAllowed as exc:
        return _error(
            405, "method_not_allowed", f"{request.method} not allowed; use {', '.join(exc.allowed_methods)}"
        )
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unexpected error handling %s %s", request.method, request.path)
        return _error(503, "internal_error", "the alert was not stored; retry", **{"Retry-After": "1"})


async def post_alert(request: web.Request) -> web.Response:
    """Validate one Falco alert and answer 202 once it is kept: stored (or merged), or in the journal."""
    started = time.perf_counter()
    metrics.ALERTS_RECEIVED.inc()
    settings: ReceiverSettings = request.app[SETTINGS_KEY]
    token = request.app.get(TOKEN_KEY)
    if token is not None and not token.matches(request.headers.get("Authorization", "")):
        return _error(401, "unauthorized", "missing or wrong bearer token", **{"WWW-Authenticate": "Bearer"})
    if settings.client_subjects and not peer_subject_allowed(
        request.transport.get_extra_info("peercert") if request.transport else None, settings.client_subjects
    ):
        return _error(403, "forbidden", "client certificate subject not allowed")
    if request.content_length is not None and request.content_length > settings.max_body:
        return _error(413, "body_too_large", f"body exceeds the limit of {settings.max_body} bytes")
    body = await request.read()
    try:
        spec = alert_from_body(body)
    except InvalidAlert as exc:
        return _error(400, "invalid_alert", str(exc))
    service = request.app[SERVICE_KEY]
    journal = request.app.get(JOURNAL_KEY)
    if journal is not None:
        return await _journal(journal, service, spec, settings, started)
    # A repeat of a stored alert is counted without awaiting anything (no task, no timer).
    result = service.merge_known(spec)
    try:
        if result is None:
            async with asyncio.timeout(settings.request_timeout):  # no extra task, unlike wait_for
                result = await service.ingest(spec)
    except TimeoutError:
        return _error(
            503, "timeout", f"not stored within {settings.request_timeout:g}s; retry", **{"Retry-After": "1"}
        )
    except KubeInvalid as exc:
        return _error(400, "rejected_by_api_server", str(exc))
    except KubeUnavailable as exc:
        return _error(503, "api_unavailable", f"the alert was not stored: {exc}", **{"Retry-After": "2"})
    except KubeError as exc:
        return _error(503, "api_error", f"the alert was not stored: {exc}", **{"Retry-After": "5"})
    return _accepted(result, started)


def _accepted(result: IngestResult, started: float) -> web.Response:
    _ACCEPTED[result.created].inc()
    metrics.ACK_LATENCY.observe(time.perf_counter() - started)
    return web.json_response(
        {"status": "accepted", "namespace": result.namespace, "name": result.name, "created": result.created},
        status=202,
    )


async def _journal(
    journal: Journal, service: IngestService, spec: FalcoAlertSpec, settings: ReceiverSettings, started: float
) -> web.Response:
    """Journal mode: 202 once the alert is durably in the local journal; the drainer stores it."""
    try:
        async with asyncio.timeout(settings.request_timeout):
            await journal.append(spec.model_dump_json(by_alias=True).encode())
    except JournalFull as exc:
        return _error(503, "journal_full", f"the alert was not accepted: {exc}", **{"Retry-After": "5"})
    except TimeoutError:
        return _error(
            503,
            "timeout",
            f"not journaled within {settings.request_timeout:g}s; retry",
            **{"Retry-After": "1"},
        )
    return _accepted(service.expected(spec), started)


async def metrics_endpoint(request: web.Request) -> web.Response:
    token = request.app.get(METRICS_TOKEN_KEY)
    if token is not None and not token.matches(request.headers.get("Authorization", "")):
        return _error(401, "unauthorized", "missing or wrong bearer token", **{"WWW-Authenticate": "Bearer"})
    return web.Response(body=metrics.exposition(), content_type="text/plain", charset="utf-8")


async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when we can take alerts: the API server answered recently, or (with a journal) the
    journal has room. Stop sending us alerts we could not keep."""
    if await request.app[PROBE_KEY]():
        return web.json_response({"status": "ready"})
    return _error(503, "not_ready", "alerts cannot be taken now (API server unreachable or journal full)")


def _application(settings: ReceiverSettings, ready_probe: ReadyProbe) -> web.Application:
    """An application with our error middleware, settings, readiness probe and the probe routes."""
    app = web.Application(client_max_size=settings.max_body, middlewares=[_errors])
    app[SETTINGS_KEY] = settings
    app[PROBE_KEY] = ready_probe
    if settings.metrics_token_file:
        app[METRICS_TOKEN_KEY] = FileSecret(settings.metrics_token_file)
    app.add_routes(
        [
            web.get("/healthz", healthz),
            web.get("/readyz", readyz),
            web.get("/metrics", metrics_endpoint),
        ]
    )
    return app


def build_app(
    service: IngestService,
    settings: ReceiverSettings,
    ready_probe: ReadyProbe,
    journal: Journal | None = None,
) -> web.Application:
    """The receiver application (also mounted next to the operator in ``run``)."""
    app = _application(settings, ready_probe)
    app[SERVICE_KEY] = service
    if settings.token_file:
        app[TOKEN_KEY] = FileSecret(settings.token_file)
    if journal is not None:
        app[JOURNAL_KEY] = journal
    app.add_routes([web.post("/v1/alerts", post_alert)])
    return app


def build_health_app(ready_probe: ReadyProbe, *, metrics_token_file: str) -> web.Application:
    """Probes and metrics alone, plain HTTP (``--health-bind``): for kubelet probes and Prometheus
    when the receiver requires mutual TLS, and for ``run --no-receiver``, which has no receiver."""
    # Probes and scrapes send no body: the smallest limit aiohttp takes.
    return _application(ReceiverSettings(max_body=1024, metrics_token_file=metrics_token_file), ready_probe)


def tls(settings: ReceiverSettings) -> ReloadingTLS | None:
    """HTTPS when a certificate is configured; mutual TLS when a client CA is too."""
    if not settings.tls_cert:
        return None
    return ReloadingTLS(settings.tls_cert, settings.tls_key, settings.tls_client_ca)


def journal_probe(journal: Journal) -> ReadyProbe:
    """With a journal the receiver takes alerts while the API server is away: ready unless full."""

    async def probe() -> bool:
        return not journal.full

    return probe


def cached_probe(check: Callable[[], Awaitable[bool]], ttl: float = 5.0) -> ReadyProbe:
    """Run a readiness check at most every ``ttl`` seconds."""
    last: TTLCache[str, bool] = TTLCache(1, ttl, timer=time.monotonic)

    async def probe() -> bool:
        ok = last.get("ok")
        if ok is None:
            try:
                ok = await check()
            except Exception:
                ok = False
            last["ok"] = ok
        return ok

    return probe


async def serve(
    app: web.Application, settings: ReceiverSettings, stop: asyncio.Event, name: str = "receiver"
) -> None:
    """Serve until ``stop`` is set."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    reloading = tls(settings)
    site = web.TCPSite(
        runner, settings.host, settings.port, ssl_context=reloading.context if reloading else None
    )
    await site.start()
    log.info("%s listening on %s:%s", name, settings.host, settings.port)
    watcher = asyncio.create_task(reloading.run(stop)) if reloading else None
    try:
        await stop.wait()
    finally:
        await runner.cleanup()  # stops accepting, then waits for the requests in flight
        if watcher is not None:
            await watcher
