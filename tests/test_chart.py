"""The Helm chart (helm/falco-reporter): lint, render, schema, RBAC shape, security settings, docs.

Everything here runs `helm lint` / `helm template` (bin/helm from `make cluster-bins`); no cluster.
The install on a real API server and the RBAC checks with impersonation are in test_rbac.py.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from devcluster.binaries import find_binary
from falco_reporter.cli import build_parser
from falco_reporter.reporting.llm_config import PROVIDERS, LLMConfig

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "falco-reporter"
RELEASE, NAMESPACE = "falco-reporter", "falco-reporter"
EXAMPLES = sorted(ROOT.glob("samples/values-*.yaml"))
VALUE_SETS = [None, *EXAMPLES]
DOCUMENTED = {
    "values-separate-receiver.yaml",
    "values-namespaced.yaml",
    "values-llm-ollama.yaml",
    "values-tls.yaml",
}


def _id(values: Path | None) -> str:
    return "default" if values is None else values.stem


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(find_binary("helm")), *args], capture_output=True, text=True, timeout=120, check=False
    )


@functools.lru_cache(maxsize=64)
def render(values: Path | None = None, sets: tuple[str, ...] = ()) -> tuple[dict[str, Any], ...]:
    """Objects rendered by `helm template` (cached; treat as read-only)."""
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    if values is not None:
        args += ["-f", str(values)]
    for s in sets:
        args += ["--set", s]
    proc = helm(*args)
    assert proc.returncode == 0, proc.stderr
    return tuple(d for d in yaml.safe_load_all(proc.stdout) if d)


def find(
    objs: tuple[dict[str, Any], ...], kind: str, name: str | None = None, namespace: str | None = None
) -> list[dict[str, Any]]:
    return [
        o
        for o in objs
        if o["kind"] == kind
        and (name is None or o["metadata"]["name"] == name)
        and (namespace is None or o["metadata"].get("namespace") == namespace)
    ]


def one(
    objs: tuple[dict[str, Any], ...], kind: str, name: str | None = None, namespace: str | None = None
) -> dict[str, Any]:
    found = find(objs, kind, name, namespace)
    assert len(found) == 1, f"want exactly one {kind} {name or ''}, got {len(found)}"
    return found[0]


def workloads(objs: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    return find(objs, "Deployment") + find(objs, "StatefulSet")


def pod_specs(objs: tuple[dict[str, Any], ...]) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o["spec"]["template"]["spec"] for o in workloads(objs)}


def container(objs: tuple[dict[str, Any], ...], workload: str) -> dict[str, Any]:
    return pod_specs(objs)[workload]["containers"][0]


EMBEDDED = ("receiver.separate=false",)
RECEIVER = f"{RELEASE}-receiver"


def env_of(c: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


# --- lint and render -----------------------------------------------------------------------------


def test_documented_example_values_files_exist():
    """Every example values file the docs name exists in samples/."""
    assert {p.name for p in EXAMPLES} >= DOCUMENTED


@pytest.mark.parametrize("values", VALUE_SETS, ids=_id)
def test_helm_lint_passes(values):
    """`helm lint --strict` passes with the default values and with each example values file."""
    args = ["lint", "--strict", str(CHART)] + (["-f", str(values)] if values else [])
    proc = helm(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout


@pytest.mark.parametrize("values", VALUE_SETS, ids=_id)
def test_helm_template_renders_an_operator_and_a_service(values):
    """`helm template` renders the operator Deployment and the http Service for each values file."""
    objs = render(values)
    deploy = one(objs, "Deployment", RELEASE)
    assert deploy["spec"]["template"]["spec"]["containers"][0]["args"][0] == "run"
    service = one(objs, "Service", RELEASE)
    assert service["spec"]["ports"] == [
        {
            "name": "http",
            "port": 8080,
            "targetPort": "http",
            "protocol": "TCP",
            **({"appProtocol": "https"} if "tls" in _id(values) else {}),
        }
    ]


def test_hack_helm_lint_script_passes():
    """hack/helm-lint.sh (lint + template of every values file) exits 0."""
    proc = subprocess.run(
        ["bash", str(ROOT / "hack" / "helm-lint.sh")],
        capture_output=True,
        text=True,
        timeout=300,
        env={"HELM": str(find_binary("helm")), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for values in VALUE_SETS:
        assert f"== {_id(values)}" in proc.stdout


@pytest.mark.parametrize("values", VALUE_SETS, ids=_id)
def test_rendered_arguments_are_accepted_by_the_cli(values):
    """Every command line the chart renders parses with falco-reporter's own argument parser."""
    parser = build_parser()
    for name, spec in pod_specs(render(values)).items():
        args = spec["containers"][0]["args"]
        parsed = parser.parse_args(args)
        assert parsed.command in {"run", "receiver"}, name


# --- values.schema.json --------------------------------------------------------------------------


def test_schema_is_draft_07_and_closed_at_the_top():
    """values.schema.json is draft-07 and rejects unknown top-level keys."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["additionalProperties"] is False
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(defaults) <= set(schema["properties"])


@pytest.mark.parametrize(
    ("sets", "field"),
    [
        (["--set-string", "receiver.replicas=three"], "/receiver/replicas"),
        (["--set", "receiver.replicas=0"], "/receiver/replicas"),
        (["--set", "llm.provider=gpt-9000"], "/llm/provider"),
        (["--set", "replicaCount=2"], "replicaCount"),
        (["--set", "llm.temperature=0.9"], "/llm/temperature"),
        (["--set", "operator.logLevel=VERBOSE"], "/operator/logLevel"),
        (["--set", "llm.provider=openai"], "/llm/model"),
        (["--set", "rbac.namespaced=true"], "/watchNamespaces"),
    ],
    ids=[
        "replicas-string",
        "replicas-zero",
        "unknown-provider",
        "unknown-top-level-key",
        "temperature",
        "log-level",
        "provider-without-model",
        "namespaced-without-namespaces",
    ],
)
def test_schema_rejects_bad_values(sets, field):
    """A bad value fails `helm template` with a schema error that names the field."""
    proc = helm("template", RELEASE, str(CHART), *sets)
    assert proc.returncode != 0
    assert "schema" in proc.stderr
    assert field in proc.stderr, proc.stderr


def test_schema_provider_enum_matches_the_code():
    """llm.provider accepts exactly the providers falco_reporter.reporting.llm_config knows."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert set(schema["properties"]["llm"]["properties"]["provider"]["enum"]) == set(PROVIDERS)
    assert {"none", "llamacpp", "ollama", "openai", "anthropic", "azure_openai", "bedrock", "google"} <= set(
        PROVIDERS
    )


# --- CRDs ----------------------------------------------------------------------------------------


def test_chart_crds_are_identical_to_the_generated_ones():
    """helm/falco-reporter/crds/ holds byte-identical copies of crds/*.yaml (cp after `make crds`)."""
    generated = sorted((ROOT / "crds").glob("*.yaml"))
    assert generated
    for path in generated:
        copy = CHART / "crds" / path.name
        assert copy.exists(), f"{copy} missing"
        assert copy.read_bytes() == path.read_bytes(), f"{copy} differs from {path}"


def test_chart_ships_kopf_peering_crds():
    """crds/ also holds kopf's ClusterKopfPeering and KopfPeering CRDs (kopf.dev/v1, status kept as is)."""
    docs = {
        d["metadata"]["name"]: d
        for d in yaml.safe_load_all((CHART / "crds" / "kopf-peerings.yaml").read_text())
        if d
    }
    assert set(docs) == {"clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"}
    for name, scope, kind in [
        ("clusterkopfpeerings.kopf.dev", "Cluster", "ClusterKopfPeering"),
        ("kopfpeerings.kopf.dev", "Namespaced", "KopfPeering"),
    ]:
        spec = docs[name]["spec"]
        assert (spec["group"], spec["scope"], spec["names"]["kind"]) == ("kopf.dev", scope, kind)
        (version,) = spec["versions"]
        assert version["name"] == "v1"
        assert version["served"]
        assert version["storage"]
        status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
        assert status["x-kubernetes-preserve-unknown-fields"] is True
        assert "subresources" not in version, "kopf patches status through the main resource"


# --- workloads -----------------------------------------------------------------------------------


@pytest.mark.parametrize("values", VALUE_SETS, ids=_id)
def test_pods_are_locked_down(values):
    """Every pod runs as 65532 non-root with RuntimeDefault seccomp, a read-only root, no privilege, no caps."""
    for name, spec in pod_specs(render(values)).items():
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert pod["runAsUser"] == 65532, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            assert "add" not in sc["capabilities"], name
            assert sc["runAsNonRoot"] is True, name
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, name
            assert c["resources"]["requests"]["memory"], name
            assert c["resources"]["limits"]["memory"], name
            assert c["livenessProbe"], name
            assert c["startupProbe"], name
            assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"], name
        assert {
            "name": "tmp",
            "emptyDir": {"sizeLimit": spec["volumes"][0]["emptyDir"]["sizeLimit"]},
        } in spec["volumes"]


def test_operator_is_one_replica_recreated_with_peering():
    """The operator Deployment has 1 replica, strategy Recreate, --peering, and its ClusterKopfPeering."""
    objs = render()
    deploy = one(objs, "Deployment", RELEASE)
    assert deploy["spec"]["replicas"] == 1
    assert deploy["spec"]["strategy"] == {"type": "Recreate"}
    args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    assert f"--peering={RELEASE}" in args
    assert one(objs, "ClusterKopfPeering", RELEASE)["apiVersion"] == "kopf.dev/v1"
    env = env_of(container(objs, RELEASE))
    assert env["POD_ID"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_embedded_receiver_with_http_probes():
    """receiver.separate=false: the operator pod serves the receiver: Service selects it, probes hit
    /healthz and /readyz, a preStop delay and the journal on an emptyDir."""
    objs = render(sets=EMBEDDED)
    deploy = one(objs, "Deployment", RELEASE)
    labels = deploy["spec"]["template"]["metadata"]["labels"]
    selector = one(objs, "Service", RELEASE)["spec"]["selector"]
    assert selector.items() <= labels.items()
    c = container(objs, RELEASE)
    assert "--no-receiver" not in c["args"]
    assert "--bind=0.0.0.0:8080" in c["args"]
    assert "--journal-dir=/var/lib/falco-reporter/journal" in c["args"]
    assert c["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}}
    volumes = {v["name"]: v for v in deploy["spec"]["template"]["spec"]["volumes"]}
    assert volumes["journal"] == {"name": "journal", "emptyDir": {"sizeLimit": "512Mi"}}
    assert not find(objs, "Deployment", RECEIVER)
    assert not find(objs, "ServiceMonitor")
    assert not find(objs, "NetworkPolicy")


def test_default_receiver_stays_available_during_rollouts():
    """By default the receiver is its own Deployment: RollingUpdate with maxUnavailable 0, a PDB, a
    preStop delay, a grace period covering the shutdown drain, and the journal on an emptyDir."""
    objs = render()
    receiver = one(objs, "Deployment", RECEIVER)
    assert receiver["spec"]["replicas"] == 2
    assert receiver["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    pod = receiver["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}}
    assert pod["terminationGracePeriodSeconds"] >= 5 + 5 + 20
    assert "--journal-dir=/var/lib/falco-reporter/journal" in c["args"]
    assert "--journal-sync=fsync" in c["args"]
    assert {"name": "journal", "mountPath": "/var/lib/falco-reporter/journal"} in c["volumeMounts"]
    assert {"name": "journal", "emptyDir": {"sizeLimit": "512Mi"}} in pod["volumes"]
    assert one(objs, "PodDisruptionBudget", RECEIVER)["spec"]["minAvailable"] == 1
    assert "--no-receiver" in container(objs, RELEASE)["args"]
    assert not find(objs, "StatefulSet") and not find(objs, "PersistentVolumeClaim")


def test_persistent_journal_makes_a_statefulset_or_one_claim():
    """receiver.journal.persistence.enabled: the separate receiver is a StatefulSet with one journal
    claim per replica; the embedded receiver mounts one PersistentVolumeClaim kept on uninstall."""
    objs = render(sets=("receiver.journal.persistence.enabled=true", "receiver.journal.persistence.size=5Gi"))
    assert not find(objs, "Deployment", RECEIVER)
    sts = one(objs, "StatefulSet", RECEIVER)
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "journal"
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert sts["spec"]["updateStrategy"] == {"type": "RollingUpdate"}
    assert sts["spec"]["serviceName"] == RELEASE
    assert not any(v["name"] == "journal" for v in sts["spec"]["template"]["spec"]["volumes"])
    pdb = one(objs, "PodDisruptionBudget", RECEIVER)
    assert (
        pdb["spec"]["selector"]["matchLabels"].items()
        <= sts["spec"]["template"]["metadata"]["labels"].items()
    )
    embedded = render(sets=(*EMBEDDED, "receiver.journal.persistence.enabled=true"))
    pvc = one(embedded, "PersistentVolumeClaim", f"{RELEASE}-journal")
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    volumes = {v["name"]: v for v in pod_specs(embedded)[RELEASE]["volumes"]}
    assert volumes["journal"]["persistentVolumeClaim"] == {"claimName": f"{RELEASE}-journal"}
    off = render(sets=("receiver.journal.enabled=false",))
    assert not any(a.startswith("--journal") for a in container(off, RECEIVER)["args"])


def test_metrics_token_and_allowed_client_subjects_become_flags():
    """receiver.metricsToken mounts the Secret and passes --metrics-token-file; allowedClientSubjects pass --tls-client-subject."""
    objs = render(
        ROOT / "samples" / "values-tls.yaml",
        sets=(
            "receiver.metricsToken.existingSecret=scrape",
            "receiver.allowedClientSubjects={falcosidekick}",
        ),
    )
    c = container(objs, RECEIVER)
    assert "--metrics-token-file=/etc/falco-reporter/metrics-token/token" in c["args"]
    assert "--tls-client-subject=falcosidekick" in c["args"]
    volumes = {v["name"]: v for v in pod_specs(objs)[RECEIVER]["volumes"]}
    assert volumes["metrics-token"]["secret"]["secretName"] == "scrape"


def test_separate_receiver_has_its_own_deployment_and_pdb():
    """receiver.separate adds a `receiver` Deployment + PDB; the operator gets --no-receiver and kopf liveness."""
    objs = render(ROOT / "samples" / "values-separate-receiver.yaml")
    receiver = one(objs, "Deployment", f"{RELEASE}-receiver")
    assert receiver["spec"]["replicas"] == 3
    rc = receiver["spec"]["template"]["spec"]["containers"][0]
    assert rc["args"][0] == "receiver"
    assert "--token-file=/etc/falco-reporter/token/token" in rc["args"]
    assert receiver["spec"]["template"]["spec"]["serviceAccountName"] == f"{RELEASE}-receiver"
    pdb = one(objs, "PodDisruptionBudget", f"{RELEASE}-receiver")
    assert pdb["spec"]["minAvailable"] == 2
    assert (
        pdb["spec"]["selector"]["matchLabels"].items()
        <= receiver["spec"]["template"]["metadata"]["labels"].items()
    )
    oc = container(objs, RELEASE)
    assert "--no-receiver" in oc["args"]
    assert "--liveness=http://0.0.0.0:8081/healthz" in oc["args"]
    assert not any(a.startswith("--token-file") for a in oc["args"])
    assert oc["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "liveness"}
    assert {"name": "liveness", "containerPort": 8081, "protocol": "TCP"} in oc["ports"]
    selector = one(objs, "Service", RELEASE)["spec"]["selector"]
    operator_labels = one(objs, "Deployment", RELEASE)["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= receiver["spec"]["template"]["metadata"]["labels"].items()
    assert not selector.items() <= operator_labels.items(), "the Service must not send alerts to the operator"


def test_token_secret_is_generated_mounted_and_passed():
    """A random 48-character token Secret exists; the receiver mounts it as a file and gets --token-file."""
    objs = render()
    secret = one(objs, "Secret", f"{RELEASE}-webhook-token")
    token = base64.b64decode(secret["data"]["token"]).decode()
    assert re.fullmatch(r"[A-Za-z0-9]{48}", token)
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    spec = one(objs, "Deployment", RECEIVER)["spec"]["template"]["spec"]
    volume = next(v for v in spec["volumes"] if v["name"] == "token")
    assert volume["secret"]["secretName"] == secret["metadata"]["name"]
    assert volume["secret"]["items"] == [{"key": "token", "path": "token"}]
    c = spec["containers"][0]
    mount = next(m for m in c["volumeMounts"] if m["name"] == "token")
    assert f"--token-file={mount['mountPath']}/token" in c["args"]
    assert "token" not in json.dumps(c.get("env", [])).lower(), "the token is a file, never an env var"
    checksum = one(objs, "Deployment", RECEIVER)["spec"]["template"]["metadata"]["annotations"][
        "checksum/token"
    ]
    assert checksum == hashlib.sha256(token.encode()).hexdigest()[:16], "pods restart when the token changes"


def test_token_can_come_from_an_existing_secret_or_be_disabled():
    """auth.token.existingSecret mounts that Secret without generating one; auth.token.enabled=false drops it."""
    objs = render(sets=("auth.token.existingSecret=my-token", "auth.token.key=bearer"))
    assert not find(objs, "Secret")
    volume = next(v for v in pod_specs(objs)[RECEIVER]["volumes"] if v["name"] == "token")
    assert volume["secret"] == {
        "secretName": "my-token",
        "defaultMode": 0o440,
        "items": [{"key": "bearer", "path": "token"}],
    }
    objs = render(sets=("auth.token.enabled=false",))
    assert not find(objs, "Secret")
    assert not any(a.startswith("--token-file") for a in container(objs, RECEIVER)["args"])


def test_falco_client_secret_carries_the_same_token():
    """falco.clientSecret.create writes WEBHOOK_CUSTOMHEADERS with the very token of the receiver's Secret."""
    objs = render(sets=("falco.clientSecret.create=true",))
    token = base64.b64decode(one(objs, "Secret", f"{RELEASE}-webhook-token")["data"]["token"]).decode()
    client = one(objs, "Secret", "falco-reporter-webhook", namespace="falco")
    assert (
        base64.b64decode(client["data"]["WEBHOOK_CUSTOMHEADERS"]).decode() == f"Authorization:Bearer {token}"
    )


def test_tls_mounts_the_certificate_and_passes_the_flags():
    """tls.* mounts tls.crt/tls.key/ca.crt and passes --tls-cert/--tls-key/--tls-client-ca at those paths."""
    objs = render(ROOT / "samples" / "values-tls.yaml")
    spec = pod_specs(objs)[RECEIVER]
    c = spec["containers"][0]
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert f"--tls-cert={mounts['tls']}/tls.crt" in c["args"]
    assert f"--tls-key={mounts['tls']}/tls.key" in c["args"]
    assert f"--tls-client-ca={mounts['client-ca']}/ca.crt" in c["args"]
    assert volumes["tls"]["secret"]["secretName"] == f"{RELEASE}-tls"
    assert {i["key"] for i in volumes["tls"]["secret"]["items"]} == {"tls.crt", "tls.key"}
    assert volumes["client-ca"]["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}]
    cert = one(objs, "Certificate", RELEASE, namespace=NAMESPACE)
    assert cert["spec"]["secretName"] == f"{RELEASE}-tls"
    assert f"{RELEASE}.{NAMESPACE}.svc" in cert["spec"]["dnsNames"]
    client = one(objs, "Certificate", f"{RELEASE}-client", namespace="falco")
    assert client["spec"]["usages"] == ["client auth"]
    # The kubelet has no client certificate: the receiver's probes are TCP connects.
    assert c["livenessProbe"]["tcpSocket"] == {"port": "http"}
    assert c["readinessProbe"] == {
        "tcpSocket": {"port": "http"},
        "failureThreshold": 3,
        "periodSeconds": 10,
        "timeoutSeconds": 5,
    }


def test_tls_without_a_secret_fails_clearly():
    """tls.enabled without tls.secretName or cert-manager fails with a message naming the fix."""
    proc = helm("template", RELEASE, str(CHART), "--set", "tls.enabled=true")
    assert proc.returncode != 0
    assert "tls.secretName" in proc.stderr


def test_llm_settings_become_env_vars_the_code_accepts():
    """llm.* renders FALCO_REPORTER_LLM_* that LLMConfig.from_env accepts, with the API key from a Secret."""
    objs = render(ROOT / "samples" / "values-llm-ollama.yaml", ("llm.apiKey.existingSecret=llm-api-key",))
    env = env_of(container(objs, RELEASE))
    assert env["LLM_API_KEY"] == {"secretKeyRef": {"name": "llm-api-key", "key": "api-key"}}
    assert env["FALCO_REPORTER_LLM_API_KEY_ENV"] == "LLM_API_KEY"
    resolved = {k: v for k, v in env.items() if isinstance(v, str)} | {"LLM_API_KEY": "from-the-secret"}
    config = LLMConfig.from_env(resolved)
    assert (config.provider, config.model, config.base_url) == (
        "ollama",
        "qwen2.5:7b-instruct",
        "http://ollama.ollama.svc.cluster.local:11434",
    )
    assert config.api_key == "from-the-secret"
    assert config.concurrency == 2
    assert env_of(container(render(), RELEASE))["FALCO_REPORTER_LLM_PROVIDER"] == "none"


def test_llamacpp_needs_a_model_path():
    """llm.provider=llamacpp without llm.modelPath is refused at install time."""
    proc = helm("template", RELEASE, str(CHART), "--set", "llm.provider=llamacpp")
    assert proc.returncode != 0
    assert "modelPath" in proc.stderr


# --- RBAC ----------------------------------------------------------------------------------------


def _rules(role: dict[str, Any]) -> set[tuple[str, str, str, tuple[str, ...]]]:
    """(apiGroup, resource, verb, resourceNames) for every grant of a role."""
    return {
        (g, r, v, tuple(rule.get("resourceNames", ())))
        for rule in role["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }


OPERATOR_GRANTS = {
    ("", "pods", "get"),
    ("", "pods", "list"),
    *{("apps", r, "get") for r in ("replicasets", "deployments", "statefulsets", "daemonsets")},
    ("batch", "jobs", "get"),
    ("batch", "cronjobs", "get"),
    ("", "replicationcontrollers", "get"),
    ("", "serviceaccounts", "get"),
    *{
        ("falcoreporter.io", r, v)
        for r in ("falcoalerts", "alertreports")
        for v in ("create", "get", "list", "watch", "patch")
    },
    *{
        ("falcoreporter.io", f"{r}/status", v)
        for r in ("falcoalerts", "alertreports")
        for v in ("patch", "update")
    },
    ("", "events", "create"),
    ("", "events", "patch"),
}


def test_operator_cluster_role_is_exactly_what_the_code_calls():
    """The operator's ClusterRole grants the calls in kube/*.py plus kopf's needs, and nothing else
    (with the receiver embedded; a separate receiver's namespace check is in its own role)."""
    assert ("", "namespaces", "get", ()) not in _rules(one(render(), "ClusterRole", RELEASE))
    role = one(render(sets=EMBEDDED), "ClusterRole", RELEASE)
    grants = _rules(role)
    expected = {(*g, ()) for g in OPERATOR_GRANTS} | {
        ("", "namespaces", "get", ()),
        # Enrichment: whether Falco's hostname names a Node (cluster-wide installs only).
        ("", "nodes", "get", ()),
        ("apiextensions.k8s.io", "customresourcedefinitions", "list", ()),
        ("apiextensions.k8s.io", "customresourcedefinitions", "watch", ()),
        ("kopf.dev", "clusterkopfpeerings", "list", ()),
        ("kopf.dev", "clusterkopfpeerings", "watch", ()),
        ("kopf.dev", "clusterkopfpeerings", "get", (RELEASE,)),
        ("kopf.dev", "clusterkopfpeerings", "patch", (RELEASE,)),
    }
    assert grants == expected


@pytest.mark.parametrize("values", VALUE_SETS, ids=_id)
def test_no_role_grants_secrets_deletes_or_wildcards(values):
    """No rendered (Cluster)Role touches Secrets, deletes anything, or uses a wildcard."""
    for role in find(render(values), "ClusterRole") + find(render(values), "Role"):
        for group, resource, verb, _ in _rules(role):
            assert resource != "secrets", role["metadata"]["name"]
            assert verb not in {"delete", "deletecollection", "escalate", "bind", "impersonate", "*"}, role[
                "metadata"
            ]["name"]
            assert "*" not in (group, resource), role["metadata"]["name"]


def test_separate_receiver_service_account_can_only_ingest():
    """With a separate receiver its ClusterRole allows: get namespaces, create/get FalcoAlerts, patch their status."""
    objs = render(ROOT / "samples" / "values-separate-receiver.yaml")
    assert _rules(one(objs, "ClusterRole", f"{RELEASE}-receiver")) == {
        ("", "namespaces", "get", ()),
        ("falcoreporter.io", "falcoalerts", "create", ()),
        ("falcoreporter.io", "falcoalerts", "get", ()),
        ("falcoreporter.io", "falcoalerts/status", "patch", ()),
    }
    binding = one(objs, "ClusterRoleBinding", f"{RELEASE}-receiver")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": f"{RELEASE}-receiver", "namespace": NAMESPACE}
    ]
    assert ("", "namespaces", "get", ()) not in _rules(one(objs, "ClusterRole", RELEASE))


def test_aggregated_view_and_edit_roles():
    """<fullname>-view (read) and -edit (+ patch/update alertreports) carry the aggregation labels."""
    objs = render()
    view, edit = one(objs, "ClusterRole", f"{RELEASE}-view"), one(objs, "ClusterRole", f"{RELEASE}-edit")
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert "rbac.authorization.k8s.io/aggregate-to-view" not in edit["metadata"]["labels"]
    read = {
        ("falcoreporter.io", r, v, ())
        for r in ("falcoalerts", "alertreports")
        for v in ("get", "list", "watch")
    }
    assert _rules(view) == read
    assert _rules(edit) == read | {("falcoreporter.io", "alertreports", v, ()) for v in ("patch", "update")}


def test_namespaced_mode_uses_roles_in_watched_namespaces_only():
    """rbac.namespaced: Roles in each watched namespace, --namespace for each, a KopfPeering in each."""
    objs = render(ROOT / "samples" / "values-namespaced.yaml")
    watched = ["shop", "payments", NAMESPACE]
    roles = find(objs, "Role", RELEASE)
    assert sorted(r["metadata"]["namespace"] for r in roles) == sorted(watched)
    for role in roles:
        assert _rules(role) == {(*g, ()) for g in OPERATOR_GRANTS} | {
            ("kopf.dev", "kopfpeerings", "list", ()),
            ("kopf.dev", "kopfpeerings", "watch", ()),
            ("kopf.dev", "kopfpeerings", "get", (RELEASE,)),
            ("kopf.dev", "kopfpeerings", "patch", (RELEASE,)),
        }
    assert sorted(b["metadata"]["namespace"] for b in find(objs, "RoleBinding", RELEASE)) == sorted(watched)
    # The only cluster-scoped grant: get on exactly the watched Namespace objects (plus the aggregated roles).
    cluster_roles = {r["metadata"]["name"]: r for r in find(objs, "ClusterRole")}
    assert set(cluster_roles) == {f"{RELEASE}-namespaces", f"{RELEASE}-view", f"{RELEASE}-edit"}
    assert _rules(cluster_roles[f"{RELEASE}-namespaces"]) == {("", "namespaces", "get", tuple(watched))}
    args = container(objs, RELEASE)["args"]
    assert [a for a in args if a.startswith("--namespace=")] == [f"--namespace={n}" for n in watched]
    assert sorted(p["metadata"]["namespace"] for p in find(objs, "KopfPeering", RELEASE)) == sorted(watched)
    assert not find(objs, "ClusterKopfPeering")


# --- optional objects ----------------------------------------------------------------------------


def test_service_monitor_only_when_enabled():
    """A monitoring.coreos.com/v1 ServiceMonitor for /metrics on port http exists only when enabled."""
    assert not find(render(), "ServiceMonitor")
    sm = one(render(sets=("metrics.serviceMonitor.enabled=true",)), "ServiceMonitor", RELEASE)
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["spec"]["endpoints"][0]["port"] == "http"
    assert sm["spec"]["endpoints"][0]["path"] == "/metrics"
    service = one(render(), "Service", RELEASE)
    assert sm["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()


def test_network_policy_admits_only_falco_namespace():
    """The NetworkPolicy selects the receiver pods and admits port http from Falco's namespace only."""
    objs = render(sets=("networkPolicy.enabled=true",))
    policy = one(objs, "NetworkPolicy")
    labels = one(objs, "Deployment", RECEIVER)["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert rule["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "falco"}}}]
    custom = one(
        render(
            sets=(
                "networkPolicy.enabled=true",
                "networkPolicy.falcoNamespaceSelector.matchLabels.team=sec",
                "networkPolicy.falcoPodSelector.matchLabels.app=falcosidekick",
            )
        ),
        "NetworkPolicy",
    )
    assert custom["spec"]["ingress"][0]["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"team": "sec"}},
            "podSelector": {"matchLabels": {"app": "falcosidekick"}},
        }
    ]


def test_labels_are_standard():
    """Every rendered object carries the app.kubernetes.io name/instance/version/managed-by/part-of labels."""
    for obj in render(ROOT / "samples" / "values-separate-receiver.yaml"):
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "falco-reporter", obj["kind"]
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/version"] == "0.1.0"
        assert labels["app.kubernetes.io/part-of"] == "falco-reporter"


# --- NOTES.txt and the Falco-side samples -------------------------------------------------------


def _notes(tmp_path: Path, *sets: str) -> str:
    """NOTES.txt as `helm install` prints it (rendered offline: helm template never renders NOTES.txt)."""
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    (chart / "templates" / "NOTES.txt").rename(chart / "notes-src.txt")
    (chart / "templates" / "zz-notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n"
        '  notes: {{ tpl (.Files.Get "notes-src.txt") . | quote }}\n'
    )
    args = [
        "template",
        RELEASE,
        str(chart),
        "--namespace",
        NAMESPACE,
        "--show-only",
        "templates/zz-notes.yaml",
    ]
    for s in sets:
        args += ["--set", s]
    proc = helm(*args)
    assert proc.returncode == 0, proc.stderr
    shutil.rmtree(chart)
    return str(yaml.safe_load(proc.stdout)["data"]["notes"])


def test_notes_print_the_falco_chart_values(tmp_path):
    """NOTES.txt prints the webhook address, the customHeaders line, the kubectl token command and http_output."""
    notes = _notes(tmp_path)
    url = f"http://{RELEASE}.{NAMESPACE}.svc:8080/v1/alerts"
    assert f'address: "{url}"' in notes
    assert 'customHeaders: "Authorization:Bearer <TOKEN>"' in notes
    assert (
        f"kubectl -n {NAMESPACE} get secret {RELEASE}-webhook-token -o jsonpath='{{.data.token}}' | base64 -d"
    ) in notes
    assert "http_output:" in notes
    assert f'url: "{url}"' in notes
    assert '--set-string "falcosidekick.config.webhook.customHeaders=Authorization:Bearer ${TOKEN}"' in notes
    tls = _notes(
        tmp_path, "tls.enabled=true", "tls.secretName=t", "tls.clientAuth=true", "auth.token.enabled=false"
    )
    assert f'url: "https://{RELEASE}.{NAMESPACE}.svc:8080/v1/alerts"' in tls
    assert "mtls: true" in tls
    assert "get secret" not in tls


def test_falco_values_sample_points_at_the_service():
    """samples/falco-values.yaml enables Falcosidekick's webhook to the default release's Service with the token header."""
    values = yaml.safe_load((ROOT / "samples" / "falco-values.yaml").read_text())
    assert values["falcosidekick"]["enabled"] is True
    webhook = values["falcosidekick"]["config"]["webhook"]
    service = one(render(), "Service", RELEASE)
    port = service["spec"]["ports"][0]["port"]
    assert (
        webhook["address"]
        == f"http://{service['metadata']['name']}.{service['metadata']['namespace']}.svc:{port}/v1/alerts"
    )
    header, _, value = webhook["customHeaders"].partition(":")
    assert header == "Authorization"
    assert value.startswith("Bearer ")
    assert ":" not in value
    assert values["falco"]["json_output"] is True


def test_falco_http_output_sample_uses_mutual_tls():
    """samples/falco-values-http-output.yaml posts JSON over mTLS with the client cert the TLS example issues."""
    values = yaml.safe_load((ROOT / "samples" / "falco-values-http-output.yaml").read_text())
    falco = values["falco"]
    assert falco["json_output"] is True
    assert values["falcosidekick"]["enabled"] is False
    out = falco["http_output"]
    assert out["enabled"] is True
    assert out["mtls"] is True
    assert out["insecure"] is False
    assert out["url"] == f"https://{RELEASE}.{NAMESPACE}.svc:8080/v1/alerts"
    (mount,) = values["mounts"]["volumeMounts"]
    for key in ("client_cert", "client_key", "ca_cert"):
        assert out[key].startswith(mount["mountPath"] + "/"), key
    (volume,) = values["mounts"]["volumes"]
    tls_values = yaml.safe_load((ROOT / "samples" / "values-tls.yaml").read_text())
    assert volume["secret"]["secretName"] == tls_values["falco"]["clientCertificate"]["secretName"]
    assert tls_values["auth"]["token"]["enabled"] is False
    assert tls_values["tls"]["clientAuth"] is True
