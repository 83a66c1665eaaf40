"""As users run it: our image from the Dockerfile, ``helm install`` on a real node, alerts through Falcosidekick.

Run with ``make e2e`` (or ``pytest -m node tests/test_e2e.py``): needs root and what test_node.py needs,
plus debootstrap and buildah (``hack/image.sh`` installs them and builds the image without a registry).
The chart is installed with its default values plus the local image and ``pullPolicy: Never``; the
real Falcosidekick runs on the host, its webhook aimed at the receiver Service's cluster IP. The
tests share one release and run in file order: install, alerts, upgrade, uninstall.
``build/e2e/`` receives ``kubectl get pods -A`` and the AlertReport table for ``make e2e`` to print.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import sys
import threading
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from devcluster.binaries import find_binary
from devcluster.images import PAUSE_IMAGE, LocalImage, import_image
from devcluster.sidekick import Falcosidekick, Webhook
from tests import objects as O
from tests.operator_proc import wait_for
from tests.samples import REAL_DIR, REAL_SAMPLES, in_namespace

pytestmark = [pytest.mark.cluster, pytest.mark.node]

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "falco-reporter"
SUMMARY = ROOT / "build" / "e2e"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
IMAGE_REPOSITORY = "localhost/falco-reporter"
RELEASE, RELEASE_NS, WORKLOAD_NS = "falco-reporter", "falco-reporter", "e2e-shop"
# What the README tells users to add to the chart's defaults for an image loaded without a registry.
LOCAL_IMAGE = [
    f"--set=image.repository={IMAGE_REPOSITORY}",
    f"--set=image.tag={VERSION}",
    "--set=image.pullPolicy=Never",
]
SHELL_ALERT = REAL_DIR / "syscall_terminal_shell_in_container_ovh_docs_2024.json"


def run(tool: str, kubeconfig: Path, *args: str, check: bool = True) -> str:
    """``helm`` or ``kubectl`` (ours, from bin/) against ``kubeconfig``; its stdout."""
    out = subprocess.run(
        [str(find_binary(tool)), f"--kubeconfig={kubeconfig}", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert out.returncode == 0 or not check, f"{tool} {' '.join(args)}:\n{out.stdout}\n{out.stderr}"
    return out.stdout


def helm(kubeconfig: Path, *args: str, check: bool = True) -> str:
    return run("helm", kubeconfig, *args, check=check)


def _remove(kube_api: client.ApiClient, kubeconfig: Path, release: str, *namespaces: str) -> None:
    """Keep the pods' logs, uninstall ``release`` and delete ``namespaces`` (whatever exists of them)."""
    core = client.CoreV1Api(kube_api)
    _save_logs(core, namespaces[0])
    helm(kubeconfig, "uninstall", release, "-n", namespaces[0], "--wait", "--timeout=3m", check=False)
    for ns in namespaces:
        with contextlib.suppress(client.ApiException):  # never created, or already gone
            core.delete_namespace(ns, propagation_policy="Background")


@dataclass
class Release:
    """The installed chart: where its receiver Service answers and the token Falcosidekick sends."""

    service_ip: str
    port: int
    token: str

    @property
    def alerts_url(self) -> str:
        return f"http://{self.service_ip}:{self.port}/v1/alerts"


def _token(core: client.CoreV1Api, release: str = RELEASE) -> str:
    """The generated webhook token of ``release`` (installed in the namespace of its name)."""
    secret = core.read_namespaced_secret(f"{release}-webhook-token", release)
    return base64.b64decode(secret.data["token"]).decode()


def _ready_pods(core: client.CoreV1Api, ns: str) -> list[client.V1Pod]:
    pods = core.list_namespaced_pod(ns).items
    return [
        p
        for p in pods
        if p.metadata.deletion_timestamp is None
        and p.status.phase == "Running"
        and all(s.ready for s in p.status.container_statuses or [False])
    ]


def _counted(kube_api: client.ApiClient, *namespaces: str) -> int:
    """Deliveries stored in ``namespaces``: each FalcoAlert counts its merged repeats."""
    alerts = [a for ns in namespaces for a in O.listed(kube_api, "falcoalerts", ns)]
    return sum(int(((a.get("status") or {}).get("occurrences") or {}).get("count") or 1) for a in alerts)


def _save_logs(core: client.CoreV1Api, ns: str) -> None:
    """Every container log of ``ns`` into build/e2e/logs/ (what CI keeps when a test fails)."""
    (SUMMARY / "logs").mkdir(parents=True, exist_ok=True)
    for pod in core.list_namespaced_pod(ns).items:
        try:
            log = core.read_namespaced_pod_log(pod.metadata.name, ns)
        except client.ApiException as exc:
            log = f"no log: {exc.reason}"
        (SUMMARY / "logs" / f"{ns}_{pod.metadata.name}.log").write_text(log)


@pytest.fixture(scope="module")
def image(cluster: Any) -> str:
    """Our image, built from the Dockerfile by hack/image.sh and imported into the node's containerd."""
    out = subprocess.run(
        ["bash", str(ROOT / "hack" / "image.sh")],
        cwd=ROOT,
        env={**os.environ, "PY": sys.executable},
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    name = f"{IMAGE_REPOSITORY}:{VERSION}"
    import_image(cluster.node.ctr, LocalImage(name, ROOT / out.stdout.split()[-1]))
    return name


@pytest.fixture(scope="module")
def release(cluster: Any, kube_api: client.ApiClient, image: str) -> Iterator[Release]:
    """The chart installed with its defaults plus the local image; uninstalled at the end either way."""
    core = client.CoreV1Api(kube_api)
    try:
        helm(
            cluster.kubeconfig,
            *("install", RELEASE, str(CHART), "-n", RELEASE_NS, "--create-namespace"),
            *LOCAL_IMAGE,
            *("--wait", "--timeout=5m"),
        )
        service = core.read_namespaced_service(RELEASE, RELEASE_NS)
        yield Release(service.spec.cluster_ip, service.spec.ports[0].port, _token(core))
    finally:
        _remove(kube_api, cluster.kubeconfig, RELEASE, RELEASE_NS)


@pytest.fixture(scope="module")
def sidekick(release: Release, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Falcosidekick]:
    """The real Falcosidekick on the host, its webhook output aimed at the receiver Service."""
    with Falcosidekick(
        Webhook(release.alerts_url, token=release.token), tmp_path_factory.mktemp("fsk")
    ) as fsk:
        yield fsk


@pytest.fixture(scope="module")
def workload(kube_api: client.ApiClient, release: Release) -> Iterator[client.V1Pod]:
    """A running pod (the pause image) in its own namespace: the subject of the alerts."""
    core = client.CoreV1Api(kube_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=WORKLOAD_NS)))
    wait_for(
        lambda: (
            core.list_namespaced_service_account(WORKLOAD_NS, field_selector="metadata.name=default").items
        ),
        timeout=30,
        what="the default ServiceAccount",
    )
    container = {"name": "app", "image": PAUSE_IMAGE, "imagePullPolicy": "Never"}
    pod = {
        "metadata": {"name": "shop-web"},
        "spec": {"containers": [container], "terminationGracePeriodSeconds": 1},
    }
    core.create_namespaced_pod(WORKLOAD_NS, pod)
    yield wait_for(
        lambda: next(iter(_ready_pods(core, WORKLOAD_NS)), None), timeout=90, what="the workload pod"
    )
    core.delete_namespace(WORKLOAD_NS, propagation_policy="Background")


def test_operator_and_receivers_run_from_our_image_with_their_service_accounts(
    cluster, kube_api, release, image
):
    """Every pod of the release is Running and Ready (its probes pass) on our image, with the chart's ServiceAccount."""
    core = client.CoreV1Api(kube_api)
    pods = core.list_namespaced_pod(RELEASE_NS).items
    components = sorted(p.metadata.labels["app.kubernetes.io/component"] for p in pods)
    assert components == ["operator", "receiver", "receiver"]  # the defaults: a separate receiver, 2 replicas
    assert len(_ready_pods(core, RELEASE_NS)) == 3
    for pod in pods:
        (container,) = pod.spec.containers
        (status,) = pod.status.container_statuses
        assert container.image == image and container.image_pull_policy == "Never"
        # kopf's liveness for the operator; the receivers' readiness decides the Service's endpoints.
        assert container.startup_probe is not None and container.liveness_probe is not None
        receiver = pod.metadata.labels["app.kubernetes.io/component"] == "receiver"
        assert receiver == (container.readiness_probe is not None)
        assert status.restart_count == 0, core.read_namespaced_pod_log(pod.metadata.name, RELEASE_NS)
        assert status.image_id.startswith("sha256:")
        # In-cluster config: the projected ServiceAccount token, no kubeconfig anywhere.
        assert not any("kubeconfig" in a for a in (container.args or []) + (container.command or []))
        assert pod.spec.service_account_name == (f"{RELEASE}-receiver" if receiver else RELEASE)
    SUMMARY.mkdir(parents=True, exist_ok=True)
    (SUMMARY / "pods.txt").write_text(run("kubectl", cluster.kubeconfig, "get", "pods", "-A", "-o", "wide"))


def test_alert_about_a_real_container_is_enriched_from_its_container_status(kube_api, sidekick, workload):
    """Falco's short container id finds the pod; the report's image digest is the one containerd reports."""
    status = workload.status.container_statuses[0]
    container_id = status.container_id.removeprefix("containerd://")
    alert = json.loads(SHELL_ALERT.read_text())
    alert["output_fields"] |= {
        "k8s.ns.name": WORKLOAD_NS,
        "k8s.pod.name": workload.metadata.name,
        "container.id": container_id[:12],  # Falco's short form
        "container.name": status.name,
    }
    assert sidekick.post(json.dumps(alert).encode()) == 200
    stored = wait_for(
        lambda: O.listed(kube_api, "falcoalerts", WORKLOAD_NS), timeout=60, what="the FalcoAlert"
    )
    report = O.wait_report(kube_api, WORKLOAD_NS, stored[0]["metadata"]["name"], timeout=90)
    subject = report["spec"]["subject"]
    assert subject["imageDigest"] == status.image_id and status.image_id.startswith("sha256:")
    assert (subject["pod"], subject["container"], subject["node"]) == (
        workload.metadata.name,
        status.name,
        workload.spec.node_name,
    )
    assert subject["serviceAccount"] == "default"


def test_every_real_alert_through_falcosidekick_is_reported(cluster, kube_api, sidekick, workload):
    """All real payloads pass Falcosidekick and the Service; each becomes a FalcoAlert and an AlertReport."""
    # Alerts naming a namespace are sent naming the workload's; the others go to the fallback (the release's).
    stores = (WORKLOAD_NS, RELEASE_NS)
    before = _counted(kube_api, *stores)
    ok_before = sidekick.deliveries("ok")
    assert {p.name: sidekick.post(in_namespace(p, WORKLOAD_NS)) for p in REAL_SAMPLES} == {
        p.name: 200 for p in REAL_SAMPLES
    }
    taken = len(REAL_SAMPLES)
    wait_for(lambda: sidekick.deliveries("ok") - ok_before >= taken, timeout=120, what=f"{taken} deliveries")
    assert sidekick.deliveries("error") == 0, sidekick.log_text()
    wait_for(lambda: _counted(kube_api, *stores) - before == taken, timeout=60, what="every alert counted")
    for ns in stores:
        for alert in O.listed(kube_api, "falcoalerts", ns):
            O.wait_report(kube_api, ns, alert["metadata"]["name"], timeout=120)
    (SUMMARY / "alertreports.txt").write_text(run("kubectl", cluster.kubeconfig, "get", "alertreports", "-A"))


def test_upgrade_keeps_the_token_and_loses_no_alert(cluster, kube_api, release, sidekick, workload):
    """A helm upgrade that rolls every pod keeps the generated token, and every alert sent meanwhile is stored."""
    core = client.CoreV1Api(kube_api)
    old_pods = {p.metadata.name for p in core.list_namespaced_pod(RELEASE_NS).items}
    before, ok_before = _counted(kube_api, WORKLOAD_NS), sidekick.deliveries("ok")
    body = in_namespace(SHELL_ALERT, WORKLOAD_NS)
    sent: list[int] = []
    done = threading.Event()

    def send() -> None:
        while not done.wait(0.2):  # about 5 alerts a second for the whole upgrade
            sent.append(sidekick.post(body))

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        rollout = uuid.uuid4().hex[:8]
        helm(
            cluster.kubeconfig,
            *("upgrade", RELEASE, str(CHART), "-n", RELEASE_NS, "--reuse-values"),
            f"--set-string=operator.podAnnotations.e2e/rollout={rollout}",
            f"--set-string=receiver.podAnnotations.e2e/rollout={rollout}",
            *("--wait", "--timeout=5m"),
        )
        new_pods = wait_for(
            lambda: {p.metadata.name for p in _ready_pods(core, RELEASE_NS)} - old_pods,
            timeout=120,
            what="the new pods",
        )
    finally:
        done.set()
        sender.join(timeout=30)
    assert len(new_pods) == 3 and sent and set(sent) == {200}
    assert _token(core) == release.token
    taken = len(sent)
    wait_for(lambda: sidekick.deliveries("ok") - ok_before >= taken, timeout=120, what=f"{taken} deliveries")
    assert sidekick.deliveries("error") == 0, sidekick.log_text()
    wait_for(
        lambda: _counted(kube_api, WORKLOAD_NS) - before >= taken, timeout=60, what="every alert counted"
    )
    assert _counted(kube_api, WORKLOAD_NS) - before == taken


def test_uninstall_leaves_the_crds_the_reports_and_the_token(cluster, kube_api, release, workload):
    """helm uninstall removes the pods but keeps the CRDs, every AlertReport and the kept token Secret."""
    reports = O.names(kube_api, "alertreports", WORKLOAD_NS)
    assert reports
    helm(cluster.kubeconfig, "uninstall", RELEASE, "-n", RELEASE_NS, "--wait", "--timeout=3m")
    core = client.CoreV1Api(kube_api)
    wait_for(
        lambda: not core.list_namespaced_pod(RELEASE_NS).items, timeout=120, what="the release's pods gone"
    )
    crds = {
        c.metadata.name for c in client.ApiextensionsV1Api(kube_api).list_custom_resource_definition().items
    }
    assert {"falcoalerts.falcoreporter.io", "alertreports.falcoreporter.io"} <= crds
    assert O.names(kube_api, "alertreports", WORKLOAD_NS) == reports
    assert _token(core) == release.token


# The prometheus-operator CRD the separate-receiver example's ServiceMonitor needs (schema left open:
# only its presence matters to `helm install`).
SERVICE_MONITOR_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
    "spec": {
        "group": "monitoring.coreos.com",
        "names": {"kind": "ServiceMonitor", "plural": "servicemonitors", "singular": "servicemonitor"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                },
            }
        ],
    },
}


def _prepare(kube_api: client.ApiClient, values: Path) -> list[str]:
    """What the example's own comment asks for before installing it; returns the namespaces created."""
    core = client.CoreV1Api(kube_api)
    created = []
    for ns in yaml.safe_load(values.read_text()).get("watchNamespaces") or []:
        if not core.list_namespace(field_selector=f"metadata.name={ns}").items:
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
            created.append(ns)
    extensions = client.ApiextensionsV1Api(kube_api)
    if (
        "serviceMonitor" in values.read_text()
        and not extensions.list_custom_resource_definition(
            field_selector="metadata.name=servicemonitors.monitoring.coreos.com"
        ).items
    ):
        extensions.create_custom_resource_definition(SERVICE_MONITOR_CRD)
    return created


@pytest.mark.parametrize("values", ["values-separate-receiver.yaml", "values-namespaced.yaml"])
def test_example_values_install_and_report(cluster, kube_api, image, values, tmp_path):
    """The documented example values install on the node, their pods become Ready, and an alert is reported."""
    values_file = ROOT / "samples" / values
    created = _prepare(kube_api, values_file)
    name = "falco-reporter-" + values.removeprefix("values-").removesuffix(".yaml")  # = its full name
    core = client.CoreV1Api(kube_api)
    try:
        install = ("install", name, str(CHART), "-n", name, "--create-namespace", "-f", str(values_file))
        helm(cluster.kubeconfig, *install, *LOCAL_IMAGE, "--wait", "--timeout=5m")
        pods = core.list_namespaced_pod(name).items
        assert pods and len(_ready_pods(core, name)) == len(pods)
        service = core.read_namespaced_service(name, name)
        url = f"http://{service.spec.cluster_ip}:{service.spec.ports[0].port}/v1/alerts"
        # A watched namespace, or (cluster-wide) the release's own.
        target = (yaml.safe_load(values_file.read_text()).get("watchNamespaces") or [name])[0]
        with Falcosidekick(Webhook(url, token=_token(core, name)), tmp_path) as fsk:
            assert fsk.post(in_namespace(SHELL_ALERT, target)) == 200
            stored = wait_for(
                lambda: O.listed(kube_api, "falcoalerts", target), timeout=90, what="the FalcoAlert"
            )
            O.wait_report(kube_api, target, stored[0]["metadata"]["name"], timeout=120)
            assert fsk.deliveries("error") == 0, fsk.log_text()
    finally:
        _remove(kube_api, cluster.kubeconfig, name, name, *created)
