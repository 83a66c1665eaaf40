"""From request body to the spec we store: parse, normalise, redact secrets, fingerprint.

Secrets are replaced by placeholders before the FalcoAlert is written, because the aggregated
``view`` role lets namespace viewers read FalcoAlerts; ``spec.redactedFields`` names the fields
that held one. The fingerprint is computed on the redacted alert, so two occurrences that differ
only in a secret's value still merge, and no hash of a secret is stored.

Redaction runs every pattern over every string (about 1 ms per alert here), too slow for a storm
of repeats, so results are cached by the alert's text; the output line's leading time (which
Falco puts in every line) is kept out of the key.
"""

from __future__ import annotations

import re

from cachetools import LRUCache

from falco_reporter.models.falco import FalcoAlertSpec, fingerprint, normalise, parse_alert_body
from falco_reporter.reporting.redaction import redact_alert

_LEADING_TIME = re.compile(r"^\d{2}:\d{2}:\d{2}\.\d{1,9}: ")
_CACHE_SIZE = 4096
_Key = tuple[str, tuple[tuple[str, str], ...]]
_cache: LRUCache[_Key, tuple[str, dict[str, str], list[str]]] = LRUCache(_CACHE_SIZE)


def alert_from_body(body: bytes) -> FalcoAlertSpec:
    """The spec to store for one request body; raises InvalidAlert for anything malformed."""
    return redacted(normalise(parse_alert_body(body)))


def redacted(spec: FalcoAlertSpec) -> FalcoAlertSpec:
    """The spec with secrets replaced and ``redactedFields`` set (the same spec when none)."""
    stamp = _LEADING_TIME.match(spec.output)
    prefix = stamp.group(0) if stamp else ""
    rest = spec.output[len(prefix) :]
    texts = tuple((k, v) for k, v in spec.output_fields.items() if isinstance(v, str))
    key = (rest, texts)
    hit = _cache.get(key)
    if hit is None:
        clean, kinds = redact_alert(spec.model_copy(update={"output": rest}))
        changed = {k: v for k, v in clean.output_fields.items() if v != spec.output_fields.get(k)}
        names = sorted([*changed, *(["output"] if clean.output != rest else [])]) if kinds else []
        hit = (clean.output, changed, names)
        _cache[key] = hit
    output, changed, names = hit
    if not names:
        return spec
    clean = spec.model_copy(
        update={
            "output": prefix + output,
            "output_fields": {**spec.output_fields, **changed},
            "redacted_fields": names,
        }
    )
    clean.fingerprint = fingerprint(clean)
    return clean
