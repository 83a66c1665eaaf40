"""The chart's RBAC on a real API server: `helm install`, then the operator's own code as its ServiceAccount.

Nothing runs pods here (no kubelet, no scheduler): the chart is installed with --wait=false, and its
ServiceAccounts are exercised by impersonation (``Impersonate-User: system:serviceaccount:NS:SA``)
and, once, by running the real ``falco-reporter run`` with a token issued for the chart's
ServiceAccount. Allowed calls must succeed, everything else must be refused with 403.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from devcluster.binaries import find_binary
from falco_reporter.knowledge.base import load as load_knowledge
from falco_reporter.kube.client import Kube
from falco_reporter.kube.objects import KubeObjects
from falco_reporter.kube.resources import CustomResources
from falco_reporter.models.falco import normalise, parse_alert_body
from falco_reporter.models.resources import ALERTREPORTS, FALCOALERTS
from falco_reporter.receiver.ingest import IngestConfig, IngestService
from falco_reporter.reconciler.service import AlertReconciler
from falco_reporter.reporting.service import ReportService
from tests.kube_as import KubeAs
from tests.operator_proc import FalcoReporterProcess, post, wait_for

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "falco-reporter"
GROUP, VERSION = "falcoreporter.io", "v1alpha1"


# --- helpers -------------------------------------------------------------------------------------


@dataclass
class Release:
    name: str
    namespace: str
    kubeconfig: Path
    install_output: str

    @property
    def fullname(self) -> str:
        return f"{self.name}-falco-reporter"

    @property
    def operator_user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.fullname}"

    @property
    def receiver_user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.fullname}-receiver"


def helm(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(find_binary("helm")), "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def create_namespace(kube_api: client.ApiClient, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(kube_api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


@pytest.fixture
def install(cluster, namespace, kube_api) -> Iterator[Callable[..., Release]]:
    """Install the chart into the test namespace (unique release name); uninstalled afterwards."""
    installed: list[Release] = []

    def _install(*sets: str) -> Release:
        name = f"fr{uuid.uuid4().hex[:8]}"
        args = ["install", name, str(CHART), "--namespace", namespace, "--wait=false", "--timeout", "120s"]
        for s in sets:
            args += ["--set", s]
        proc = helm(cluster.kubeconfig, *args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        release = Release(name, namespace, Path(cluster.kubeconfig), proc.stdout)
        installed.append(release)
        return release

    yield _install
    for release in installed:
        helm(release.kubeconfig, "uninstall", release.name, "--namespace", release.namespace)


def as_user(kubeconfig: Path, user: str) -> client.ApiClient:
    """An API client that impersonates ``user`` (the admin kubeconfig may impersonate anyone)."""
    api = config.new_client_from_config(config_file=str(kubeconfig))
    api.set_default_header("Impersonate-User", user)
    return api


def status_of(call: Callable[[], Any]) -> int:
    """HTTP status of one API call: 200 when it succeeded, else the error status."""
    try:
        call()
    except ApiException as exc:
        return int(exc.status)
    return 200


def make_workload(kube_api: client.ApiClient, ns: str) -> str:
    """Deployment -> ReplicaSet -> Pod (with owner references, as the controllers would) plus its SA."""
    core, apps = client.CoreV1Api(kube_api), client.AppsV1Api(kube_api)
    core.create_namespaced_service_account(ns, {"metadata": {"name": "web"}})
    labels = {"app": "web"}
    template = {
        "metadata": {"labels": labels},
        "spec": {"serviceAccountName": "web", "containers": [{"name": "web", "image": "nginx:1.27"}]},
    }
    deploy = apps.create_namespaced_deployment(
        ns,
        {
            "metadata": {"name": "web"},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": template},
        },
    )
    owner = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "web",
        "uid": deploy.metadata.uid,
        "controller": True,
    }
    rs = apps.create_namespaced_replica_set(
        ns,
        {
            "metadata": {"name": "web-6d8f7b9c4d", "labels": labels, "ownerReferences": [owner]},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": template},
        },
    )
    pod_owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs.metadata.name, "uid": rs.metadata.uid,
                 "controller": True}  # fmt: skip
    core.create_namespaced_pod(ns, {
        "metadata": {"name": "web-6d8f7b9c4d-x2x7q", "labels": labels, "ownerReferences": [pod_owner]},
        "spec": template["spec"],
    })  # fmt: skip
    return "web-6d8f7b9c4d-x2x7q"


def alert_json(ns: str, pod: str) -> dict[str, Any]:
    raw = json.loads((ROOT / "samples" / "alerts" / "01-terminal-shell-shop-web.json").read_text())
    raw["output_fields"]["k8s.ns.name"] = ns
    raw["output_fields"]["k8s.pod.name"] = pod
    return raw


def run_pipeline(kube: Kube, ns: str, pod: str) -> dict[str, Any]:
    """The receiver's and the reconciler's code path with ``kube``'s identity; returns what happened."""
    spec = normalise(parse_alert_body(json.dumps(alert_json(ns, pod)).encode()))
    alerts, reports, objects = (
        CustomResources(kube, FALCOALERTS),
        CustomResources(kube, ALERTREPORTS),
        KubeObjects(kube),
    )

    async def go() -> dict[str, Any]:
        ingest = IngestService(alerts, objects, IngestConfig(fallback_namespace=ns))
        first = await ingest.ingest(spec)  # placement check (get namespace) + create
        await ingest.ingest(spec)  # a repeat: merged in memory
        await ingest.flush()  # get + status patch (occurrences)
        alert = await alerts.get(first.namespace, first.name)
        reconciler = AlertReconciler(alerts, reports, objects, ReportService(load_knowledge()))
        outcome = await reconciler.reconcile(
            namespace=first.namespace,
            name=first.name,
            uid=alert["metadata"]["uid"],
            generation=1,
            spec=alert["spec"],
            status=alert.get("status") or {},
        )
        # What kopf writes afterwards: the alert's status (subresource) and progress annotations.
        await alerts.patch_status(
            first.namespace, first.name, {"status": {"reportRef": {"name": outcome.report_name}}}
        )
        await alerts.patch(
            first.namespace, first.name, {"metadata": {"annotations": {"falcoreporter.io/test": "done"}}}
        )
        await reports.patch(
            first.namespace, first.name, {"metadata": {"annotations": {"falcoreporter.io/test": "done"}}}
        )
        await reports.patch_status(first.namespace, first.name, {"status": {"observedGeneration": 1}})
        return {
            "result": first,
            "ingest": ingest.stats,
            "outcome": outcome,
            "alert": await alerts.get(ns, first.name),
        }

    async def closing() -> dict[str, Any]:
        try:
            return await go()
        finally:
            await kube.close()

    return asyncio.run(closing())


# --- install -------------------------------------------------------------------------------------


def test_helm_install_succeeds_and_keeps_the_token_on_upgrade(install, kube_api, namespace):
    """`helm install` works on a real API server; `helm upgrade` keeps the generated token (lookup)."""
    release = install()
    core = client.CoreV1Api(kube_api)
    secret = core.read_namespaced_secret(f"{release.fullname}-webhook-token", namespace)
    token = base64.b64decode(secret.data["token"]).decode()
    assert len(token) == 48
    assert f"http://{release.fullname}.{namespace}.svc:8080/v1/alerts" in release.install_output
    deploy = client.AppsV1Api(kube_api).read_namespaced_deployment(release.fullname, namespace)
    assert deploy.spec.strategy.type == "Recreate"
    receiver = client.AppsV1Api(kube_api).read_namespaced_deployment(
        f"{release.fullname}-receiver", namespace
    )
    checksum = receiver.spec.template.metadata.annotations["checksum/token"]
    assert checksum == hashlib.sha256(token.encode()).hexdigest()[:16]
    peering = client.CustomObjectsApi(kube_api).get_cluster_custom_object(
        "kopf.dev", "v1", "clusterkopfpeerings", release.fullname
    )
    assert peering["metadata"]["name"] == release.fullname

    proc = helm(release.kubeconfig, "upgrade", release.name, str(CHART), "--namespace", namespace,
                "--reuse-values", "--wait=false")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    again = core.read_namespaced_secret(f"{release.fullname}-webhook-token", namespace)
    assert base64.b64decode(again.data["token"]).decode() == token
    receiver = client.AppsV1Api(kube_api).read_namespaced_deployment(
        f"{release.fullname}-receiver", namespace
    )
    assert receiver.spec.template.metadata.annotations["checksum/token"] == checksum, (
        "an upgrade must not restart pods"
    )


# --- the operator's ServiceAccount ---------------------------------------------------------------


def test_operator_service_account_can_run_the_whole_code_path(install, cluster, kube_api, namespace):
    """As the chart's ServiceAccount: place and store an alert, merge repeats, enrich it, write its report."""
    release = install()
    pod = make_workload(kube_api, namespace)
    api = as_user(cluster.kubeconfig, release.operator_user)
    try:
        done = run_pipeline(KubeAs(cluster.kubeconfig, release.operator_user), namespace, pod)
        assert done["result"].namespace == namespace
        assert done["result"].created
        assert done["ingest"].flushed_patches == 1
        assert done["ingest"].flush_failures == 0
        assert done["alert"]["status"]["occurrences"]["count"] == 2
        outcome = done["outcome"]
        assert outcome.created
        assert outcome.enrichment.pod_found
        assert (outcome.enrichment.workload.kind, outcome.enrichment.workload.name) == ("Deployment", "web")
        chain = [(o.kind, o.name, o.found) for o in outcome.enrichment.owner_chain]
        assert chain == [("ReplicaSet", "web-6d8f7b9c4d", True), ("Deployment", "web", True)]
        assert outcome.enrichment.service_account == "web"

        custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
        # kopf: cluster-wide list + watch of both resources, CRD discovery, peering keep-alive, events.
        for plural in ("falcoalerts", "alertreports"):
            assert custom.list_cluster_custom_object(GROUP, VERSION, plural)["items"]
            resp = custom.list_cluster_custom_object(GROUP, VERSION, plural, watch=True, timeout_seconds=1,
                                                     _preload_content=False)  # fmt: skip
            assert resp.status == 200
            resp.release_conn()
        assert client.ApiextensionsV1Api(api).list_custom_resource_definition().items
        custom.patch_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", release.fullname,
                                           {"status": {"rbac-test": None}})  # fmt: skip
        assert custom.list_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings")["items"]
        core.create_namespaced_event(namespace, {
            "metadata": {"generateName": "rbac-test-"},
            "involvedObject": {"apiVersion": f"{GROUP}/{VERSION}", "kind": "FalcoAlert", "namespace": namespace,
                               "name": done["result"].name},
            "reason": "Test", "message": "posted as the operator", "type": "Normal",
        })  # fmt: skip
        assert core.list_namespaced_pod(namespace).items
        assert core.list_pod_for_all_namespaces(field_selector="spec.nodeName=node-1").items == []
    finally:
        api.close()


FORBIDDEN: list[tuple[str, Callable[[client.ApiClient, str, Release], Any]]] = [
    ("list secrets", lambda c, ns, r: client.CoreV1Api(c).list_namespaced_secret(ns)),
    ("read the token", lambda c, ns, r: client.CoreV1Api(c).read_namespaced_secret(f"{r.fullname}-webhook-token", ns)),
    ("list secrets everywhere", lambda c, ns, r: client.CoreV1Api(c).list_secret_for_all_namespaces()),
    ("delete a pod", lambda c, ns, r: client.CoreV1Api(c).delete_namespaced_pod("web-6d8f7b9c4d-x2x7q", ns)),
    ("create a pod", lambda c, ns, r: client.CoreV1Api(c).create_namespaced_pod(
        ns, {"metadata": {"name": "x"}, "spec": {"containers": [{"name": "x", "image": "busybox"}]}})),
    ("read pod logs", lambda c, ns, r: client.CoreV1Api(c).read_namespaced_pod_log("web-6d8f7b9c4d-x2x7q", ns)),
    ("patch a deployment", lambda c, ns, r: client.AppsV1Api(c).patch_namespaced_deployment(
        "web", ns, {"spec": {"replicas": 0}})),
    ("delete a FalcoAlert", lambda c, ns, r: client.CustomObjectsApi(c).delete_namespaced_custom_object(
        GROUP, VERSION, ns, "falcoalerts", "anything")),
    ("delete an AlertReport", lambda c, ns, r: client.CustomObjectsApi(c).delete_namespaced_custom_object(
        GROUP, VERSION, ns, "alertreports", "anything")),
    ("list configmaps", lambda c, ns, r: client.CoreV1Api(c).list_namespaced_config_map(ns)),
    ("create a namespace", lambda c, ns, r: client.CoreV1Api(c).create_namespace({"metadata": {"name": "evil"}})),
    ("patch someone else's peering", lambda c, ns, r: client.CustomObjectsApi(c).patch_cluster_custom_object(
        "kopf.dev", "v1", "clusterkopfpeerings", "another-operator", {"status": {}})),
    ("create a ClusterRoleBinding", lambda c, ns, r: client.RbacAuthorizationV1Api(c).create_cluster_role_binding(
        {"metadata": {"name": "evil"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                                   "name": "cluster-admin"},
         "subjects": [{"kind": "User", "name": "evil"}]})),
    ]  # fmt: skip


def test_operator_service_account_is_refused_everything_else(install, cluster, kube_api, namespace):
    """As the chart's ServiceAccount, calls the code never makes are refused with 403."""
    release = install()
    make_workload(kube_api, namespace)
    api = as_user(cluster.kubeconfig, release.operator_user)
    try:
        statuses = {
            what: status_of(lambda call=call: call(api, namespace, release)) for what, call in FORBIDDEN
        }
        assert statuses == dict.fromkeys(statuses, 403)
    finally:
        api.close()


def test_real_operator_works_with_a_service_account_token(install, cluster, kube_api, namespace, tmp_path):
    """`falco-reporter run` authenticated as the chart's ServiceAccount stores, enriches and reports an alert."""
    release = install()
    pod = make_workload(kube_api, namespace)
    core = client.CoreV1Api(kube_api)
    token_request = core.create_namespaced_service_account_token(
        release.fullname, namespace, {"spec": {"expirationSeconds": 3600}}
    )
    admin = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    sa_config = {
        **admin,
        "users": [{"name": "sa", "user": {"token": token_request.status.token}}],
        "contexts": [{"name": "sa", "context": {"cluster": admin["clusters"][0]["name"], "user": "sa"}}],
        "current-context": "sa",
    }
    kubeconfig = tmp_path / "sa-kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(sa_config))
    webhook_token = base64.b64decode(
        core.read_namespaced_secret(f"{release.fullname}-webhook-token", namespace).data["token"]
    ).decode()
    token_file = tmp_path / "token"
    token_file.write_text(webhook_token)
    extra = [
        "--peering",
        release.fullname,
        "--fallback-namespace",
        namespace,
        "--token-file",
        str(token_file),
    ]
    with FalcoReporterProcess(str(kubeconfig), mode="run", extra=extra, log_dir=tmp_path) as operator:
        status, body = post(
            operator.url, alert_json(namespace, pod), headers={"Authorization": f"Bearer {webhook_token}"}
        )
        assert status == 202, body
        custom = client.CustomObjectsApi(kube_api)

        def report() -> dict[str, Any] | None:
            try:
                return custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, "alertreports", body["name"]
                )
            except ApiException:
                return None

        written = wait_for(report, timeout=60, what="the AlertReport")
        assert written["spec"]["subject"]["workload"] == {"kind": "Deployment", "name": "web"}
        wait_for(lambda: (custom.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", release.fullname)
                          .get("status")), timeout=30, what="kopf's keep-alive in the peering object")  # fmt: skip
        time.sleep(1)
        log = operator.log()
    assert f'is forbidden: User "{release.operator_user}"' not in log, log
    assert "Not enough permissions" not in log, log


# --- the separate receiver's ServiceAccount ------------------------------------------------------


def test_separate_receiver_service_account_can_only_ingest(install, cluster, kube_api, namespace):
    """The receiver's own ServiceAccount stores and merges alerts but cannot read pods or write reports."""
    release = install("receiver.separate=true")
    pod = make_workload(kube_api, namespace)
    api = as_user(cluster.kubeconfig, release.receiver_user)
    try:
        kube = KubeAs(cluster.kubeconfig, release.receiver_user)
        spec = normalise(parse_alert_body(json.dumps(alert_json(namespace, pod)).encode()))

        async def go():
            ingest = IngestService(
                CustomResources(kube, FALCOALERTS),
                KubeObjects(kube),
                IngestConfig(fallback_namespace=namespace),
            )
            result = await ingest.ingest(spec)
            await ingest.ingest(spec)
            await ingest.flush()
            await kube.close()
            return result, ingest.stats

        result, stats = asyncio.run(go())
        assert result.created
        assert result.namespace == namespace
        assert stats.flushed_patches == 1
        assert stats.flush_failures == 0
        custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
        assert status_of(lambda: core.read_namespaced_pod(pod, namespace)) == 403
        assert (
            status_of(lambda: custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "alertreports"))
            == 403
        )
        assert status_of(lambda: custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "alertreports", {"apiVersion": f"{GROUP}/{VERSION}", "kind": "AlertReport",
                                                        "metadata": {"name": "x"}, "spec": {}})) == 403  # fmt: skip
        assert status_of(lambda: custom.list_cluster_custom_object(GROUP, VERSION, "falcoalerts")) == 403
        assert status_of(lambda: core.list_namespaced_secret(namespace)) == 403
    finally:
        api.close()


# --- namespaced install --------------------------------------------------------------------------


def test_namespaced_install_confines_the_operator(install, cluster, kube_api, namespace):
    """rbac.namespaced: the ServiceAccount works in the watched namespaces and gets 403 everywhere else."""
    watched, other = create_namespace(kube_api, "watched"), create_namespace(kube_api, "other")
    core = client.CoreV1Api(kube_api)
    try:
        # The receiver embedded: the operator's own identity also does the namespace placement check.
        release = install("rbac.namespaced=true", f"watchNamespaces={{{watched}}}", "receiver.separate=false")
        pod = make_workload(kube_api, watched)
        make_workload(kube_api, other)
        api = as_user(cluster.kubeconfig, release.operator_user)
        try:
            done = run_pipeline(KubeAs(cluster.kubeconfig, release.operator_user), watched, pod)
            assert done["outcome"].created
            assert done["outcome"].enrichment.pod_found
            custom, sa_core = client.CustomObjectsApi(api), client.CoreV1Api(api)
            for ns in (watched, namespace):  # watchNamespaces + the fallback (release) namespace
                assert (
                    status_of(
                        lambda n=ns: custom.list_namespaced_custom_object(GROUP, VERSION, n, "falcoalerts")
                    )
                    == 200
                )
                assert status_of(lambda n=ns: sa_core.read_namespace(n)) == 200
                assert status_of(lambda n=ns: custom.patch_namespaced_custom_object(
                    "kopf.dev", "v1", n, "kopfpeerings", release.fullname, {"status": {"rbac-test": None}})) == 200  # fmt: skip
            assert (
                status_of(lambda: custom.list_namespaced_custom_object(GROUP, VERSION, other, "falcoalerts"))
                == 403
            )
            assert status_of(lambda: sa_core.read_namespaced_pod("web-6d8f7b9c4d-x2x7q", other)) == 403
            assert status_of(lambda: sa_core.read_namespace(other)) == 403
            assert status_of(lambda: custom.list_cluster_custom_object(GROUP, VERSION, "falcoalerts")) == 403
            assert status_of(sa_core.list_pod_for_all_namespaces) == 403
            assert (
                status_of(lambda: custom.list_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings"))
                == 403
            )
        finally:
            api.close()
    finally:
        for ns in (watched, other):
            core.delete_namespace(ns, propagation_policy="Background")


# --- people: the aggregated view role ------------------------------------------------------------


def _aggregated_into_view(kube_api: client.ApiClient, timeout: float = 10.0) -> bool:
    """True when the clusterrole-aggregation controller copied our rules into the built-in `view`."""
    rbac = client.RbacAuthorizationV1Api(kube_api)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rules = rbac.read_cluster_role("view").rules or []
        if any("alertreports" in (r.resources or []) for r in rules):
            return True
        time.sleep(0.5)
    return False


def test_view_binding_reads_reports_in_its_namespace_only(install, cluster, kube_api, namespace):
    """A user bound to `view` in namespace A lists AlertReports there, is refused in B, and cannot review."""
    release = install()
    run_pipeline(Kube(str(cluster.kubeconfig)), namespace, make_workload(kube_api, namespace))
    other = create_namespace(kube_api, "other")
    # The dev cluster runs the clusterrole-aggregation controller, so the built-in view role must
    # have picked up our aggregated rules: bind exactly what a cluster admin would bind.
    assert _aggregated_into_view(kube_api, timeout=20), (
        f"{release.fullname}-view was not aggregated into view"
    )
    role = "view"
    client.RbacAuthorizationV1Api(kube_api).create_namespaced_role_binding(namespace, {
        "metadata": {"name": "alice-view"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}],
    })  # fmt: skip
    api = as_user(cluster.kubeconfig, "alice")
    try:
        custom = client.CustomObjectsApi(api)
        reports = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "alertreports")["items"]
        assert len(reports) == 1
        name = reports[0]["metadata"]["name"]
        assert (
            status_of(
                lambda: custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "falcoalerts", name)
            )
            == 200
        )
        assert (
            status_of(lambda: custom.list_namespaced_custom_object(GROUP, VERSION, other, "alertreports"))
            == 403
        )
        assert status_of(lambda: custom.list_cluster_custom_object(GROUP, VERSION, "alertreports")) == 403
        review = {"spec": {"review": {"state": "false-positive", "by": "alice"}}}
        assert status_of(lambda: custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, "alertreports", name, review)) == 403  # fmt: skip
    finally:
        api.close()
        client.CoreV1Api(kube_api).delete_namespace(other, propagation_policy="Background")


def test_edit_role_allows_reviewing_a_report(install, cluster, kube_api, namespace):
    """A user bound to the chart's edit role may patch spec.review of an AlertReport, but not delete it."""
    release = install()
    run_pipeline(Kube(str(cluster.kubeconfig)), namespace, make_workload(kube_api, namespace))
    client.RbacAuthorizationV1Api(kube_api).create_namespaced_role_binding(namespace, {
        "metadata": {"name": "bob-edit"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": f"{release.fullname}-edit"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bob"}],
    })  # fmt: skip
    api = as_user(cluster.kubeconfig, "bob")
    try:
        custom = client.CustomObjectsApi(api)
        name = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "alertreports")["items"][0][
            "metadata"
        ]["name"]
        patched = custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            "alertreports",
            name,
            {"spec": {"review": {"state": "acknowledged", "by": "bob"}}},
        )
        assert patched["spec"]["review"]["state"] == "acknowledged"
        assert status_of(lambda: custom.delete_namespaced_custom_object(
            GROUP, VERSION, namespace, "alertreports", name)) == 403  # fmt: skip
    finally:
        api.close()
