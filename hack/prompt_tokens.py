"""Prompt size per real sample: system + human text + the answer schema, in model tokens.

Counts with the local model's own tokenizer (llama-cpp, vocabulary only) when the model file and
llama_cpp are present, else estimates words x 1.3 and says so. Run with PYTHONPATH pointing at any
checkout's ``operator`` directory to compare prompt versions.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

from falco_reporter.knowledge.base import load
from falco_reporter.models.enrichment import Enrichment
from falco_reporter.models.falco import normalise, parse_alert_body
from falco_reporter.models.report import Occurrences
from falco_reporter.reporting.builtin import BuiltinWriter
from falco_reporter.reporting.guard import LLMAnswer
from falco_reporter.reporting.llm_config import default_model_path
from falco_reporter.reporting.prompt import prompt_texts
from falco_reporter.reporting.service import ReportService


def counter() -> tuple[str, Callable[[str], int]]:
    path = default_model_path()
    try:
        from llama_cpp import Llama

        if path.is_file():
            vocab = Llama(model_path=str(path), vocab_only=True, verbose=False)
            return "model tokenizer", lambda t: len(vocab.tokenize(t.encode(), add_bos=False, special=True))
    except ImportError:
        pass
    return "words x 1.3 (estimate)", lambda t: int(len(t.split()) * 1.3)


def main(real_dir: str) -> int:
    how, count = counter()
    kb = load()
    service = ReportService(kb)
    schema = json.dumps(LLMAnswer.model_json_schema())
    sizes = []
    for path in sorted(Path(real_dir).glob("*.json")):
        alert = normalise(parse_alert_body(path.read_bytes()))
        ctx = service.context(alert, Enrichment(), name="a", namespace="n", occurrences=Occurrences())
        base = BuiltinWriter().write_sync(ctx)
        enrichment = ctx.enrichment.model_dump(by_alias=True, exclude_defaults=True, mode="json")
        system, human = prompt_texts(ctx, ctx.alert, enrichment, base)
        sizes.append(count(system) + count(human) + count(schema))
    print(
        f"{how}: {len(sizes)} samples, prompt tokens mean {statistics.mean(sizes):.0f}, "
        f"min {min(sizes)}, max {max(sizes)}; schema alone {count(schema)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "tests/data/real"))
