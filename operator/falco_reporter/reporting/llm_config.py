"""Configuration of the LLM report writer: the ``llm_*`` settings (``FALCO_REPORTER_LLM_*``), checked.

No LangChain here: the operator validates its configuration (and fails fast with a clear message)
before anything heavy is imported. The API key is never part of ``repr``/``str`` and never logged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from pydantic import ValidationError

from falco_reporter.settings import DEFAULTS, Settings, describe_errors

PREFIX: Final = "FALCO_REPORTER_LLM_"

#: Every provider name accepted, with the pip extra that installs its LangChain integration.
PROVIDER_EXTRAS: Final[dict[str, str]] = {
    "llamacpp": "llamacpp",
    "ollama": "ollama",
    "openai": "openai",
    "openai-compatible": "openai",
    "anthropic": "anthropic",
    "azure_openai": "azure_openai",
    "bedrock": "bedrock",
    "google": "google",
}
PROVIDERS: Final = ("none", *PROVIDER_EXTRAS)
_ALIASES: Final = {
    "": "none",
    "off": "none",
    "builtin": "none",
    "llama.cpp": "llamacpp",
    "llama_cpp": "llamacpp",
    "openai_compatible": "openai-compatible",
    "azure": "azure_openai",
    "azure-openai": "azure_openai",
    "google_genai": "google",
    "gemini": "google",
    "aws": "bedrock",
}
MAX_TEMPERATURE: Final = 0.2
MIN_N_CTX: Final = 4096
DEFAULT_MODEL_FILE: Final = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"


class LLMConfigError(ValueError):
    """The LLM configuration is invalid; the message names the variable and the fix."""


@dataclass(frozen=True)
class LLMConfig:
    """How the LLM writer reaches its model, and the limits it keeps.

    ``provider="none"`` disables the LLM writer (reports come from the built-in writer).
    Zero means "unlimited" for ``calls_per_hour``/``tokens_per_hour`` and "disabled" for
    ``cache_size``; ``n_threads=0`` lets llama.cpp use every core.
    """

    provider: str = DEFAULTS.llm_provider
    model: str = DEFAULTS.llm_model
    base_url: str = DEFAULTS.llm_base_url
    api_key: str = field(default="", repr=False, compare=False)
    api_version: str = DEFAULTS.llm_api_version
    temperature: float = DEFAULTS.llm_temperature
    timeout_s: float = DEFAULTS.llm_timeout
    max_tokens: int = DEFAULTS.llm_max_tokens
    concurrency: int = DEFAULTS.llm_concurrency
    calls_per_hour: int = DEFAULTS.llm_calls_per_hour
    tokens_per_hour: int = DEFAULTS.llm_tokens_per_hour
    cache_size: int = DEFAULTS.llm_cache_size
    redact: bool = DEFAULTS.llm_redact
    model_path: str = DEFAULTS.llm_model_path
    n_ctx: int = DEFAULTS.llm_n_ctx
    n_threads: int = DEFAULTS.llm_n_threads

    def __post_init__(self) -> None:
        provider = _ALIASES.get(self.provider.strip().lower(), self.provider.strip().lower())
        object.__setattr__(self, "provider", provider)
        if provider == "llamacpp" and not self.model and self.model_path:
            object.__setattr__(self, "model", Path(self.model_path).name.removesuffix(".gguf"))
        problems = self.problems()
        if problems:
            raise LLMConfigError("invalid LLM configuration: " + "; ".join(problems))

    # --- validation ----------------------------------------------------------------------

    def problems(self) -> list[str]:
        """Every configuration problem, each naming its environment variable."""
        out: list[str] = []
        if self.provider not in PROVIDERS:
            out.append(f"{PREFIX}PROVIDER={self.provider!r} is not one of {', '.join(PROVIDERS)}")
            return out
        if not 0.0 <= self.temperature <= MAX_TEMPERATURE:
            out.append(
                f"{PREFIX}TEMPERATURE must be between 0 and {MAX_TEMPERATURE} "
                f"(reports must be reproducible), got {self.temperature}"
            )
        if self.timeout_s <= 0:
            out.append(f"{PREFIX}TIMEOUT must be a positive number of seconds, got {self.timeout_s}")
        if self.max_tokens < 256:
            out.append(
                f"{PREFIX}MAX_TOKENS must be at least 256 (a report needs room), got {self.max_tokens}"
            )
        if self.concurrency < 1:
            out.append(f"{PREFIX}CONCURRENCY must be at least 1, got {self.concurrency}")
        for name, value in (
            ("CALLS_PER_HOUR", self.calls_per_hour),
            ("TOKENS_PER_HOUR", self.tokens_per_hour),
            ("CACHE_SIZE", self.cache_size),
            ("N_THREADS", self.n_threads),
        ):
            if value < 0:
                out.append(f"{PREFIX}{name} must be 0 or more, got {value}")
        if self.provider == "none":
            return out
        if self.provider == "llamacpp":
            if not self.model_path:
                out.append(f"{PREFIX}MODEL_PATH is required for provider llamacpp (a .gguf file)")
            if self.n_ctx < MIN_N_CTX:
                out.append(
                    f"{PREFIX}N_CTX must be at least {MIN_N_CTX} (prompt and answer do not fit in less), "
                    f"got {self.n_ctx}"
                )
            if self.concurrency != 1:
                out.append(
                    f"{PREFIX}CONCURRENCY must be 1 for llamacpp (one in-process model generates serially)"
                )
        elif not self.model:
            out.append(f"{PREFIX}MODEL is required for provider {self.provider}")
        if self.provider == "openai-compatible" and not self.base_url:
            out.append(f"{PREFIX}BASE_URL is required for provider openai-compatible")
        if self.provider == "azure_openai" and not self.base_url:
            out.append(f"{PREFIX}BASE_URL (the Azure OpenAI endpoint) is required for provider azure_openai")
        if self.base_url and not self.base_url.startswith(("http://", "https://")):
            out.append(f"{PREFIX}BASE_URL must start with http:// or https://, got {self.base_url!r}")
        return out

    # --- views ---------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """True when a provider is configured (the LLM writer should be used)."""
        return self.provider != "none"

    @property
    def extra(self) -> str:
        """The pip extra that installs this provider's integration (``falco-reporter[extra]``)."""
        return PROVIDER_EXTRAS.get(self.provider, "")

    def describe(self) -> str:
        """A one-line, secret-free description for logs."""
        if not self.enabled:
            return "LLM writer disabled (built-in writer only)"
        where = f" at {self.base_url}" if self.base_url else ""
        where += f" from {self.model_path}" if self.model_path else ""
        key = ", api key set" if self.api_key else ""
        return (
            f"LLM writer {self.provider}:{self.model}{where} (temperature {self.temperature}, "
            f"timeout {self.timeout_s:g}s, concurrency {self.concurrency}, {self.calls_per_hour or 'unlimited'} "
            f"calls/h, {self.tokens_per_hour or 'unlimited'} tokens/h, cache {self.cache_size}, "
            f"redact {'on' if self.redact else 'OFF'}{key})"
        )

    # --- environment ---------------------------------------------------------------------

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LLMConfig:
        """Read ``FALCO_REPORTER_LLM_*``; raise LLMConfigError naming every bad variable."""
        env = os.environ if environ is None else environ
        try:
            settings = Settings.from_env(env)
        except ValidationError as exc:
            raise LLMConfigError("invalid LLM configuration: " + describe_errors(exc)) from exc
        return cls.from_settings(settings, env)

    @classmethod
    def from_settings(cls, settings: Settings, environ: Mapping[str, str] | None = None) -> LLMConfig:
        """The LLM part of ``settings``, with the API key read from the variable or file it names."""
        return cls(
            provider=settings.llm_provider,
            model=settings.llm_model,
            base_url=settings.llm_base_url,
            api_key=_api_key(settings, os.environ if environ is None else environ),
            api_version=settings.llm_api_version,
            temperature=settings.llm_temperature,
            timeout_s=settings.llm_timeout,
            max_tokens=settings.llm_max_tokens,
            concurrency=settings.llm_concurrency,
            calls_per_hour=settings.llm_calls_per_hour,
            tokens_per_hour=settings.llm_tokens_per_hour,
            cache_size=settings.llm_cache_size,
            redact=settings.llm_redact,
            model_path=settings.llm_model_path,
            n_ctx=settings.llm_n_ctx,
            n_threads=settings.llm_n_threads,
        )


def _api_key(settings: Settings, env: Mapping[str, str]) -> str:
    key_env, key_file = settings.llm_api_key_env.strip(), settings.llm_api_key_file.strip()
    if key_env and key_file:
        raise LLMConfigError(f"set only one of {PREFIX}API_KEY_ENV and {PREFIX}API_KEY_FILE")
    if key_env:
        if api_key := env.get(key_env, "").strip():
            return api_key
        raise LLMConfigError(f"{PREFIX}API_KEY_ENV names {key_env}, which is unset or empty")
    if not key_file:
        return ""
    try:
        api_key = Path(key_file).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise LLMConfigError(f"{PREFIX}API_KEY_FILE: cannot read {key_file}: {exc.strerror}") from exc
    if not api_key:
        raise LLMConfigError(f"{PREFIX}API_KEY_FILE {key_file} is empty")
    return api_key


def default_model_path() -> Path:
    """Where hack/llm-model.sh puts the small test model."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "falco-reporter" / "models" / DEFAULT_MODEL_FILE
