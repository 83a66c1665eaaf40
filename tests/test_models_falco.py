"""Parsing, normalising and fingerprinting Falco payloads."""

from __future__ import annotations

import json

import pytest

from falco_reporter.models.falco import (
    InvalidAlert,
    fingerprint,
    normalise,
    normalise_time,
    object_name,
    parse_alert_body,
)
from tests.samples import REAL_DIR, REAL_SAMPLES


@pytest.mark.parametrize("path", REAL_SAMPLES, ids=lambda p: p.stem)
def test_every_real_sample_normalises(path):
    """Every real payload is accepted and keeps its rule, priority and output fields."""
    raw = json.loads(path.read_bytes())
    spec = normalise(parse_alert_body(path.read_bytes()))
    assert spec.rule == raw["rule"]
    assert spec.priority.lower() == raw["priority"].lower()
    assert set(spec.output_fields) == set(raw.get("output_fields") or {})
    assert spec.time.endswith("Z") and len(spec.time.split(".")[1]) == 10
    assert object_name(spec).startswith(spec.rule.lower()[:3].replace(" ", "-"))


def test_uint64_value_is_kept_exactly_as_text():
    """A value above int64 is stored as its exact decimal string and named in stringifiedFields."""
    body = (REAL_DIR / "syscall_drop_and_execute_new_binary_in_container.json").read_bytes()
    spec = normalise(parse_alert_body(body))
    assert spec.output_fields["proc.exe_ino.ctime_duration_proc_start"] == "18446744073674092672"
    assert spec.stringified_fields == ["proc.exe_ino.ctime_duration_proc_start"]
    assert spec.output_fields["proc.exe_ino.mtime"] == 5753713823618609594


def test_missing_source_defaults_to_syscall_and_nulls_survive():
    """Old payloads without source/tags/hostname and with null fields are accepted."""
    body = (REAL_DIR / "syscall_terminal_shell_in_container_null_fields_2021.json").read_bytes()
    spec = normalise(parse_alert_body(body))
    assert (spec.source, spec.tags, spec.hostname) == ("syscall", [], "")
    assert spec.output_fields["proc.pname"] is None
    assert spec.subject.namespace == "default" and spec.subject.pod == "alpine"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-04-05T12:43:06.175432268Z", "2026-04-05T12:43:06.175432268Z"),
        ("2026-04-05T12:43:06.1754Z", "2026-04-05T12:43:06.175400000Z"),
        ("2026-04-05T14:43:06.5+02:00", "2026-04-05T12:43:06.500000000Z"),
        (1775392986175432268, "2026-04-05T12:43:06.175432268Z"),
    ],
)
def test_time_normalisation(value, expected):
    """ISO strings of any precision and integer nanoseconds become one RFC 3339 form."""
    assert normalise_time(value) == expected


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"priority": "Notice", "time": "2026-01-01T00:00:00Z"}, "'rule' is required"),
        ({"rule": "x", "priority": "Loud", "time": "2026-01-01T00:00:00Z"}, "'priority' must be one of"),
        ({"rule": "x", "priority": "Notice"}, "'time' is required"),
        ({"rule": "x", "priority": "Notice", "time": "yesterday"}, "not an RFC 3339 time"),
        (
            {"rule": "x", "priority": "Notice", "time": "2026-01-01T00:00:00Z", "output_fields": []},
            "JSON object",
        ),
        ({"rule": "x", "priority": "Notice", "time": "2026-01-01T00:00:00Z", "tags": "a"}, "list of strings"),
    ],
)
def test_invalid_payloads_name_the_problem(payload, message):
    """A payload that is not a Falco alert raises InvalidAlert naming the field."""
    with pytest.raises(InvalidAlert, match=message):
        normalise(payload)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\xff\xfe", "UTF-8"),
        (b"{not json", "not JSON"),
        (b"[1]", "one JSON object"),
        (b"[" * 100000, "nested|not JSON"),
    ],
)
def test_bad_bodies_are_rejected(body, message):
    """Invalid UTF-8, invalid JSON, non-objects and absurd nesting are InvalidAlert, not crashes."""
    with pytest.raises(InvalidAlert, match=message):
        parse_alert_body(body)


def _alert(**fields):
    base = {"rule": "Terminal shell in container", "priority": "Notice", "time": "2026-01-01T00:00:00Z"}
    return normalise(
        {
            **base,
            "output_fields": {"k8s.ns.name": "prod", "k8s.pod.name": "web-1", "proc.name": "sh", **fields},
        }
    )


def test_fingerprint_ignores_time_and_uuid_but_not_the_pod():
    """Repeats merge across time/uuid/cmdline whitespace; another pod is another alert."""
    a = _alert(**{"proc.cmdline": "sh -c  id", "evt.time": 1})
    b = normalise(
        {
            "uuid": "d4c4d1c0-0000-4000-8000-000000000000",
            "rule": "Terminal shell in container",
            "priority": "Notice",
            "time": "2026-02-02T00:00:00Z",
            "output_fields": {
                "k8s.ns.name": "prod",
                "k8s.pod.name": "web-1",
                "proc.name": "sh",
                "proc.cmdline": "sh -c id",
                "evt.time": 2,
            },
        }
    )
    c = _alert(**{"proc.cmdline": "sh -c id", "k8s.pod.name": "web-2"})
    assert fingerprint(a) == fingerprint(b)
    assert fingerprint(a) != fingerprint(c)
    assert object_name(a) == object_name(b) and len(object_name(a)) <= 63


@pytest.mark.parametrize(
    ("state", "suppression", "accepted"),
    [
        ("false-positive", {"rule": "r", "exception": "x"}, True),
        ("acknowledged", {"rule": "r", "exception": "x"}, False),
        ("false-positive", None, False),
        (None, None, False),
    ],
)
def test_accepted_false_positive_needs_the_review_and_the_exception(state, suppression, accepted):
    """A report counts as an accepted false positive only when its review says so and its exception exists."""
    from falco_reporter.models.resources import accepted_false_positive

    report = {"spec": {"review": {"state": state}} if state else {}, "status": {"suppression": suppression}}
    assert accepted_false_positive(report) is accepted
