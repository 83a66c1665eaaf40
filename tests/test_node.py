"""A real node on the local control plane: registered and Ready, Pods scheduled and run, Services routed.

Run with ``make e2e`` (or ``pytest -m node``): needs root, Debian's containerd, runc and CNI plugins
(``hack/node-deps.sh``) and the node binaries (``CLUSTER_BINS_ONLY=node hack/cluster-bins.sh``).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from devcluster.binaries import find_binary
from devcluster.images import PAUSE_IMAGE, import_image, one_layer_image
from devcluster.node import BRIDGE, NODE_NAME, POD_SUBNET, node_processes, pod_netns
from tests.operator_proc import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.node]


def _pod(name: str, *args: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "containers": [
                {"name": "app", "image": PAUSE_IMAGE, "imagePullPolicy": "Never", "args": list(args)}
            ],
            "terminationGracePeriodSeconds": 1,
        },
    }


def _create(core: client.CoreV1Api, ns: str, pod: dict[str, Any]) -> None:
    """Create ``pod`` once the namespace's default ServiceAccount exists (the admission plugin needs it)."""
    wait_for(
        lambda: any(sa.metadata.name == "default" for sa in core.list_namespaced_service_account(ns).items),
        timeout=30,
        what=f"default ServiceAccount in {ns}",
    )
    core.create_namespaced_pod(ns, pod)


def _running(core: client.CoreV1Api, ns: str, name: str) -> client.V1Pod | None:
    pod = core.read_namespaced_pod(name, ns)
    statuses = pod.status.container_statuses or []
    return pod if pod.status.phase == "Running" and statuses and statuses[0].ready else None


def _config_digest(cluster: Any) -> str:
    """sha256 of the pause image's config, read from the archive the node imported."""
    with tarfile.open(cluster.node.paths.root / "images" / "pause.tar") as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        config = tar.extractfile(manifest[0]["Config"]).read()  # type: ignore[union-attr]
    return "sha256:" + hashlib.sha256(config).hexdigest()


def test_node_is_ready(kube_api):
    """The kubelet registered the node and it reports Ready."""
    node = client.CoreV1Api(kube_api).read_node(NODE_NAME)
    ready = next(c for c in node.status.conditions if c.type == "Ready")
    assert ready.status == "True", ready.message
    assert node.status.node_info.container_runtime_version.startswith("containerd://1.")
    assert node.status.node_info.kubelet_version == "v1.36.3"


def test_scheduled_pod_runs_with_real_container_status(cluster, kube_api, namespace):
    """A Pod without nodeName is scheduled, runs, and its status carries containerd's ids."""
    core = client.CoreV1Api(kube_api)
    _create(core, namespace, _pod("sleeper"))
    pod = wait_for(lambda: _running(core, namespace, "sleeper"), timeout=90, what="pod Running and Ready")
    assert pod.spec.node_name == NODE_NAME
    assert pod.status.pod_ip.startswith(POD_SUBNET.rsplit(".", 2)[0] + ".")
    status = pod.status.container_statuses[0]
    assert status.container_id.startswith("containerd://") and len(status.container_id) == 13 + 64
    assert status.image_id == _config_digest(cluster)
    listed = cluster.node.ctr("containers", "ls", "-q").stdout.split()
    assert status.container_id.removeprefix("containerd://") in listed


def test_service_cluster_ip_reaches_the_pod(kube_api, namespace):
    """kube-proxy routes a Service's cluster IP to the pod behind it."""
    core = client.CoreV1Api(kube_api)
    _create(core, namespace, _pod("web", "-listen", ":8080", labels={"app": "web"}))
    service = {
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    ip = core.create_namespaced_service(namespace, service).spec.cluster_ip
    wait_for(lambda: _running(core, namespace, "web"), timeout=90, what="web pod Running")

    def answer() -> str | None:
        try:
            with urllib.request.urlopen(f"http://{ip}/", timeout=2) as resp:
                return str(resp.read().decode().strip())
        except OSError:
            return None

    assert wait_for(answer, timeout=60, what=f"an answer from service IP {ip}") == "web"


def test_pod_reaches_the_api_server_with_in_cluster_config(cluster, kube_api, namespace, tmp_path):
    """A pod authenticates to the API server with its projected token through the kubernetes Service."""
    kubectl = find_binary("kubectl").resolve()
    image = one_layer_image(
        "localhost/falco-reporter/kubectl-test:1",
        {"kubectl": (kubectl.read_bytes(), 0o755)},
        ["/kubectl"],
        tmp_path / "kubectl.tar",
    )
    import_image(cluster.node.ctr, image)
    core = client.CoreV1Api(kube_api)
    pod = _pod("whoami", "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
    pod["spec"]["containers"][0]["image"] = image.name
    pod["spec"]["restartPolicy"] = "Never"
    _create(core, namespace, pod)

    def finished() -> str | None:
        phase = core.read_namespaced_pod("whoami", namespace).status.phase
        return phase if phase in ("Succeeded", "Failed") else None

    phase = wait_for(finished, timeout=90, what="the in-cluster kubectl pod to finish")
    log = core.read_namespaced_pod_log("whoami", namespace)
    assert phase == "Succeeded", log
    assert log.strip() == f"system:serviceaccount:{namespace}:default"


def test_node_teardown_leaves_nothing_behind(cluster, kube_api, namespace):
    """Stopping the node (this test is last: it ends the session's node) removes everything it made."""
    core = client.CoreV1Api(kube_api)
    _create(core, namespace, _pod("last"))
    wait_for(lambda: _running(core, namespace, "last"), timeout=90, what="a pod to tear down")
    root = cluster.node.paths.root
    assert node_processes(root) and pod_netns()
    cluster.node.stop()
    assert node_processes(root) == {}
    assert not [m for m in Path("/proc/self/mountinfo").read_text().splitlines() if f"{root}/" in m]
    assert pod_netns() == []
    assert not Path(f"/sys/class/net/{BRIDGE}").exists()
    chains = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    assert [line for line in chains.splitlines() if "CNI-" in line or "KUBE-" in line] == []
