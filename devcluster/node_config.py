"""The node's configuration files: containerd, CNI, kubelet and kube-proxy, for this kind of host.

Facts behind the settings (cgroup v1, no CAP_SYS_RESOURCE, no registry) are in the shared notes on
running a real node; each setting that exists only for them says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

NODE_NAME = "falco-reporter-node"
BRIDGE = "frnode0"
POD_SUBNET = "10.244.0.0/24"
CNI_BIN = Path("/usr/lib/cni")
CNI_NETWORK = "falco-reporter-node"


@dataclass(frozen=True)
class NodePaths:
    """The node's files, all under ``root``."""

    root: Path

    @property
    def socket(self) -> Path:
        return self.root / "containerd" / "containerd.sock"

    @property
    def runc_root(self) -> Path:
        return self.root / "runc"

    @property
    def logs(self) -> Path:
        return self.root / "logs"


def containerd_config(paths: NodePaths, sandbox_image: str) -> str:
    """containerd 1.6 config (version 2): private root/state/socket, CRI on, runc, our CNI dir."""
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    runc = f"{cri}.containerd.runtimes.runc"
    return "\n".join(
        [
            "version = 2",
            f'root = "{paths.root / "containerd" / "root"}"',
            f'state = "{paths.root / "containerd" / "state"}"',
            "[grpc]",
            f'  address = "{paths.socket}"',
            "[ttrpc]",
            f'  address = "{paths.socket}.ttrpc"',
            f"[{cri}]",
            f'  sandbox_image = "{sandbox_image}"',
            # No CAP_SYS_RESOURCE in this kind of sandbox: negative oom_score_adj would fail every pod.
            "  restrict_oom_score_adj = true",
            f"[{cri}.containerd]",
            '  snapshotter = "overlayfs"',
            '  default_runtime_name = "runc"',
            f"[{runc}]",
            '  runtime_type = "io.containerd.runc.v2"',
            f"[{runc}.options]",
            "  SystemdCgroup = false",
            f'  Root = "{paths.runc_root}"',
            f"[{cri}.cni]",
            f'  bin_dir = "{CNI_BIN}"',
            f'  conf_dir = "{paths.root / "cni" / "net.d"}"',
            "",
        ]
    )


def cni_config(paths: NodePaths) -> dict[str, object]:
    """Bridge with masquerade and host-local IPs, plus firewall (pod traffic passes a DROP policy)."""
    ipam = {
        "type": "host-local",
        "ranges": [[{"subnet": POD_SUBNET}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": str(paths.root / "cni" / "ipam"),
    }
    return {
        "cniVersion": "1.0.0",
        "name": CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": ipam,
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
            {"type": "firewall"},
        ],
    }


def kubelet_config(
    paths: NodePaths, address: str, port: int, healthz: int, client_ca: Path | None
) -> dict[str, object]:
    """KubeletConfiguration for this kernel and sandbox (see ../shared/notes/real-node.md)."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupsPerQOS": False,
        "enforceNodeAllocatable": [],
        "containerRuntimeEndpoint": f"unix://{paths.socket}",
        # The API server (logs, exec) authenticates with a client certificate of the cluster CA.
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(client_ca) if client_ca else ""},
        },
        "authorization": {"mode": "AlwaysAllow"},
        "address": address,
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz,
        "failSwapOn": False,
        # The pause and test images exist only locally: never collect them.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {"nodefs.available": "1%", "imagefs.available": "1%", "memory.available": "10Mi"},
        "podLogsDir": str(paths.root / "pod-logs"),
        "serializeImagePulls": False,
        "syncFrequency": "5s",
        "nodeStatusUpdateFrequency": "5s",
    }


def kube_proxy_config(kubeconfig: Path, healthz: int, metrics: int) -> dict[str, object]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": NODE_NAME,
        "clusterCIDR": POD_SUBNET,
        "healthzBindAddress": f"127.0.0.1:{healthz}",
        "metricsBindAddress": f"127.0.0.1:{metrics}",
        # Leave the host's conntrack sysctls alone.
        "conntrack": {"maxPerCore": 0, "min": 0},
    }
