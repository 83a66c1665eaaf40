"""Does a model's answer make sense? Deterministic checks beyond the guard's form checks.

The guard (``guard.check_answer``) checks form: fields present, a name from the alert, URLs,
injected instructions. A small model can pass all of that with nonsense: a placeholder ("empty"),
JSON debris ("} {"), the retry feedback copied back, a reason that cites nothing, or a path the
alert never contained. :func:`check_sense` finds these. ``problems`` reject an answer; ``flags``
let it through but are counted (the eval and the metrics show them).

Every problem starts with the answer field it is about, so a fallback reason names the fields.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from falco_reporter.models.report import Evidence
from falco_reporter.reporting.context import ReportContext, ReportDraft
from falco_reporter.reporting.guard import LLMAnswer, grounding_anchors, injection_markers, mentions_any
from falco_reporter.validation import validate_snippet
from falco_reporter.validation.result import names
from falco_reporter.validation.safety import check_mitigation

#: Minimum words per narrative field: below this a field carries no information for a responder.
MIN_WORDS = {"summary": 6, "analysis": 15, "verdict_reason": 5, "narrative": 15}
_PLACEHOLDERS = frozenset(
    (
        "empty",
        "n/a",
        "na",
        "none",
        "null",
        "nil",
        "todo",
        "tbd",
        "unknown",
        "not applicable",
        "no data",
        "nothing",
        "string",
        "text",
        "...",
        "lorem ipsum",
        "placeholder",
    )
)
_ANSWER_FIELDS = frozenset(("summary", "analysis", "verdict", "verdict_reason", "severity", "mitigations"))
_WORD = re.compile(r"[a-z0-9]+")
_CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)
# JSON debris: a closed object followed by an open one, a quoted key, or a field that is a bare object.
_JSON_DEBRIS = re.compile(r"\}\s*,?\s*\{|\"[A-Za-z_]+\"\s*:|^\s*[\[{]|[\]}]\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_PATH = re.compile(r"(?<![\w.:/~-])(/(?:[\w.+@-]+/)*[\w.+@-]+/?)")
_IPV4 = re.compile(r"(?<![\w.])(\d{1,3}(?:\.\d{1,3}){3})(?![\w.]*\d)")
_IMAGE = re.compile(r"(?<![\w/.:@-])([a-z0-9][\w.-]*(?:/[\w.-]+)+:[\w][\w.-]{0,127})(?![\w/])", re.IGNORECASE)
_IMAGE_AFTER_WORD = re.compile(r"\bimage\s+[`'\"]?([a-z0-9][\w./-]*:[\w][\w.-]*)", re.IGNORECASE)
_USER = re.compile(r"\b(?:user|username|account)\s+[`'\"]?([a-z_][\w.@-]{1,63})[`'\"]?", re.IGNORECASE)
_NOT_A_USER = frozenset(
    names(
        "is was has had that who which with and or of in on the a an to id ids name names namespace namespaces "
        "account accounts data input session sessions shell space context permissions privileges level mode "
        "root-owned interaction activity could can may might would should"
    )
)
_TECHNIQUE = re.compile(r"\bT\d{4}(?:\.\d{3})?\b")
_BENIGN_CLAIM = re.compile(
    r"\b(?:is|looks|appears|seems|was|probably|likely)\s+(?:to be\s+)?(?:likely\s+|probably\s+|entirely\s+)?"
    r"(?:benign|harmless|legitimate|expected behaviou?r|a false positive|safe|normal)\b"
    r"|\bno (?:signs?|evidence|indications?) of (?:malicious|suspicious|compromise|an? attack)"
    r"|\bnothing (?:malicious|suspicious)\b",
    re.IGNORECASE,
)
_MALICIOUS_CLAIM = re.compile(
    r"\b(?:is|looks|appears|seems|was|probably|likely)\s+(?:to be\s+)?(?:likely\s+|probably\s+|clearly\s+)?"
    r"(?:malicious|an attack|compromised|an intrusion)\b",
    re.IGNORECASE,
)
_NEGATED_BEFORE = re.compile(r"\b(?:not|never|no|isn't|unlikely|cannot|can't)\W+(?:\w+\W+)?$", re.IGNORECASE)
_STOP = frozenset(
    names(
        "the a an and or of in on to for from with by as at is are was were be been this that it its which "
        "what when where who into over under than then there their they them these those not no yes"
    )
)
_INSTRUCTION_NGRAM = 6
_SAME_NGRAM = 4
#: Share of a field's 6-grams copied from the prompt's prose at which it says nothing of its own.
_COPIED_SHARE = {"summary": 0.5, "verdict_reason": 0.5, "analysis": 0.8}
_FEEDBACK_NGRAM = 5


@dataclass(frozen=True)
class Grounding:
    """What an answer about one alert may state, and what its verdict reason must cite."""

    known: str
    """Lower-cased text of everything the model saw as data: alert, enrichment, entry, evidence."""
    evidence: tuple[Evidence, ...]
    anchors: tuple[str, ...]
    rule: str
    curated: bool
    techniques: frozenset[str]
    other_rules: tuple[str, ...]
    instructions: str
    """The prompt's own instructions (system text): an answer must not read like them."""
    field_names: frozenset[str] = field(default_factory=frozenset)
    entry_text: str = ""
    """The prose the prompt hands over (entry, evidence observations, curated mitigation titles)."""
    malicious_verdict: bool = False
    benign_verdict: bool = False


@dataclass
class SenseReport:
    problems: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)


def grounding(
    ctx: ReportContext,
    base: ReportDraft,
    *,
    instructions: str,
    rules: Iterable[str] = (),
    data_texts: Sequence[str] = (),
) -> Grounding:
    """The grounding of one report; ``data_texts`` are the prompt's data blocks as sent (redacted)."""
    alert, entry = ctx.alert, ctx.entry
    parts = [alert.rule, alert.output, alert.hostname, alert.subject.image, *alert.tags, *data_texts]
    parts += [json.dumps(alert.output_fields, default=str)]
    parts += [ctx.enrichment.model_dump_json(by_alias=True)]
    if entry is not None:
        parts.append(entry.model_dump_json())
    parts += [f"{e.id} {e.observation} {e.value} {e.source}" for e in base.evidence]
    parts += [f"{m.title} {m.description} {m.snippet}" for m in base.mitigations]
    parts += [*base.investigation, base.summary, base.analysis]
    return Grounding(
        known="\n".join(parts).lower(),
        evidence=tuple(base.evidence),
        anchors=tuple(grounding_anchors(alert, ctx.enrichment)),
        rule=alert.rule,
        curated=entry is not None,
        techniques=frozenset(m.technique for m in entry.mitre if m.technique) if entry else frozenset(),
        other_rules=tuple(r for r in rules if r.casefold() != alert.rule.casefold() and len(r) >= 12),
        instructions=instructions,
        field_names=frozenset(k.lower() for k in alert.output_fields) | _ANSWER_FIELDS,
        malicious_verdict=base.verdict == "likely-malicious",
        benign_verdict=base.verdict == "likely-benign",
        entry_text="\n".join([entry.detects, entry.why_it_matters] if entry is not None else [])
        + "".join(f"\n{e.observation}" for e in base.evidence)
        + "".join(f"\n{m.title}" for m in base.mitigations),
    )


def check_sense(answer: LLMAnswer, ground: Grounding, *, echo_of: Sequence[str] = ()) -> SenseReport:
    """Problems (reject) and flags (accept, but count) of one answer; ``echo_of`` = feedback texts."""
    report = SenseReport()
    texts = narrative(answer)
    seen: dict[str, set[tuple[str, ...]]] = {}
    for name, text in texts:
        report.problems += _degenerate(name, text, ground)
        if name in MIN_WORDS:  # the narrative fields must each say something of their own
            own = ngrams(text, _SAME_NGRAM) or {tuple(_WORD.findall(text.lower()))}
            # The same text, or nearly ("searches for files" / "is used to search for files").
            same = next((n for n, grams in seen.items() if len(own & grams) >= 0.6 * len(own)), None)
            if same is not None:
                report.problems.append(f"{name}: the same text as {same}")
            seen.setdefault(name, own)
        report.problems += _echoes(name, text, ground, echo_of)
        report.problems += _unknown_values(name, text, ground)
        report.problems += _rule_claims(name, text, ground)
    report.problems += _reason_problems(answer, ground)
    if ground.evidence and not _cites_evidence(answer.analysis, ground):
        report.flags.append("analysis: cites none of the report's evidence")
    for i, m in enumerate(answer.mitigations):
        result = check_mitigation(m.kind, m.language, m.snippet, title=m.title, description=m.description)
        if result.ok:
            result = validate_snippet(m.kind, m.language, m.snippet)
        if not result.ok:
            report.flags.append(f"mitigations[{i}]: dropped by validation: {'; '.join(result.errors)[:160]}")
    report.problems = list(dict.fromkeys(report.problems))
    return report


def check_narrative(text: str, *, known: str, anchors: Sequence[str], instructions: str) -> list[str]:
    """Problems of an incident narrative: the answer checks that apply to free text about known data."""
    ground = Grounding(
        known=known.lower(),
        evidence=(),
        anchors=tuple(anchors),
        rule=anchors[0] if anchors else "incident",
        curated=False,
        techniques=frozenset(),
        other_rules=(),
        instructions=instructions,
        field_names=_ANSWER_FIELDS,
    )
    problems = _degenerate("narrative", text, ground) + _echoes("narrative", text, ground, ())
    problems += _unknown_values("narrative", text, ground)
    if anchors and not mentions_any(text, anchors):
        problems.append("narrative: names nothing from the incident (no rule, pod or namespace)")
    if injection_markers([text]):
        problems.append("narrative: repeats instruction-like text")
    return problems


def narrative(answer: LLMAnswer) -> list[tuple[str, str]]:
    """The free-text fields the model writes, with their names."""
    out = [
        ("summary", answer.summary),
        ("analysis", answer.analysis),
        ("verdict_reason", answer.verdict_reason),
    ]
    for i, m in enumerate(answer.mitigations):
        out += [(f"mitigations[{i}].title", m.title), (f"mitigations[{i}].description", m.description)]
    return out


# --- degenerate text -------------------------------------------------------------------------


def _degenerate(name: str, text: str, ground: Grounding) -> list[str]:
    prose = _CODE.sub(" ", text).strip()
    words = _WORD.findall(prose.lower())
    bare = prose.lower().strip(" .!*_`'\"")
    if bare in _PLACEHOLDERS or " ".join(words) in _PLACEHOLDERS or prose.strip(" .-_*?!") == "":
        return [f"{name}: a placeholder, not a statement ({short(text)!r})"]
    problems: list[str] = []
    if _JSON_DEBRIS.search(prose):
        problems.append(f"{name}: contains JSON fragments ({short(text)!r})")
    tokens = [t for t in re.split(r"[\s,;|]+", prose.lower().strip(" .:")) if t]
    # Field names or evidence ids strung together (the prompt lists the ids to cite) say nothing.
    listed = ground.field_names | {e.id.lower() for e in ground.evidence}
    if len(tokens) >= 2 and sum(t.strip("`'\".:") in listed for t in tokens) >= 0.6 * len(tokens):
        problems.append(f"{name}: a list of field names, not a statement")
    sentences = [" ".join(_WORD.findall(s.lower())) for s in _SENTENCE_END.split(prose)]
    sentences = [s for s in sentences if len(s.split()) >= 3]
    if len(sentences) != len(set(sentences)):
        problems.append(f"{name}: repeats a sentence")
    minimum = MIN_WORDS.get(name)
    if minimum and len(words) < minimum:
        problems.append(f"{name}: {len(words)} words, fewer than {minimum}")
    return problems


# --- copied instructions or feedback ---------------------------------------------------------


def _echoes(name: str, text: str, ground: Grounding, echo_of: Sequence[str]) -> list[str]:
    problems = []
    shared = ngrams(text, _INSTRUCTION_NGRAM) & ngrams(ground.instructions, _INSTRUCTION_NGRAM)
    if len(shared) >= 2:
        problems.append(f"{name}: repeats the prompt's instructions")
    feedback = set().union(*(ngrams(t, _FEEDBACK_NGRAM) for t in echo_of)) if echo_of else set()
    if feedback & ngrams(text, _FEEDBACK_NGRAM):
        problems.append(f"{name}: repeats the retry feedback")
    # A field that is mostly the prompt's own prose word for word (the entry, the evidence texts, a
    # curated mitigation's title) says nothing the report does not already say.
    share = _COPIED_SHARE.get(name, 0.0)
    own = ngrams(text, _INSTRUCTION_NGRAM) if share else set()
    if own and len(own & ngrams(ground.entry_text, _INSTRUCTION_NGRAM)) >= share * len(own):
        problems.append(f"{name}: copies the knowledge entry instead of describing this alert")
    return problems


def ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


# --- statements about the alert's fields and the rule ----------------------------------------


def _unknown_values(name: str, text: str, ground: Grounding) -> list[str]:
    """Paths, addresses, images and users the answer names that appear nowhere in the data."""
    found: list[tuple[str, str]] = []
    scrubbed = re.sub(r"(?i)\b[a-z][a-z0-9+.-]*://\S+", " ", text)  # URLs are the guard's business
    scrubbed = re.sub(re.escape(ground.rule), " ", scrubbed, flags=re.IGNORECASE)  # "Disallowed K8s User"
    found += [("path", p) for m in _PATH.findall(scrubbed) if len(p := m.rstrip(".,;:")) > 2]
    found += [("address", m) for m in _IPV4.findall(scrubbed)]
    images = _IMAGE.findall(scrubbed) + _IMAGE_AFTER_WORD.findall(scrubbed)
    found += [("image", m.rstrip(".,;:")) for m in images]
    found += [("user", m) for m in _USER.findall(scrubbed) if m.lower() not in _NOT_A_USER]
    problems = []
    for kind, value in dict.fromkeys(found):
        # A whole name, or the start of a longer path ("/dev/shm" of "/dev/shm/.k/x"); not "deploy" of "deployment".
        pattern = r"(?<![\w])" + re.escape(value.lower().rstrip("/")) + r"(?![\w-])"
        if not re.search(pattern, ground.known):
            problems.append(f"{name}: names the {kind} {value!r}, which the alert does not contain")
    return problems


def _rule_claims(name: str, text: str, ground: Grounding) -> list[str]:
    """Claims about what the rule is or maps to that the knowledge base does not make."""
    problems = []
    lowered = text.lower().replace(ground.rule.lower(), " ")  # another rule's name may be part of ours
    for rule in ground.other_rules:
        if rule.lower() in lowered:
            problems.append(f"{name}: attributes the alert to another rule ({rule!r})")
    if ground.curated:
        for technique in _TECHNIQUE.findall(text):
            if technique not in ground.techniques and technique.split(".")[0] not in ground.techniques:
                problems.append(f"{name}: names MITRE technique {technique}, which the rule does not map to")
    return problems


# --- the verdict reason ----------------------------------------------------------------------


def _reason_problems(answer: LLMAnswer, ground: Grounding) -> list[str]:
    reason = answer.verdict_reason
    problems = []
    if ground.evidence and not _cites_evidence(reason, ground):
        problems.append("verdict_reason: cites none of the report's evidence (by id or observed value)")
    strong_malicious = any(e.direction == "malicious" and e.strength == "strong" for e in ground.evidence)
    claims_malicious = answer.verdict in ("suspicious", "likely-malicious") or ground.malicious_verdict
    for m in _BENIGN_CLAIM.finditer(reason):
        if _NEGATED_BEFORE.search(reason[max(0, m.start() - 30) : m.start()]):
            continue
        if strong_malicious or claims_malicious:
            problems.append(
                f"verdict_reason: calls the activity benign ({m.group(0)!r}) against the malicious evidence "
                "or its own verdict"
            )
            break
    # The other way round: a reason for a likely-benign verdict that calls it malicious.
    if ground.benign_verdict and answer.verdict in (None, "likely-benign"):
        for m in _MALICIOUS_CLAIM.finditer(reason):
            if not _NEGATED_BEFORE.search(reason[max(0, m.start() - 30) : m.start()]):
                problems.append(
                    f"verdict_reason: calls the activity malicious ({m.group(0)!r}) against its likely-benign verdict"
                )
                break
    return problems


def _cites_evidence(text: str, ground: Grounding) -> bool:
    lowered = text.lower()
    for e in ground.evidence:
        if e.id.lower() in lowered:
            return True
        if e.value and any(token in lowered for token in salient(e.value)):
            return True
    return False


def salient(value: str) -> list[str]:
    """The parts of an observed value that show it was cited: the whole, or its distinctive tokens."""
    value = value.lower().strip()
    tokens = [value] if len(value) >= 3 else []
    for part in re.split(r"[\s=,;\"'()\[\]]+", value):
        token = part.strip(".:")
        if len(token) >= 3 and token not in _STOP and not token.isdigit():
            tokens.append(token)
    return tokens


def short(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
