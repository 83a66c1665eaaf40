"""Fuzzing: property-based tests of alert parsing, and a bounded HTTP fuzz run against a real receiver.

Properties (hypothesis): ``parse_alert_body``/``normalise`` raise nothing but ``InvalidAlert`` for
any input; a valid alert normalises, survives the round trip through JSON and the model, fits the
CRD schema, and normalises again to the same spec; its fingerprint ignores time, uuid, output,
counters and the ids in a command line.

HTTP (1,500 requests, < 60 s): random and mutated real payloads, deep nesting, huge strings near
the body limit, wrong types, invalid UTF-8, 10k fields. Never a 5xx but 503-for-outage, the process
stays up and answers /healthz, its memory stays bounded, and every 202 names a stored FalcoAlert.
"""

from __future__ import annotations

import contextlib
import copy
import http.client
import json
import math
import random
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from kubernetes import client

from falco_reporter.models.falco import (
    PRIORITIES,
    FalcoAlertSpec,
    InvalidAlert,
    normalise,
    parse_alert_body,
)
from tests.objects import GROUP, VERSION
from tests.operator_proc import FalcoReporterProcess
from tests.samples import REAL_SAMPLES

ROOT = Path(__file__).resolve().parent.parent
SPEC_SCHEMA = yaml.safe_load((ROOT / "crds" / "falcoalerts.yaml").read_text())["spec"]["versions"][0][
    "schema"
]["openAPIV3Schema"]["properties"]["spec"]
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- strategies ------------------------------------------------------------------------------

# Any code point, lone surrogates included: JSON escapes ("\\ud800") can carry them.
any_text = st.text(st.characters(exclude_categories=()), max_size=40)
# What a valid alert may hold: any code point except lone surrogates (refused as not text).
valid_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | any_text
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
field_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats(allow_nan=True, allow_infinity=True)
    | valid_text
)
priorities = st.sampled_from([*PRIORITIES, "notice", "WARNING", " info ", "warn", "err", "crit", "emerg"])
times = st.one_of(
    st.builds(
        lambda d, digits: d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond:06d}123"[:digits] + "Z",
        st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1)),
        st.integers(min_value=1, max_value=9),
    ),
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1)).map(
        lambda d: d.strftime("%Y-%m-%dT%H:%M:%S+02:00")
    ),
    st.integers(min_value=0, max_value=2**63 - 1),
)
known_fields = st.fixed_dictionaries(
    {},
    optional={
        "k8s.ns.name": st.none() | st.text(max_size=20),
        "k8s.pod.name": st.none() | st.text(max_size=20),
        "container.id": st.none() | st.text(alphabet="0123456789abcdef", max_size=12),
        "proc.cmdline": st.none() | st.text(max_size=60),
        "proc.name": st.none() | st.text(max_size=15),
        "proc.exepath": st.none() | st.text(max_size=30),
        "ka.target.resource": st.sampled_from(["pods", "secrets"]),
        "ka.target.name": st.text(max_size=20),
        "ka.user.name": st.text(max_size=20),
        "container.image.repository": st.text(max_size=30),
        "container.image.tag": st.text(max_size=10),
    },
)


@st.composite
def valid_alerts(draw: st.DrawFn) -> dict[str, Any]:
    fields = draw(known_fields)
    fields.update(draw(st.dictionaries(st.text(max_size=25), field_scalars, max_size=12)))
    alert: dict[str, Any] = {
        "rule": draw(
            st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=80).filter(
                lambda s: s.strip()
            )
        ),
        "priority": draw(priorities),
        "time": draw(times),
        "output_fields": fields,
    }
    for key, strategy in (
        ("output", st.text(max_size=120)),
        ("hostname", st.text(max_size=30)),
        ("source", st.sampled_from(["syscall", "syscalls", "k8s_audit", "internal", "okta"])),
        ("tags", st.lists(st.text(max_size=15), max_size=6)),
        ("uuid", st.uuids().map(str)),
    ):
        if draw(st.booleans()):
            alert[key] = draw(st.none() | strategy) if key != "uuid" else draw(strategy)
    return alert


# --- properties --------------------------------------------------------------------------------


@PROPERTY
@given(st.binary(max_size=400))
@example(b"\xff\xfe\x00")
@example(b"[" * 100_000)
@example(b'{"rule": "x", "priority": "Notice", "time": NaN}')
def test_parse_alert_body_raises_only_invalid_alert(body):
    """Arbitrary bytes: a dict or InvalidAlert, never another exception."""
    with contextlib.suppress(InvalidAlert):
        assert isinstance(parse_alert_body(body), dict)


@PROPERTY
@given(
    st.dictionaries(st.text(max_size=12), json_values, max_size=6)
    | st.fixed_dictionaries(
        {},
        optional=dict.fromkeys(
            ("rule", "priority", "time", "output", "source", "hostname", "tags", "output_fields"), json_values
        ),
    )
)
@example({"rule": "x", "priority": "Notice", "time": True})
@example({"rule": "x", "priority": "Notice", "time": "2026-02-30T00:00:00Z"})
@example({"rule": "x", "priority": "Notice", "time": -1})
@example({"rule": "x", "priority": "Notice", "time": 0, "output_fields": {str(i): i for i in range(10_000)}})
def test_normalise_raises_only_invalid_alert(payload):
    """Any decoded JSON object: a storable spec or InvalidAlert, never another exception."""
    try:
        spec = normalise(payload)
    except InvalidAlert:
        return
    assert_storable(spec)


@PROPERTY
@given(valid_alerts())
def test_valid_alert_round_trips(payload):
    """A valid alert normalises; the spec survives JSON and the model, fits the CRD schema, and
    normalising it again (as the wire form it would be sent in) gives the same spec and fingerprint."""
    spec = normalise(payload)
    assert_storable(spec)
    body = json.dumps(payload).encode()
    assert normalise(parse_alert_body(body)) == spec
    again = normalise(
        {
            "rule": spec.rule,
            "priority": spec.priority,
            "time": spec.time,
            "output": spec.output,
            "source": spec.source,
            "hostname": spec.hostname,
            "tags": spec.tags,
            "output_fields": spec.output_fields,
        }
    )
    assert again.fingerprint == spec.fingerprint
    assert again.model_dump(exclude={"stringified_fields"}) == spec.model_dump(exclude={"stringified_fields"})
    assert normalise(copy.deepcopy(payload)) == spec  # deterministic


@PROPERTY
@given(
    valid_alerts(),
    times,
    st.text(max_size=80),
    st.integers(min_value=0, max_value=2**40),
    st.uuids(),
    priorities,
)
def test_fingerprint_ignores_time_uuid_output_counters_and_ids(
    payload, when, output, counter, new_id, priority
):
    """Repeats of the same activity merge: time, uuid, output line, priority, counters and ids differ."""
    spec = normalise(payload)
    repeat = copy.deepcopy(payload)
    repeat.update(time=when, output=output, uuid=str(new_id), priority=priority)
    repeat["output_fields"].update({"evt.num": counter, "proc.pid": counter % 65536, "evt.time": counter})
    assert normalise(repeat).fingerprint == spec.fingerprint
    with_ids = copy.deepcopy(payload)
    with_ids["output_fields"]["proc.cmdline"] = f"job  --run {uuid.UUID(int=counter)} --trace {counter:016x}"
    other_ids = copy.deepcopy(with_ids)
    other_ids["output_fields"]["proc.cmdline"] = f"job --run {new_id}   --trace {counter + 1:020x}"
    assert normalise(with_ids).fingerprint == normalise(other_ids).fingerprint


@PROPERTY
@given(valid_alerts(), st.text(min_size=1, max_size=20).filter(lambda s: s.strip()))
def test_fingerprint_changes_with_rule(payload, suffix):
    other = dict(payload, rule=payload["rule"].strip() + "/" + suffix)
    assert normalise(other).fingerprint != normalise(payload).fingerprint


def assert_storable(spec: FalcoAlertSpec) -> None:
    dumped = spec.model_dump(by_alias=True, mode="json")
    text = json.dumps(dumped, allow_nan=False)  # Kubernetes JSON has no NaN/Infinity
    assert FalcoAlertSpec.model_validate(json.loads(text)) == spec
    jsonschema.validate(dumped, SPEC_SCHEMA)
    for value in spec.output_fields.values():
        assert not isinstance(value, int) or -(2**63) <= value <= 2**63 - 1
        assert not isinstance(value, float) or math.isfinite(value)
    assert spec.priority in PRIORITIES and spec.fingerprint and spec.time.endswith("Z")


# --- HTTP fuzz against a real receiver ----------------------------------------------------------

MAX_BODY = 256 * 1024
REQUESTS = 1500
TIME_LIMIT = 60.0


class Mutator:
    """Deterministic generator of hostile request bodies from the real payloads."""

    def __init__(self, namespace: str, seed: int = 20261123) -> None:
        self.rng = random.Random(seed)
        self.namespace = namespace
        self.samples = [json.loads(p.read_bytes()) for p in REAL_SAMPLES]

    def sample(self) -> dict[str, Any]:
        alert = copy.deepcopy(self.rng.choice(self.samples))
        fields = alert.setdefault("output_fields", {}) or {}
        alert["output_fields"] = fields
        fields["k8s.ns.name"] = self.namespace
        fields["k8s.pod.name"] = f"fuzz-{self.rng.randrange(10**9)}"
        alert["time"] = (
            datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=self.rng.randrange(10**8))
        ).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return alert

    def value(self, depth: int = 0) -> Any:
        choices = [
            lambda: None,
            lambda: True,
            lambda: -1,
            lambda: 2**64 + self.rng.randrange(100),
            lambda: 1e308 * 10,
            lambda: float("nan"),
            lambda: "\ud800x",
            self.rng.random,
            lambda: "x" * self.rng.randrange(1, 5000),
        ]
        if depth < 3:
            choices += [lambda: [self.value(depth + 1)], lambda: {"k": self.value(depth + 1)}]
        return self.rng.choice(choices)()

    def body(self) -> bytes:
        r = self.rng.random()
        alert = self.sample()
        if r < 0.25:  # a valid, lightly varied real alert
            return json.dumps(alert).encode()
        if r < 0.45:  # wrong types in the known fields
            key = self.rng.choice(
                ["rule", "priority", "time", "output", "source", "hostname", "tags", "output_fields"]
            )
            alert[key] = self.value()
            return json.dumps(alert, allow_nan=True).encode()
        if r < 0.55:  # wrong types inside output_fields
            for _ in range(self.rng.randrange(1, 6)):
                alert["output_fields"][self.rng.choice([*alert["output_fields"], "new.field"])] = self.value()
            return json.dumps(alert, allow_nan=True).encode()
        if r < 0.65:  # byte-level damage
            raw = bytearray(json.dumps(alert).encode())
            for _ in range(self.rng.randrange(1, 8)):
                op = self.rng.randrange(3)
                pos = self.rng.randrange(len(raw))
                if op == 0:
                    raw[pos] = self.rng.randrange(256)
                elif op == 1:
                    del raw[pos : pos + self.rng.randrange(1, 20)]
                else:
                    raw[pos:pos] = bytes([0xC3, 0x28, 0xFF])  # invalid UTF-8
            return bytes(raw)
        if r < 0.70:  # deep nesting
            depth = self.rng.choice([50, 500, 5000, 50_000])
            alert["output_fields"]["deep"] = "DEEP"
            text = json.dumps(alert)
            return text.replace('"DEEP"', "[" * depth + "1" + "]" * depth).encode()
        if r < 0.75:  # many fields: some over the 512 limit, some at the top level
            count = self.rng.choice([500, 513, 10_000])
            where = alert["output_fields"] if self.rng.random() < 0.5 else alert
            where.update({f"f{i}": i for i in range(count)})
            return json.dumps(alert).encode()
        if r < 0.80:  # huge strings near the body limit
            size = MAX_BODY - len(json.dumps(alert)) - self.rng.choice([200, 50, -10, -5000])
            alert["output"] = "A" * max(1, size)
            return json.dumps(alert).encode()
        if r < 0.85:  # truncated
            raw = json.dumps(alert).encode()
            return raw[: self.rng.randrange(len(raw))]
        if r < 0.88:  # values Python cannot convert, duplicate keys, names no namespace can have
            text = json.dumps(alert)
            return self.rng.choice(
                [
                    text.replace(f'"time": "{alert["time"]}"', '"time": "9999-12-31T23:59:59-05:00"'),
                    text.replace('"output_fields": {', '"output_fields": {"n": ' + "9" * 5000 + ", "),
                    text.replace('"rule":', '"rule": "dup", "rule":'),
                    text.replace(f'"{self.namespace}"', '"' + "n" * 100_000 + '"'),
                ]
            ).encode()
        if r < 0.90:  # random bytes
            return bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(0, 300)))
        if r < 0.95:  # not an object, or empty
            return self.rng.choice([b"", b"null", b"[]", b"42", b'"alert"', b"{}", b"[{}]", b"true"])
        # unicode everywhere
        alert["rule"] = "".join(
            chr(self.rng.randrange(0x20, 0x2FFFF)) for _ in range(self.rng.randrange(1, 60))
        )
        alert["output_fields"]["proc.cmdline"] = "\u202e\u0000\ufeff" + alert["rule"]
        return json.dumps(alert, ensure_ascii=self.rng.random() < 0.5).encode("utf-8", "surrogatepass")


CHUNKED = json.dumps({"rule": "Chunked", "priority": "Notice", "time": "2026-01-01T00:00:00Z"}).encode()
RAW_REQUESTS = [
    b"GARBAGE\r\n\r\n",
    b"POST /v1/alerts HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\n{",
    b'POST /v1/alerts HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"rule"',
    b"POST /v1/alerts HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    + f"{len(CHUNKED):x}\r\n".encode()
    + CHUNKED
    + b"\r\n0\r\n\r\n",
    b"POST /v1/alerts HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnot hex\r\n",
    b"POST /v1/alerts HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"GET /v1/alerts HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /v1/../../etc/passwd HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
    b"POST /v1/alerts HTTP/1.1\r\n" + b"X-Big: " + b"h" * 20000 + b"\r\n\r\n",
    b"POST /v1/alerts HTTP/9.9\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
]


def raw_exchange(port: int, data: bytes) -> int | None:
    """Send raw bytes, return the answer's status (None: the server closed without one)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                answer += chunk
    if not answer.startswith(b"HTTP/"):
        return None
    return int(answer.split(b" ", 2)[1])


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@pytest.mark.cluster
def test_http_fuzz_against_a_real_receiver(cluster, kube_api, namespace, tmp_path):
    """1,500 hostile requests while the API server is up: no 5xx at all, no crash, bounded memory,
    every 202 stored."""
    receiver = FalcoReporterProcess(
        str(cluster.kubeconfig),
        mode="receiver",
        log_dir=tmp_path,
        extra=["--namespace", namespace, "--fallback-namespace", namespace, "--max-body", str(MAX_BODY)],
    ).start()
    assert receiver.proc is not None
    mutator = Mutator(namespace)
    statuses: dict[int, int] = {}
    bad: list[tuple[int, bytes, bytes]] = []
    acked: set[tuple[str, str]] = set()
    conn = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=15)
    started = time.monotonic()
    baseline = 0
    sent = 0
    try:
        for i in range(REQUESTS):
            if time.monotonic() - started > TIME_LIMIT:
                break
            if i == 300:
                baseline = rss_kb(receiver.proc.pid)
            body = mutator.body()
            headers = {
                "Content-Type": mutator.rng.choice(
                    ["application/json", "text/plain", "application/x-www-form"]
                )
            }
            try:
                conn.request("POST", "/v1/alerts", body, headers)
                resp = conn.getresponse()
                raw = resp.read()
            except (OSError, http.client.HTTPException):
                # The server may close a connection after refusing a body (413): reconnect, not a crash.
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=15)
                assert receiver.proc.poll() is None, f"receiver died:\n{receiver.log()}"
                continue
            sent += 1
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
            answer = (
                json.loads(raw or b"{}")
                if resp.getheader("Content-Type", "").startswith("application/json")
                else {}
            )
            if resp.status >= 500:  # the API server is up: no answer may say otherwise
                bad.append((resp.status, body[:200], raw[:300]))
            if resp.status == 202:
                acked.add((answer["namespace"], answer["name"]))
            if i % 250 == 0:
                health = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=2)
                health.request("GET", "/healthz")
                assert health.getresponse().status == 200
                health.close()
        elapsed = time.monotonic() - started
        for raw_request in RAW_REQUESTS:  # malformed HTTP: an answer below 500 or a clean close
            status = raw_exchange(receiver.port, raw_request)
            assert status is None or status < 500, (status, raw_request[:80])
            assert receiver.proc.poll() is None, f"receiver died on {raw_request[:80]!r}"
        grown = rss_kb(receiver.proc.pid) - baseline
        assert receiver.proc.poll() is None, f"receiver died:\n{receiver.log()}"
        assert not bad, f"{len(bad)} unexpected 5xx answers, first: {bad[:3]}"
        assert sent >= 1000 and elapsed < TIME_LIMIT + 15, (sent, elapsed)
        assert statuses.get(202, 0) >= 200 and statuses.get(400, 0) >= 200, statuses
        assert grown < 64 * 1024, f"RSS grew by {grown / 1024:.0f} MB over {sent} requests"
        stored = {
            (namespace, o["metadata"]["name"])
            for o in client.CustomObjectsApi(kube_api).list_namespaced_custom_object(
                GROUP, VERSION, namespace, "falcoalerts"
            )["items"]
        }
        assert acked <= stored, f"{len(acked - stored)} acknowledged alerts are not stored"
    finally:
        conn.close()
        receiver.stop()
