"""Recognise well-known benign actors: Falco's own components, its test tool, common agents."""

from __future__ import annotations

from dataclasses import dataclass

from falco_reporter.models.enrichment import Enrichment
from falco_reporter.models.falco import FalcoAlertSpec


@dataclass(frozen=True)
class KnownActor:
    name: str
    reason: str


# (display name, image repositories, process names, why it trips rules). A repository matches
# whole trailing path components of the alert's image repository (registry and mirror prefixes
# allowed), never a substring: "falcosecurity/falco" must not match "falcosecurity/falcosidekick"
# or an attacker's "evil/falcosecurity/falco-miner".
_ACTORS: tuple[tuple[str, tuple[str, ...], tuple[str, ...], str], ...] = (
    (
        "Falco",
        (
            "falcosecurity/falco",
            "falcosecurity/falco-no-driver",
            "falcosecurity/falco-distroless",
            "falcosecurity/falco-driver-loader",
            "falcosecurity/falco-driver-loader-legacy",
        ),
        ("falco", "falco-driver-loader"),
        "Falco itself and its driver loader read kernel headers, load a kernel module or eBPF probe and "
        "inspect /proc, which several rules flag by design",
    ),
    (
        "falcoctl",
        ("falcosecurity/falcoctl",),
        ("falcoctl",),
        "falcoctl downloads and writes rules and plugin artifacts for Falco",
    ),
    (
        "Falcosidekick",
        ("falcosecurity/falcosidekick",),
        ("falcosidekick",),
        "Falcosidekick forwards Falco alerts and contacts the Kubernetes API and outputs",
    ),
    (
        "Falco event-generator",
        ("falcosecurity/event-generator",),
        ("event-generator",),
        "falcosecurity/event-generator deliberately performs suspicious actions to test that Falco rules fire",
    ),
)

# Infrastructure agents whose normal work matches some rules, keyed by image repository.
_AGENTS: dict[str, str] = {
    "datadog/agent": "Datadog agent",
    "datadoghq/agent": "Datadog agent",  # gcr.io/datadoghq/agent, the Datadog chart's default registry
    "prometheus/node-exporter": "Prometheus node-exporter",
    "fluent/fluent-bit": "Fluent Bit log collector",
    "cilium/cilium": "Cilium CNI agent",
    "calico/node": "Calico CNI agent",
    "amazon-k8s-cni": "AWS VPC CNI",
    "kube-proxy": "kube-proxy",
    "sysdig/agent": "Sysdig agent",
}


def _repository(image: str) -> str:
    """The image's repository: without ``@digest`` and without a ``:tag`` after the last slash."""
    repo = image.split("@", 1)[0]
    head, _, last = repo.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]


def _is(repository: str, known: str) -> bool:
    """True when ``repository`` ends with the whole path components of ``known``."""
    parts, wanted = repository.split("/"), known.split("/")
    return parts[-len(wanted) :] == wanted


def recognise(alert: FalcoAlertSpec, enrichment: Enrichment) -> KnownActor | None:
    """The known actor behind this alert, when image, process or workload identify one."""
    image = (enrichment.container.image or alert.subject.image).lower()
    repository = _repository(image)
    procs = {
        (alert.text("proc.name") or "").lower(),
        (alert.text("proc.pname") or "").lower(),
        (alert.text("proc.exepath") or "").rsplit("/", 1)[-1].lower(),
    } - {""}
    # The image is the stronger evidence: check every actor's images before any process name.
    for name, images, _, why in _ACTORS:
        if any(_is(repository, known) for known in images):
            return KnownActor(name, f"the container image {image!r} is {name}; {why}")
    workload = enrichment.workload.name.lower()
    namespace = (enrichment.namespace or alert.subject.namespace).lower()
    for name, _, names, why in _ACTORS:
        # A process name alone is weak evidence: require Falco's namespace or workload too.
        if procs & set(names) and (namespace == "falco" or workload.startswith(("falco", "event-generator"))):
            return KnownActor(
                name, f"process {sorted(procs & set(names))[0]!r} in {namespace or workload} is {name}; {why}"
            )
    for known, agent in _AGENTS.items():
        if _is(repository, known) and (enrichment.namespace or alert.subject.namespace) in (
            "kube-system",
            "monitoring",
            "datadog",
            "logging",
            "",
        ):
            return KnownActor(
                agent, f"the container image {image!r} is the {agent}, a common infrastructure agent"
            )
    return None
