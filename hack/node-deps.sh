#!/usr/bin/env bash
# Install what a local node (`make cluster-up NODE=1`) needs from Debian's archive when missing:
# containerd (CRI runtime), runc, the CNI plugins (bridge, host-local, portmap, firewall) and
# iptables (kube-proxy). CI starts from a fresh machine, so this runs on every `make` that needs a
# node and does nothing once everything is there. Needs root (a node needs it anyway).
set -euo pipefail

missing=()
command -v containerd >/dev/null || missing+=(containerd)
command -v runc >/dev/null || missing+=(runc)
[[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local ]] || missing+=(containernetworking-plugins)
command -v iptables >/dev/null || missing+=(iptables)
command -v conntrack >/dev/null || missing+=(conntrack)
if [[ ${#missing[@]} -eq 0 ]]; then exit 0; fi
if [[ $(id -u) -ne 0 ]]; then
  echo "[node-deps] a local node needs root, and these Debian packages: ${missing[*]}" >&2
  exit 1
fi
echo "[node-deps] installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
