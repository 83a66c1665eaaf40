"""The local control plane is a real Kubernetes API: objects, status, CRDs, RBAC, versions, GC."""

from __future__ import annotations

import json
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from devcluster.cluster import LocalCluster
from devcluster.crds import apply_crds

pytestmark = pytest.mark.cluster

IMAGE_ID = "docker.io/library/nginx@sha256:" + "3f" * 32
CONTAINER_ID = "containerd://" + "9c" * 32
GROUP = "devcluster.test.falco-reporter.io"


def _pod(name: str) -> dict:
    return {
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
    }


def _gone(read, *args) -> bool:
    try:
        read(*args)
    except ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


def _wait(predicate, timeout: float = 60, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_namespace_and_pod_objects(kube_api, namespace):
    """A Pod created in the fresh namespace is stored and stays Pending (there is no scheduler)."""
    core = client.CoreV1Api(kube_api)
    assert core.read_namespace(namespace).status.phase == "Active"
    core.create_namespaced_pod(namespace, _pod("web-1"))
    pod = core.read_namespaced_pod("web-1", namespace)
    assert pod.spec.containers[0].image == "nginx:1.27"
    assert pod.status.phase == "Pending"
    assert [p.metadata.name for p in core.list_namespaced_pod(namespace, label_selector="app=web").items] == [
        "web-1"
    ]


def test_pod_status_subresource_round_trip(kube_api, namespace):
    """Container statuses patched through pods/status are read back verbatim."""
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_pod(namespace, _pod("web-2"))
    status = {
        "status": {
            "phase": "Running",
            "podIP": "10.244.0.7",
            "containerStatuses": [
                {
                    "name": "web",
                    "image": "nginx:1.27",
                    "imageID": IMAGE_ID,
                    "containerID": CONTAINER_ID,
                    "ready": True,
                    "started": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": "2026-11-23T12:00:00Z"}},
                }
            ],
        }
    }
    core.patch_namespaced_pod_status("web-2", namespace, status)
    pod = core.read_namespaced_pod("web-2", namespace)
    assert pod.status.phase == "Running"
    assert pod.status.pod_ip == "10.244.0.7"
    (cs,) = pod.status.container_statuses
    assert (cs.image_id, cs.container_id, cs.ready) == (IMAGE_ID, CONTAINER_ID, True)
    assert cs.state.running.started_at.isoformat().startswith("2026-11-23T12:00:00")


def test_crd_applied_and_custom_object_validated(kube_api, namespace, kubeconfig, tmp_path):
    """apply_crds serves an inline CRD; the server stores a valid object and rejects an invalid one."""
    suffix = uuid.uuid4().hex[:6]
    plural, kind = f"widgets{suffix}", f"Widget{suffix.upper()}"
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["size"],
                "properties": {"size": {"type": "integer", "minimum": 1}},
            }
        },
    }
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": f"widget{suffix}", "kind": kind},
            "versions": [
                {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": schema}}
            ],
        },
    }
    (tmp_path / "widget.yaml").write_text(yaml.safe_dump(crd))
    applied = apply_crds(kubeconfig, tmp_path)
    assert applied == [f"customresourcedefinition.apiextensions.k8s.io/{plural}.{GROUP}"]
    custom = client.CustomObjectsApi(kube_api)
    try:
        body = {"apiVersion": f"{GROUP}/v1", "kind": kind, "metadata": {"name": "w1"}, "spec": {"size": 3}}
        custom.create_namespaced_custom_object(GROUP, "v1", namespace, plural, body)
        assert custom.get_namespaced_custom_object(GROUP, "v1", namespace, plural, "w1")["spec"] == {
            "size": 3
        }
        bad = {**body, "metadata": {"name": "w2"}, "spec": {"size": 0}}
        with pytest.raises(ApiException) as err:
            custom.create_namespaced_custom_object(GROUP, "v1", namespace, plural, bad)
        assert err.value.status == 422
        assert "spec.size" in err.value.body
    finally:
        client.ApiextensionsV1Api(kube_api).delete_custom_resource_definition(f"{plural}.{GROUP}")


def test_rbac_denies_service_account_until_bound(kube_api, kubeconfig, namespace, cluster):
    """RBAC is enforced: a ServiceAccount is forbidden to list pods until a RoleBinding grants it."""
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "reader"}})
    user = f"system:serviceaccount:{namespace}:reader"
    as_sa = config.new_client_from_config(config_file=str(kubeconfig))
    as_sa.set_default_header("Impersonate-User", user)
    try:
        with pytest.raises(ApiException) as err:
            client.CoreV1Api(as_sa).list_namespaced_pod(namespace)
        assert err.value.status == 403

        rbac = client.RbacAuthorizationV1Api(kube_api)
        rbac.create_namespaced_role(
            namespace,
            {
                "metadata": {"name": "pod-reader"},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
            },
        )
        rbac.create_namespaced_role_binding(
            namespace,
            {
                "metadata": {"name": "reader-pods"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
                "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
            },
        )

        def allowed() -> bool:
            try:
                client.CoreV1Api(as_sa).list_namespaced_pod(namespace)
            except ApiException as exc:
                if exc.status != 403:
                    raise
                return False
            return True

        _wait(allowed, timeout=10, what="RoleBinding to take effect")
    finally:
        as_sa.close()
    kubectl = [
        str(cluster.kubectl),
        "--kubeconfig",
        str(kubeconfig),
        "auth",
        "can-i",
        "-n",
        namespace,
        f"--as={user}",
    ]
    # can-i exits 1 when the answer is "no", so only its output is checked.
    can = [
        subprocess.run([*kubectl, verb, "pods"], capture_output=True, text=True, check=False).stdout.strip()
        for verb in ("list", "delete")
    ]
    assert can == ["yes", "no"]


def test_anonymous_requests_are_refused(cluster):
    """Without the admin client certificate the API server refuses to list namespaces."""
    if not isinstance(cluster, LocalCluster):
        pytest.skip("needs the CA of a LocalCluster")
    anonymous = ssl.create_default_context(cafile=str(cluster.certs.ca_cert))
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{cluster.server}/api/v1/namespaces", context=anonymous, timeout=10)
    assert err.value.code in (401, 403)
    with urllib.request.urlopen(
        f"{cluster.server}/readyz", context=cluster.ssl_context(), timeout=10
    ) as resp:
        assert resp.status == 200


def test_kubectl_and_server_report_v1_36(cluster):
    """bin/kubectl and the API server both report Kubernetes v1.36.x."""
    out = subprocess.run(
        [str(cluster.kubectl), "--kubeconfig", str(cluster.kubeconfig), "version", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    versions = json.loads(out)
    assert versions["clientVersion"]["gitVersion"].startswith("v1.36.")
    assert versions["serverVersion"]["gitVersion"].startswith("v1.36.")


def test_owner_reference_garbage_collection(kube_api, namespace, cluster):
    """Deleting an owner makes kube-controller-manager's garbage collector delete its dependent."""
    if isinstance(cluster, LocalCluster) and "kube-controller-manager" not in cluster.pids:
        pytest.skip("kube-controller-manager binary not built")
    core = client.CoreV1Api(kube_api)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}, "data": {"a": "1"}})
    core.create_namespaced_config_map(
        namespace,
        {
            "metadata": {
                "name": "dependent",
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
                ],
            }
        },
    )
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "bystander"}})
    core.delete_namespaced_config_map("owner", namespace, propagation_policy="Background")
    _wait(
        lambda: _gone(core.read_namespaced_config_map, "dependent", namespace),
        what="dependent to be collected",
    )
    assert core.read_namespaced_config_map("bystander", namespace).metadata.name == "bystander"


def test_namespace_deletion_completes(kube_api):
    """A deleted namespace and its contents really go away (namespace controller)."""
    core = client.CoreV1Api(kube_api)
    name = f"t-ns-delete-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": name}})
    core.create_namespaced_config_map(name, {"metadata": {"name": "content"}})
    core.delete_namespace(name)
    _wait(lambda: _gone(core.read_namespace, name), what=f"namespace {name} to be deleted")


def test_startup_is_quick(cluster):
    """The control plane came up in well under half a minute (measured by LocalCluster)."""
    if not isinstance(cluster, LocalCluster):
        pytest.skip("an existing cluster was not started by the tests")
    assert cluster.startup_seconds is not None
    assert 0 < cluster.startup_seconds < 30


def test_helm_runs_and_reports_its_pinned_version():
    """The helm built from its Go module runs and reports the pinned v3.21.x."""
    from devcluster.binaries import find_binary

    out = subprocess.run(
        [str(find_binary("helm")), "version", "--short"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    assert out.startswith("v3.21.")
