"""The chat model of the configured provider, built through LangChain.

A missing integration package fails fast with the pip extra to install, before LangChain tries
to import it.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel

from falco_reporter.reporting.llm_config import LLMConfig, LLMConfigError

__all__ = ["ProviderUnavailable", "build_chat_model", "check_provider"]


class ProviderUnavailable(LLMConfigError):
    """The provider's LangChain integration is not installed; the message names the pip extra."""


@dataclass(frozen=True)
class _Provider:
    name: str
    """init_chat_model's provider name."""
    modules: tuple[str, ...]
    """Python modules that must be importable."""
    package: str
    """pip package of the integration."""


_PROVIDERS: dict[str, _Provider] = {
    "llamacpp": _Provider(
        "llamacpp", ("llama_cpp", "langchain_community"), "llama-cpp-python, langchain-community"
    ),
    "ollama": _Provider("ollama", ("langchain_ollama",), "langchain-ollama"),
    "openai": _Provider("openai", ("langchain_openai",), "langchain-openai"),
    "openai-compatible": _Provider("openai", ("langchain_openai",), "langchain-openai"),
    "anthropic": _Provider("anthropic", ("langchain_anthropic",), "langchain-anthropic"),
    "azure_openai": _Provider("azure_openai", ("langchain_openai",), "langchain-openai"),
    "bedrock": _Provider("bedrock_converse", ("langchain_aws",), "langchain-aws"),
    "google": _Provider("google_genai", ("langchain_google_genai",), "langchain-google-genai"),
}


def check_provider(config: LLMConfig) -> None:
    """Raise ProviderUnavailable when the provider's integration package is missing."""
    provider = _PROVIDERS.get(config.provider)
    if provider is None:
        raise LLMConfigError(f"no LLM provider configured (provider {config.provider!r})")
    missing = [m for m in provider.modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ProviderUnavailable(
            f"LLM provider {config.provider!r} needs {provider.package} (missing Python module "
            f"{', '.join(missing)}): pip install 'falco-reporter[{config.extra}]'"
        )


def build_chat_model(config: LLMConfig) -> BaseChatModel:
    """The configured chat model; fails fast on a missing package or model file."""
    check_provider(config)
    if config.provider == "llamacpp":
        return _llamacpp(config)
    from langchain.chat_models import init_chat_model

    provider = _PROVIDERS[config.provider]
    model = init_chat_model(config.model, model_provider=provider.name, **_provider_kwargs(config))
    if not isinstance(model, BaseChatModel):  # only with configurable fields, which are not used
        raise LLMConfigError(f"init_chat_model returned {type(model).__name__}, not a chat model")
    return model


def _llamacpp(config: LLMConfig) -> BaseChatModel:
    path = Path(config.model_path).expanduser()
    if not path.is_file():
        raise LLMConfigError(
            f"FALCO_REPORTER_LLM_MODEL_PATH {path} is not a file (hack/llm-model.sh assembles the small test model)"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "langchain-community is being sunset"
        from langchain_community.chat_models import ChatLlamaCpp

    # ChatLlamaCpp's defaults (n_ctx=512, n_batch=8, temperature=0.8, verbose=True) are unusable here.
    model: BaseChatModel = ChatLlamaCpp(
        model_path=str(path),
        n_ctx=config.n_ctx,
        n_batch=512,
        n_threads=config.n_threads or os.cpu_count() or 1,
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        seed=0,
        verbose=False,
    )
    return model


def _provider_kwargs(config: LLMConfig) -> dict[str, Any]:
    """Constructor arguments per provider (their parameter names differ)."""
    kw: dict[str, Any] = {"temperature": config.temperature}
    key = {"api_key": config.api_key} if config.api_key else {}
    match config.provider:
        case "openai" | "openai-compatible":
            kw |= {"max_tokens": config.max_tokens, "timeout": config.timeout_s, "max_retries": 1, **key}
            if config.base_url:
                kw["base_url"] = config.base_url
            if config.provider == "openai-compatible" and not config.api_key:
                kw["api_key"] = "not-needed"  # local servers (vLLM, llama.cpp server, LM Studio) ignore it
        case "azure_openai":
            kw |= {
                "azure_deployment": config.model,
                "azure_endpoint": config.base_url,
                "max_tokens": config.max_tokens,
                "timeout": config.timeout_s,
                "max_retries": 1,
                **key,
            }
            if config.api_version:
                kw["api_version"] = config.api_version
        case "anthropic":
            kw |= {"max_tokens": config.max_tokens, "timeout": config.timeout_s, "max_retries": 1, **key}
            if config.base_url:
                kw["base_url"] = config.base_url
        case "ollama":
            kw |= {"num_predict": config.max_tokens, "client_kwargs": {"timeout": config.timeout_s}}
            if config.base_url:
                kw["base_url"] = config.base_url
        case "bedrock":
            kw |= {"max_tokens": config.max_tokens}
            if config.base_url:
                kw["endpoint_url"] = config.base_url
        case "google":
            kw |= {"max_output_tokens": config.max_tokens, "timeout": config.timeout_s, "max_retries": 1}
            if config.api_key:
                kw["google_api_key"] = config.api_key
    return kw
