"""Create demo/test workloads with real owner chains on a bare API server.

A bare kube-apiserver runs no controllers: Deployments create no ReplicaSets and Pods never
run. The seeder creates each object in file order, fills ``ownerReferences[].uid`` from the
objects it already created, then applies each object's ``status`` through the status
subresource so Pods look Running with container ids and image digests.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]


class SeedError(RuntimeError):
    """kubectl refused an object; the message carries its output."""


def _kubectl(kubectl: str, kubeconfig: str, *args: str, stdin: str | None = None) -> str:
    proc = subprocess.run(
        [kubectl, "--kubeconfig", kubeconfig, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        raise SeedError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def seed(kubectl: str, kubeconfig: str, manifest: Path | str, *, namespace: str | None = None) -> list[Obj]:
    """Create every object in ``manifest`` (multi-document YAML); return what the server stored.

    ``namespace`` overrides the namespace of namespaced objects (and drops Namespace
    objects), so tests can seed into their own fresh namespace.
    """
    docs = [d for d in yaml.safe_load_all(Path(manifest).read_text(encoding="utf-8")) if d]
    uids: dict[tuple[str, str, str], str] = {}
    created: list[Obj] = []
    for doc in docs:
        if namespace is not None:
            if doc["kind"] == "Namespace":
                continue
            doc.setdefault("metadata", {})["namespace"] = namespace
        status = doc.pop("status", None)
        meta = doc.setdefault("metadata", {})
        ns = meta.get("namespace", "")
        for ref in meta.get("ownerReferences", []):
            ref.setdefault("uid", uids.get((ref["kind"], ns, ref["name"]), ""))
            if not ref["uid"]:
                raise SeedError(
                    f"{doc['kind']} {ns}/{meta['name']}: owner {ref['kind']}/{ref['name']} not seeded first"
                )
        out = json.loads(
            _kubectl(kubectl, kubeconfig, "create", "-f", "-", "-o", "json", stdin=json.dumps(doc))
        )
        uids[(doc["kind"], ns, meta["name"])] = out["metadata"]["uid"]
        if status is not None:
            out = json.loads(
                _kubectl(
                    kubectl,
                    kubeconfig,
                    "patch",
                    doc["kind"].lower(),
                    meta["name"],
                    "-n",
                    ns,
                    "--subresource=status",
                    "--type=merge",
                    "-p",
                    json.dumps({"status": status}),
                    "-o",
                    "json",
                )
            )
        created.append(out)
    return created
