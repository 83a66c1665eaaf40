"""Load and index the knowledge base shipped with the package."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import yaml
from pydantic import ValidationError

from falco_reporter.knowledge.model import KnowledgeEntry, Reference

_MITRE_URL = re.compile(r"https://attack\.mitre\.org/(techniques/T\d{4}(/\d{3})?|tactics/TA\d{4})/")


class KnowledgeBaseError(RuntimeError):
    """A knowledge-base file is invalid; the message names the file."""


@dataclass(frozen=True)
class KnowledgeBase:
    entries: dict[str, KnowledgeEntry]
    references: tuple[Reference, ...]
    version: str
    _folded: dict[str, KnowledgeEntry] = field(default_factory=dict, init=False, repr=False, compare=False)
    _urls: frozenset[str] = field(default=frozenset(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Frozen: set the derived indexes once, through object.__setattr__.
        object.__setattr__(self, "_folded", {name.casefold(): e for name, e in self.entries.items()})
        object.__setattr__(self, "_urls", frozenset(str(r.url) for r in self.references))

    def get(self, rule: str) -> KnowledgeEntry | None:
        """The entry for a rule name (exact match first, then case-insensitive)."""
        return self.entries.get(rule) or self._folded.get(rule.casefold())

    def allowed_url(self, url: str) -> bool:
        """True when a report may cite this URL: curated references or a MITRE ATT&CK page."""
        return url in self._urls or bool(_MITRE_URL.fullmatch(url))


def slug(rule: str) -> str:
    """File name stem of a rule's entry."""
    return re.sub(r"[^a-z0-9]+", "-", rule.lower()).strip("-")


@cache
def load() -> KnowledgeBase:
    """Load every entry and the reference allow-list; raise KnowledgeBaseError on a bad file."""
    root = resources.files("falco_reporter.knowledge")
    digest = hashlib.sha256()
    entries: dict[str, KnowledgeEntry] = {}
    for item in sorted(root.joinpath("rules").iterdir(), key=lambda p: p.name):
        if not item.name.endswith(".yaml"):
            continue
        text = item.read_text(encoding="utf-8")
        digest.update(item.name.encode() + b"\0" + text.encode())
        try:
            entry = KnowledgeEntry.model_validate(yaml.safe_load(text))
        except (ValidationError, yaml.YAMLError) as exc:
            raise KnowledgeBaseError(f"{item.name}: {exc}") from exc
        if slug(entry.rule) + ".yaml" != item.name:
            raise KnowledgeBaseError(f"{item.name}: file name does not match rule {entry.rule!r}")
        entries[entry.rule] = entry
    refs_text = root.joinpath("references.yaml").read_text(encoding="utf-8")
    digest.update(refs_text.encode())
    groups = yaml.safe_load(refs_text) or {}
    refs = tuple(Reference.model_validate(r) for group in groups.values() for r in group)
    return KnowledgeBase(entries=entries, references=refs, version=digest.hexdigest()[:12])
