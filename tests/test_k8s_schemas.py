"""The generated Kubernetes schemas: no drift from the API server, strict, and the kept rules still attach."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest

from falco_reporter.validation import validate_manifest
from falco_reporter.validation.k8s_rules import ENUMS, HINTS, REQUIRED, RULES
from falco_reporter.validation.k8s_schema import DATA_FILE, schemas

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "operator" / "falco_reporter" / "validation" / DATA_FILE
REGENERATE = "run: make k8s-schemas (regenerates the schemas from the API server we build)"


def generator() -> Any:
    spec = importlib.util.spec_from_file_location("gen_k8s_schemas", ROOT / "hack" / "gen_k8s_schemas.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shipped() -> dict[str, Any]:
    return json.loads(SHIPPED.read_text(encoding="utf-8"))


@pytest.mark.cluster
def test_schemas_match_what_the_api_server_serves(kube_api):
    """Regenerating from the session's kube-apiserver reproduces the shipped file byte for byte."""
    gen = generator()
    fresh = gen.render(gen.collect(gen.client_fetch(kube_api)))
    assert fresh == SHIPPED.read_text(encoding="utf-8"), REGENERATE


def test_schemas_come_from_the_kubernetes_version_we_build():
    """The shipped schemas name the kube-apiserver version hack/cluster-bins.sh pins, so a bump needs a regeneration."""
    pinned = re.search(r"^K8S_VERSION=(\S+)$", (ROOT / "hack" / "cluster-bins.sh").read_text(), re.MULTILINE)
    assert pinned is not None
    assert shipped()["kubernetes_version"] == pinned.group(1), REGENERATE
    assert schemas().kubernetes_version == pinned.group(1)


def test_every_kind_the_generator_asks_for_is_shipped_with_its_scope():
    """Each kind of the generator's list has a definition; scopes come from the API paths."""
    kinds = shipped()["kinds"]
    wanted = {f"{gv}/{kind}" for gv, names in generator().KINDS.items() for kind in names}
    assert set(kinds) == wanted
    assert kinds["v1/Namespace"]["namespaced"] is False
    assert kinds["rbac.authorization.k8s.io/v1/ClusterRoleBinding"]["namespaced"] is False
    assert kinds["apps/v1/Deployment"]["namespaced"] is True


def _objects(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        own = [node] if "properties" in node else []
        return own + [o for v in node.values() for o in _objects(v)]
    if isinstance(node, list):
        return [o for v in node for o in _objects(v)]
    return []


def test_schemas_are_strict_and_small():
    """Every object schema that lists properties forbids others (bar preserve-unknown ones); the file stays small."""
    defs = shipped()["$defs"]
    loose = [o for o in _objects(defs) if o.get("additionalProperties") is not False]
    assert loose == []
    assert all("description" not in json.dumps(d) for d in defs.values())
    assert SHIPPED.stat().st_size < 120_000


def test_kept_rules_enums_and_hints_name_real_definitions():
    """A renamed definition or field in a new Kubernetes version fails here instead of silently dropping a rule."""
    defs = shipped()["$defs"]
    config = {"io.k8s.apiserver.audit.v1.Policy", "io.k8s.apiserver.audit.v1.PolicyRule"}
    for name in [*RULES, *HINTS, *REQUIRED]:
        assert name in defs or name in config, name
    for dotted in ENUMS:
        name, _, field = dotted.rpartition(".")
        prop = defs[name]["properties"][field]
        assert "enum" not in prop.get("items", prop), (
            f"{dotted} is served with an enum now: drop it from ENUMS"
        )
    for name, fields in REQUIRED.items():
        assert set(fields) <= set(defs[name]["properties"]), name


POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: ns}\n"
NOW_CHECKED = {
    "service-port-typo": (
        "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: n}\nspec: {ports: [{prot: 80}]}",
        "Service spec.ports[0].prot: unknown field",
    ),
    "ingress-backend-typo": (
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: i, namespace: n}\n"
        "spec: {defaultBackend: {servic: {name: web}}}",
        "spec.defaultBackend.servic: unknown field",
    ),
    "container-port-as-string": (
        POD + "spec: {containers: [{name: c, image: i, ports: [{containerPort: '80'}]}]}",
        "spec.containers[0].ports[0].containerPort: must be a integer, got '80'",
    ),
    "probe-typo": (
        POD + "spec: {containers: [{name: c, image: i, livenessProbe: {httpGet: {pth: /}}}]}",
        "livenessProbe.httpGet.pth: unknown field",
    ),
    "pdb-selector-type": (
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: b, namespace: n}\n"
        "spec: {selector: [app]}",
        "spec.selector: must be a mapping, got list",
    ),
    "metadata-of-a-custom-kind": (
        "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: c, namespace: n, label: {a: b}}",
        "metadata.label: unknown field",
    ),
}


@pytest.mark.parametrize(("text", "expected"), NOW_CHECKED.values(), ids=NOW_CHECKED.keys())
def test_bodies_that_the_hand_kept_tables_did_not_model_are_checked(text, expected):
    """Kinds and fields the old tables left as 'not modelled' or 'any' are now checked against the schema."""
    result = validate_manifest(text)
    assert not result.ok
    assert expected in "\n".join(result.errors)


def test_an_accepted_object_says_which_schema_checked_it():
    """The check names the Kubernetes version of the schema."""
    result = validate_manifest(
        "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: n}\n"
        "spec: {selector: {app: web}, ports: [{port: 80, targetPort: http, protocol: TCP}]}"
    )
    assert result.ok, result.errors
    assert any(f"schema of Kubernetes {schemas().kubernetes_version}" in c for c in result.checks)


def test_null_fields_count_as_absent():
    """A null value is treated as unset, as the API server does, while a missing required field still fails."""
    assert validate_manifest(POD + "spec: {hostPID: null, containers: [{name: c, image: i}]}").ok
    result = validate_manifest(POD + "spec: {containers: [{name: c, image: null}]}")
    assert "Pod spec.containers[0].image: required field is missing" in result.errors
