"""Recognise well-known benign actors: Falco's own components, its test tool, common agents."""

from __future__ import annotations

from dataclasses import dataclass

from falco_reporter.models.enrichment import Enrichment
from falco_reporter.models.falco import FalcoAlertSpec


@dataclass(frozen=True)
class KnownActor:
    name: str
    reason: str


# (display name, image repository fragments, process names, why it trips rules)
_ACTORS: tuple[tuple[str, tuple[str, ...], tuple[str, ...], str], ...] = (
    (
        "Falco",
        ("falcosecurity/falco", "falcosecurity/falco-no-driver", "falcosecurity/falco-driver-loader"),
        ("falco", "falco-driver-loader", "falcoctl"),
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

# Infrastructure agents whose normal work matches some rules, keyed by image fragment.
_AGENTS: dict[str, str] = {
    "datadog/agent": "Datadog agent",
    "prometheus/node-exporter": "Prometheus node-exporter",
    "fluent/fluent-bit": "Fluent Bit log collector",
    "cilium/cilium": "Cilium CNI agent",
    "calico/node": "Calico CNI agent",
    "amazon-k8s-cni": "AWS VPC CNI",
    "kube-proxy": "kube-proxy",
    "sysdig/agent": "Sysdig agent",
}


def recognise(alert: FalcoAlertSpec, enrichment: Enrichment) -> KnownActor | None:
    """The known actor behind this alert, when image, process or workload identify one."""
    image = (enrichment.container.image or alert.subject.image).lower()
    procs = {
        (alert.text("proc.name") or "").lower(),
        (alert.text("proc.pname") or "").lower(),
        (alert.text("proc.exepath") or "").rsplit("/", 1)[-1].lower(),
    } - {""}
    for name, images, names, why in _ACTORS:
        if any(fragment in image for fragment in images):
            return KnownActor(name, f"the container image {image!r} is {name}; {why}")
        # A process name alone is weak evidence: require Falco's namespace or workload too.
        workload = enrichment.workload.name.lower()
        namespace = (enrichment.namespace or alert.subject.namespace).lower()
        if procs & set(names) and (namespace == "falco" or workload.startswith(("falco", "event-generator"))):
            return KnownActor(
                name, f"process {sorted(procs & set(names))[0]!r} in {namespace or workload} is {name}; {why}"
            )
    for fragment, agent in _AGENTS.items():
        if fragment in image and (enrichment.namespace or alert.subject.namespace) in (
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
