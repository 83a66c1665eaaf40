"""Every setting of ``falco-reporter run`` and ``receiver``, with its one default.

Flags (generated from these fields by :mod:`falco_reporter.cli.flags`), ``FALCO_REPORTER_*``
environment variables and the Helm chart's values (``chart`` below, checked by the tests against
``values.schema.json``) all map onto this model; flags win over variables, variables over
defaults. Lower layers take their dataclass defaults from :data:`DEFAULTS`, so a default is
written here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    NoDecode,
    SettingsConfigDict,
)

ENV_PREFIX: Final = "FALCO_REPORTER_"
#: Flag groups: which commands get a field's flag (see :mod:`falco_reporter.cli.flags`).
Group = Literal["common", "receiver", "operator", "llm"]


def setting(
    default: Any,
    help: str,
    *,
    group: Group,
    chart: str = "",
    chart_default: Any = None,
    env: str = "",
    flag: str = "",
) -> Any:
    """A field with its help text, flag group, chart value path (and the chart's default where
    it means something else, e.g. "" for the release namespace) and, where it differs from the
    field name, its historical environment variable or flag name."""
    extra: dict[str, Any] = {"group": group, "chart": chart, "flag": flag}
    if chart_default is not None:
        extra["chart_default"] = chart_default
    if not env:
        return Field(default, description=help, json_schema_extra=extra)
    return Field(
        default,
        description=help,
        validation_alias=ENV_PREFIX + env,
        json_schema_extra=extra,
    )


def _comma_list(value: Any) -> Any:
    return tuple(s.strip() for s in value.split(",") if s.strip()) if isinstance(value, str) else value


CommaList = Annotated[tuple[str, ...], NoDecode]


class Settings(BaseSettings):
    """One process's configuration (frozen: read once at start)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, populate_by_name=True, extra="ignore", frozen=True, env_ignore_empty=True
    )

    # --- every command that talks to a cluster ---------------------------------------------------
    kubeconfig: str | None = setting(
        None, "kubeconfig file (default: $KUBECONFIG, then in-cluster)", group="common"
    )
    log_level: str = setting(
        "INFO", "DEBUG, INFO, WARNING or ERROR", group="common", chart="operator.logLevel"
    )

    # --- the receiver -----------------------------------------------------------------------------
    bind: str = setting("0.0.0.0:8080", "host:port the receiver listens on", group="receiver")
    token_file: str = setting(
        "",
        "file holding the shared bearer token; requests without it get 401 (empty: no auth)",
        group="receiver",
    )
    max_body: int = setting(
        1024 * 1024,
        "largest accepted body in bytes, larger gets 413",
        group="receiver",
        chart="receiver.maxBody",
    )
    request_timeout: float = setting(
        5.0,
        "answer every request within this many seconds, 503 if the alert could not be stored",
        group="receiver",
        chart="receiver.requestTimeout",
    )
    tls_cert: str = setting("", "serve HTTPS with this certificate (PEM)", group="receiver")
    tls_key: str = setting("", "private key of --tls-cert (PEM)", group="receiver")
    tls_client_ca: str = setting(
        "", "require client certificates signed by this CA (mutual TLS)", group="receiver"
    )
    tls_client_subjects: CommaList = setting(
        (),
        "with --tls-client-ca: accept only client certificates with this common name (or whole "
        "subject, CN=..,O=..); repeatable, the variable comma-separated",
        group="receiver",
        chart="receiver.allowedClientSubjects",
        flag="--tls-client-subject",
    )
    metrics_token_file: str = setting(
        "", "require this bearer token on /metrics (empty: open)", group="receiver"
    )
    fallback_namespace: str = setting(
        "falco-reporter",
        "namespace for alerts that name no existing namespace",
        group="receiver",
        chart="receiver.fallbackNamespace",
        chart_default="",  # the release namespace
        env="NAMESPACE",
    )
    namespaces: CommaList = setting(
        (),
        "watch (run) or store alerts in (receiver) only this namespace, others go to the fallback "
        "namespace; repeatable, the variable comma-separated (empty: cluster-wide)",
        group="receiver",
        env="NAMESPACES",
        flag="--namespace",
    )
    health_bind: str = setting(
        "",
        "also serve /healthz, /readyz and /metrics on this host:port over plain HTTP, e.g. "
        "0.0.0.0:8081: probes and scraping under mutual TLS, and the only metrics of "
        "'run --no-receiver' (empty: none)",
        group="receiver",
    )
    journal_dir: str = setting(
        "",
        "keep a durable journal here and answer 202 once an alert is in it; a drainer stores it "
        "while the API server may be away (empty: answer 202 only once stored)",
        group="receiver",
    )
    journal_sync: Literal["fsync", "process"] = setting(
        "fsync",
        "fsync: each group of appends is fsynced before its 202 (survives a node crash on a "
        "persistent volume); process: written to the OS before the 202 and fsynced at checkpoints "
        "(survives a crash of the receiver, not of the node)",
        group="receiver",
        chart="receiver.journal.sync",
    )
    journal_max_entries: int = setting(
        100_000,
        "journal limit in alerts; when full, 503 with Retry-After",
        group="receiver",
        chart="receiver.journal.maxEntries",
    )
    journal_max_bytes: int = setting(
        256 * 1024 * 1024,
        "journal limit in bytes of alerts; when full, 503 with Retry-After",
        group="receiver",
        chart="receiver.journal.maxBytes",
    )
    flush_interval: float = setting(
        2.0,
        "seconds between writes of merged repeat counts",
        group="receiver",
        chart="receiver.flushInterval",
    )

    # --- the operator (run) ------------------------------------------------------------------------
    receiver: bool = setting(
        True, "embed the HTTP receiver (--no-receiver: the operator only)", group="operator"
    )
    peering: str = setting(
        "", "kopf peering name for safe hand-over between replicas (empty: standalone)", group="operator"
    )
    peering_priority: int = setting(
        0,
        "kopf peering priority: of two live operators the higher one works and the other pauses; "
        "equal priorities pause both",
        group="operator",
    )
    peering_lifetime: int = setting(
        60,
        "seconds after its last keep-alive that a silent peer counts as dead and a paused operator "
        "takes over",
        group="operator",
    )
    max_workers: int = setting(
        128,
        "objects handled at once; the rest wait as raw events, which bounds memory when thousands "
        "of alerts are pending at start-up",
        group="operator",
        chart="operator.maxWorkers",
    )
    export_dir: str = setting(
        "",
        "keep this directory in sync with the reports (Markdown, YAML, index), as `export` writes "
        "it, for a git-committing sidecar (empty: off)",
        group="operator",
    )
    export_interval: float = setting(30.0, "seconds between --export-dir syncs", group="operator")
    incident_window: int = setting(
        1800,
        "seconds: one pod's (container's, host's) alerts within one window form an incident whose "
        "timeline every report of it carries; 0 turns correlation off",
        group="operator",
        chart="operator.incidentWindow",
    )
    liveness: str = setting(
        "", "kopf liveness endpoint, e.g. http://0.0.0.0:8081/healthz (empty: none)", group="operator"
    )

    # --- the LLM writer (run) ----------------------------------------------------------------------
    llm_provider: str = setting(
        "none",
        "none (the built-in writer only), llamacpp, ollama, openai, openai-compatible, anthropic, "
        "azure_openai, bedrock, google",
        group="llm",
        chart="llm.provider",
    )
    llm_model: str = setting(
        "", "model name (llamacpp: taken from the model file)", group="llm", chart="llm.model"
    )
    llm_base_url: str = setting(
        "", "endpoint (ollama, OpenAI-compatible servers, azure_openai)", group="llm", chart="llm.baseUrl"
    )
    llm_api_version: str = setting("", "API version (azure_openai)", group="llm", chart="llm.apiVersion")
    llm_api_key_env: str = setting("", "name of the variable holding the API key", group="llm")
    llm_api_key_file: str = setting("", "file holding the API key", group="llm")
    llm_temperature: float = setting(
        0.1,
        "sampling temperature (at most 0.2: reports must be reproducible)",
        group="llm",
        chart="llm.temperature",
    )
    llm_timeout: float = setting(60.0, "seconds per model call", group="llm", chart="llm.timeout")
    llm_max_tokens: int = setting(1500, "largest answer in tokens", group="llm", chart="llm.maxTokens")
    llm_concurrency: int = setting(1, "model calls at once", group="llm", chart="llm.concurrency")
    llm_calls_per_hour: int = setting(
        120, "model calls per hour (0: unlimited)", group="llm", chart="llm.callsPerHour"
    )
    llm_tokens_per_hour: int = setting(
        300_000, "tokens per hour (0: unlimited)", group="llm", chart="llm.tokensPerHour"
    )
    llm_cache_size: int = setting(
        256, "answers kept for identical prompts (0: no cache)", group="llm", chart="llm.cacheSize"
    )
    llm_redact: bool = setting(True, "redact secrets from prompts", group="llm", chart="llm.redact")
    llm_model_path: str = setting("", "GGUF model file for llamacpp", group="llm", chart="llm.modelPath")
    llm_n_ctx: int = setting(8192, "llamacpp context size in tokens", group="llm", chart="llm.nCtx")
    llm_n_threads: int = setting(0, "llamacpp threads (0: every core)", group="llm", chart="llm.nThreads")

    _split = field_validator("namespaces", "tls_client_subjects", mode="before")(_comma_list)

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> Settings:
        """Settings from ``environ`` (not the process environment) and ``overrides`` (flags)."""
        sources = (InitSettingsSource(cls, overrides), _MappingSource(cls, environ))
        return cls(_build_sources=(sources, {}))


class _MappingSource(EnvSettingsSource):
    """The environment source reading a given mapping instead of ``os.environ``."""

    def __init__(self, cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._mapping = environ
        super().__init__(cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {k.lower(): v for k, v in self._mapping.items()}


def env_name(name: str) -> str:
    """The environment variable of field ``name``."""
    alias = Settings.model_fields[name].validation_alias
    return alias if isinstance(alias, str) else ENV_PREFIX + name.upper()


def host_port(bind: str) -> tuple[str, int]:
    """``host:port`` split; no host means every address (a receiver in a pod listens on the pod IP)."""
    host, _, port = bind.rpartition(":")
    return host or "0.0.0.0", int(port)  # noqa: S104


def describe_errors(error: ValidationError) -> str:
    """One line per bad value, naming its variable, as people set them."""
    out = []
    for item in error.errors():
        name = str(item["loc"][0]) if item["loc"] else ""
        where = env_name(name) if name in Settings.model_fields else name
        what = {"float_parsing": "is not a number", "int_parsing": "is not an integer"}.get(
            item["type"], item["msg"].lower()
        )
        out.append(f"{where}={item.get('input')!r} {what}")
    return "; ".join(out)


#: The defaults, without reading the environment: lower layers' dataclasses take theirs from here.
DEFAULTS: Final = Settings.model_construct()
