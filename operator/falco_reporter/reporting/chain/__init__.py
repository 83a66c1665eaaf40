"""The LLM report writer: a grounded, validated LangChain chain. The ONLY package importing LangChain.

One report = one prompt (system rules + three delimited data blocks: the redacted alert, the
enrichment, the rule's knowledge-base entry) -> a structured :class:`LLMAnswer` -> checks
(:func:`guard.check_answer`) -> one retry with the problems named -> merge with the built-in
draft (which keeps the MITRE mapping, the exact Falco exception and the curated mitigations).
Any failure raises :class:`WriterFailed`, and :class:`ReportService` falls back to the built-in
writer with the reason in ``writer.fallbackReason``.

Modules: ``providers`` builds the chat model, ``negotiation`` picks its structured-output method
per endpoint, ``exchange`` turns the prompt into messages and the reply into an answer, ``writer``
is the :class:`LLMWriter`. The LangChain-free parts live beside
this package (``reporting.prompt``, ``reporting.answer_parsing``, ``reporting.answer_merge``).
"""

from __future__ import annotations

from falco_reporter.reporting.answer_parsing import parse_answer_text
from falco_reporter.reporting.chain.providers import ProviderUnavailable, build_chat_model
from falco_reporter.reporting.chain.writer import LLMWriter
from falco_reporter.reporting.guard import LLMAnswer, LLMMitigation
from falco_reporter.reporting.prompt import PROMPT_VERSION

__all__ = [
    "PROMPT_VERSION",
    "LLMAnswer",
    "LLMMitigation",
    "LLMWriter",
    "ProviderUnavailable",
    "build_chat_model",
    "parse_answer_text",
]
