"""Known benign actors, recognised by exact identity and never by substring.

An actor is identified by its image (registry + repository, exactly one of the registries its
project publishes to), or, for Falco's own pods, by namespace and owning DaemonSet, or, where
the alert carries no image metadata, by its exact executable naming pattern plus its parent.
Anyone who can push an image can name it like Falco: the registry is part of the identity, and
users who mirror images add their mirror with ``--trusted-registry`` (see README).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from falco_reporter.models.report import Evidence
from falco_reporter.reporting.evidence.fields import FieldView

#: Registries the Falco project publishes its images to; "" is Docker Hub written without one.
FALCO_REGISTRIES = ("", "docker.io", "index.docker.io", "registry-1.docker.io", "public.ecr.aws", "ghcr.io")


@dataclass(frozen=True)
class Actor:
    name: str
    why: str
    repositories: tuple[str, ...] = ()
    registries: tuple[str, ...] = FALCO_REGISTRIES
    #: (namespace, DaemonSet/Deployment name) pairs that identify its own pods.
    workloads: tuple[tuple[str, str], ...] = ()
    #: Exact executable-name pattern and a required ancestor, for alerts without image fields.
    exe_pattern: str = ""
    ancestor: str = ""
    #: A test tool performs attacks on purpose: its malicious-looking indicators are expected.
    simulates_attacks: bool = False


ACTORS: tuple[Actor, ...] = (
    Actor(
        "Falco",
        "Falco and its driver loader read kernel headers, load a kernel module or eBPF probe and read /proc",
        (
            "falcosecurity/falco",
            "falcosecurity/falco-no-driver",
            "falcosecurity/falco-distroless",
            "falcosecurity/falco-driver-loader",
            "falcosecurity/falco-driver-loader-legacy",
        ),
        workloads=(("falco", "falco"),),
    ),
    Actor(
        "falcoctl", "falcoctl downloads and writes rules and plugin artifacts", ("falcosecurity/falcoctl",)
    ),
    Actor(
        "Falcosidekick",
        "Falcosidekick forwards alerts and talks to the Kubernetes API",
        ("falcosecurity/falcosidekick",),
        workloads=(("falco", "falco-falcosidekick"),),
    ),
    Actor(
        "Falco event-generator",
        "the event-generator performs suspicious actions on purpose to test that Falco rules fire",
        ("falcosecurity/event-generator",),
        exe_pattern=r"(event-generator|falco-event-generator(-syscall-[A-Za-z]+(-[A-Za-z0-9]+)?)?)",
        ancestor="event-generator",
        simulates_attacks=True,
    ),
)

#: Infrastructure agents whose normal work trips some rules: (registry, repository, namespaces).
AGENTS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("Datadog agent", "gcr.io", "datadoghq/agent", ("datadog", "monitoring", "kube-system")),
    ("Datadog agent", "docker.io", "datadog/agent", ("datadog", "monitoring", "kube-system")),
    ("Prometheus node-exporter", "quay.io", "prometheus/node-exporter", ("monitoring", "kube-system")),
    ("Fluent Bit", "cr.fluentbit.io", "fluent/fluent-bit", ("logging", "monitoring", "kube-system")),
    ("Fluent Bit", "docker.io", "fluent/fluent-bit", ("logging", "monitoring", "kube-system")),
    ("Cilium agent", "quay.io", "cilium/cilium", ("kube-system", "cilium")),
    ("Calico node", "docker.io", "calico/node", ("kube-system", "calico-system")),
    ("kube-proxy", "registry.k8s.io", "kube-proxy", ("kube-system",)),
)


def split_registry(repository: str) -> tuple[str, str]:
    """('docker.io', 'falcosecurity/falco') from 'docker.io/falcosecurity/falco'; '' when none."""
    first, _, rest = repository.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return "", repository


def _docker_hub(registry: str, path: str) -> tuple[str, str]:
    if registry in ("", "index.docker.io", "registry-1.docker.io"):
        return "docker.io", path.removeprefix("library/")
    return registry, path


@dataclass(frozen=True)
class Identity:
    actor: Actor
    evidence: Evidence


def identify(view: FieldView, trusted_registries: tuple[str, ...] = ()) -> Identity | None:
    """The known actor behind this alert when its identity matches exactly, else None."""
    repository = view.get("image.repository")
    registry, path = split_registry(repository) if repository else ("", "")
    for actor in ACTORS:
        if (
            repository
            and path in actor.repositories
            and (registry in actor.registries or registry in trusted_registries)
        ):
            return Identity(
                actor,
                _benign(
                    f"actor-{_slug(actor.name)}",
                    f"The image is {actor.name}'s own ({repository}); {actor.why}.",
                    "image.repository",
                    repository,
                ),
            )
    namespace, kind, workload = view.get("k8s.ns.name"), view.get("workload.kind"), view.get("workload.name")
    for actor in ACTORS:
        if (
            (namespace, workload) in actor.workloads
            and kind in ("DaemonSet", "Deployment")
            and not repository
        ):
            return Identity(
                actor,
                _benign(
                    f"actor-{_slug(actor.name)}",
                    f"The pod belongs to {kind} {namespace}/{workload}, {actor.name}'s own; {actor.why}.",
                    "workload",
                    f"{namespace}/{kind}/{workload}",
                ),
            )
    exe = (view.get("proc.exepath") or view.get("proc.exe")).rsplit("/", 1)[-1] or view.get("proc.name")
    for actor in ACTORS:
        if (
            actor.exe_pattern
            and not repository
            and re.fullmatch(actor.exe_pattern, exe or "")
            and (actor.ancestor in view.values("proc.ancestors") or exe == actor.ancestor)
        ):
            return Identity(
                actor,
                _benign(
                    f"actor-{_slug(actor.name)}",
                    f"The program {exe!r} and its parent "
                    f"{actor.ancestor!r} follow {actor.name}'s exact naming; {actor.why}.",
                    "proc.exepath",
                    exe,
                ),
            )
    hub = _docker_hub(registry, path)
    for name, agent_registry, agent_path, namespaces in AGENTS:
        if repository and hub == _docker_hub(agent_registry, agent_path) and namespace in namespaces:
            return Identity(
                Actor(name, "a common infrastructure agent"),
                _benign(
                    f"agent-{_slug(name)}",
                    f"The image is the {name} ({repository}) in namespace {namespace}, "
                    "a common infrastructure agent.",
                    "image.repository",
                    repository,
                ),
            )
    return None


def _benign(id_: str, observation: str, source: str, value: str) -> Evidence:
    return Evidence(
        id=id_, observation=observation, source=source, value=value, direction="benign", strength="strong"
    )


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
