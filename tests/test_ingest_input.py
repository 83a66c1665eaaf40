"""Hostile and oversized alert input: 400 (InvalidAlert) for malformed bodies, bounded sizes, a
fingerprint that keeps the action's target, and names too long to be Kubernetes names ignored."""

from __future__ import annotations

import json

import pytest

from falco_reporter.models.falco import (
    MAX_VALUE_CHARS,
    InvalidAlert,
    normalise,
    parse_alert_body,
)
from falco_reporter.offline import render_alert
from tests.objects import alert_for

ETCD_LIMIT = 1536 * 1024  # etcd's default request limit, which every stored object must fit


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"rule": "x", "priority": "Notice", "time": "9999-12-31T23:59:59-05:00"}', "out of range"),
        (
            b'{"rule": "x", "priority": "Notice", "time": 0, "output_fields": {"n": ' + b"9" * 5000 + b"}}",
            "unusable",
        ),
        (b'{"rule": "x\\ud800", "priority": "Notice", "time": 0}', "lone surrogate"),
        (
            b'{"rule": "x", "priority": "Notice", "time": 0, "output_fields": {"k": "\\udfff"}}',
            "lone surrogate",
        ),
        (b'{"rule": "x", "rule": "y", "priority": "Notice", "time": 0}', "duplicate key 'rule'"),
    ],
    ids=["time-overflow", "huge-integer", "surrogate-rule", "surrogate-field", "duplicate-key"],
)
def test_malformed_bodies_are_invalid_alerts(body, message):
    """Each of these used to escape as OverflowError/ValueError (a 503) or be accepted; now InvalidAlert (400)."""
    with pytest.raises(InvalidAlert, match=message):
        normalise(parse_alert_body(body))


def test_lone_surrogate_in_a_decoded_payload_is_invalid():
    """normalise() refuses a lone surrogate even when handed a dict directly (render would crash on it)."""
    with pytest.raises(InvalidAlert, match="lone surrogate"):
        normalise(alert_for("shop", "web", **{"proc.cmdline": "cat \ud800"}))


def test_huge_values_are_truncated_with_marker_and_the_report_fits_etcd():
    """A 1 MB command line is cut with a marker naming its length, and its report stays far below etcd's limit."""
    body = json.dumps(alert_for("shop", "web", **{"proc.cmdline": "x" * 1_000_000})).encode()
    spec = normalise(parse_alert_body(body))
    value = spec.output_fields["proc.cmdline"]
    assert len(value) == MAX_VALUE_CHARS and value.endswith("…[truncated, 1000000 chars]")
    assert spec.truncated_fields == ["proc.cmdline"]
    report = render_alert(body, [])
    assert len(json.dumps(report)) < ETCD_LIMIT / 4


def test_many_large_fields_stay_within_the_field_budget():
    """512 fields of 8 KB each: the spec stays small enough for a FalcoAlert and a report."""
    fields = {f"custom.f{i}": "y" * 8192 for i in range(500)}
    payload = alert_for("shop", "web", **fields)
    payload["output"] = "z" * 100_000
    spec = normalise(payload)
    assert len(spec.model_dump_json(by_alias=True)) < 300 * 1024
    assert "output" in spec.truncated_fields and len(spec.truncated_fields) == 501
    report = render_alert(json.dumps(payload).encode(), [])
    assert len(json.dumps(report)) < ETCD_LIMIT


def test_names_kubernetes_cannot_hold_are_not_used_as_keys():
    """A 100 KB namespace or an invalid pod name is not a subject (the alert goes to the fallback)."""
    spec = normalise(alert_for("n" * 100_000, "Not_A_Pod"))
    assert spec.subject.namespace == "" and spec.subject.pod == ""
    ok = normalise(alert_for("shop", "web-7d9f"))
    assert (ok.subject.namespace, ok.subject.pod) == ("shop", "web-7d9f")


def fp(**fields):
    return normalise(alert_for("shop", "web", **{"proc.cmdline": "python app.py", **fields})).fingerprint


def test_fingerprint_keeps_the_file_the_peer_and_the_audit_action():
    """Reading two files, connecting to two servers, or two audit verbs are different alerts."""
    assert fp(**{"fd.name": "/etc/shadow"}) != fp(**{"fd.name": "/root/.ssh/id_rsa"})
    assert fp(**{"fd.sip": "10.0.0.1", "fd.sport": 443}) != fp(**{"fd.sip": "10.0.0.2", "fd.sport": 443})
    assert fp(**{"fd.sip": "10.0.0.1", "fd.sport": 443}) != fp(**{"fd.sip": "10.0.0.1", "fd.sport": 22})
    assert fp(**{"ka.target.resource": "secrets", "ka.verb": "get"}) != fp(
        **{"ka.target.resource": "secrets", "ka.verb": "list"}
    )


def test_fingerprint_ignores_the_client_port_of_a_connection():
    """Repeated connections to one server from new ephemeral ports merge."""
    a = fp(**{"fd.name": "10.1.1.1:40001->10.0.0.1:443"})
    b = fp(**{"fd.name": "10.1.1.1:51234->10.0.0.1:443"})
    assert a == b != fp(**{"fd.name": "10.1.1.1:51234->10.0.0.9:443"})


def test_host_events_of_two_nodes_do_not_merge():
    """container.id=host on two nodes: two alerts; the same node twice: one."""

    def host(node):
        payload = alert_for("", "", **{"container.id": "host", "k8s.pod.name": None, "k8s.ns.name": None})
        payload["hostname"] = node
        return normalise(payload).fingerprint

    assert host("node-a") != host("node-b") and host("node-a") == host("node-a")


def test_secrets_are_redacted_at_ingest_and_the_fields_named():
    """The stored spec holds placeholders, not the password, names the redacted fields, and two
    passwords of one command still merge into one fingerprint."""
    from falco_reporter.receiver.intake import alert_from_body

    def body(password: str) -> bytes:
        payload = alert_for("shop", "db", **{"proc.cmdline": f"mysql -uroot -p{password} shop"})
        payload["output"] = f"09:12:44.120345678: Notice cmd=mysql -uroot -p{password} shop"
        return json.dumps(payload).encode()

    first = alert_from_body(body("S3cretOne"))
    again = alert_from_body(body("S3cretOne"))  # the cached path gives the same answer
    other = alert_from_body(body("An0ther"))
    for spec in (first, again, other):
        stored = spec.model_dump_json(by_alias=True)
        assert "S3cretOne" not in stored and "An0ther" not in stored
        assert spec.redacted_fields == ["output", "proc.cmdline"]
        assert spec.output.startswith("09:12:44.120345678: ")
    assert first == again and first.fingerprint == other.fingerprint
    plain = alert_from_body(json.dumps(alert_for("shop", "db")).encode())
    assert plain.redacted_fields == []
