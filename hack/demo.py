"""`make demo`: the whole product end to end on a local control plane (or $KUBECONFIG).

Brings up etcd + kube-apiserver (unless KUBECONFIG is set), applies the CRDs, seeds realistic
workloads, starts `falco-reporter run`, POSTs the sample alerts (plus a burst of repeats),
waits for the reports, prints `kubectl get falcoalerts,alertreports -A` and one report, and
stops everything.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


from devcluster.binaries import find_binary
from devcluster.cluster import LocalCluster, apply_crds
from devcluster.reporter import FalcoReporterProcess, post, wait_for
from devcluster.seed import SeedError, seed


@contextlib.contextmanager
def control_plane() -> Iterator[str]:
    if os.environ.get("KUBECONFIG"):
        print(f"==> using the existing cluster in KUBECONFIG={os.environ['KUBECONFIG']}")
        yield os.environ["KUBECONFIG"]
        return
    print("==> starting a local control plane (etcd + kube-apiserver on loopback)")
    with LocalCluster() as cluster:
        yield str(cluster.kubeconfig)


def main() -> int:
    kubectl = str(find_binary("kubectl"))
    out_dir = ROOT / "demo-output"
    out_dir.mkdir(exist_ok=True)
    with control_plane() as kubeconfig:
        k = [kubectl, "--kubeconfig", kubeconfig]
        subprocess.run([*k, "version"], check=True)
        apply_crds(kubeconfig, ROOT / "crds")
        print("==> seeding workloads: Deployment->ReplicaSet->Pod, StatefulSet->Pod, CronJob->Job->Pod")
        try:
            seed(kubectl, kubeconfig, ROOT / "samples" / "workloads.yaml")
        except SeedError as exc:
            if "AlreadyExists" not in str(exc):
                raise
            print("    (workloads already present)")
        print("==> starting falco-reporter (operator + receiver)")
        with FalcoReporterProcess(kubeconfig, log_dir=out_dir) as reporter:
            alerts = sorted((ROOT / "samples" / "alerts").glob("*.json"))
            names = []
            for path in alerts:
                status, body = post(reporter.url, path.read_bytes())
                print(f"    POST {path.name}: {status} -> {body.get('namespace')}/{body.get('name')}")
                names.append((body["namespace"], body["name"]))
            burst = alerts[0].read_bytes()
            started = time.monotonic()
            for _ in range(200):
                assert post(reporter.url, burst)[0] == 202
            print(
                f"    POST {alerts[0].name} x200 more in {time.monotonic() - started:.2f}s (merged, not stored 200x)"
            )

            def reported() -> bool:
                out = subprocess.run(
                    [*k, "get", "alertreports", "-A", "-o", "json"],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                return len(json.loads(out)["items"]) >= len(names)

            wait_for(reported, timeout=60, what="all reports")
            time.sleep(1.5)  # let the repeat counts flush and sync to the reports
            print("\n==> kubectl get falcoalerts,alertreports -A")
            subprocess.run([*k, "get", "falcoalerts,alertreports", "-A"], check=True)
            ns, name = next(n for n in names if "drop-and-execute" in n[1])
            report = json.loads(
                subprocess.run(
                    [*k, "get", "alertreport", name, "-n", ns, "-o", "json"],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )
            (out_dir / f"{name}.md").write_text(report["spec"]["markdown"])
            print(f"\n==> kubectl get alertreport {name} -n {ns} -o jsonpath='{{.spec.markdown}}'\n")
            print(report["spec"]["markdown"])
        print(f"==> done; reports written to {out_dir.relative_to(ROOT)}/, everything stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
