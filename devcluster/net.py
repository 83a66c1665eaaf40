"""Loopback plumbing for the control plane: free ports, health probes, kubeconfig files."""

from __future__ import annotations

import base64
import os
import socket
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from .certs import CertPaths

CONTEXT = "falco-reporter-dev"


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports on 127.0.0.1 that are free right now.

    All sockets stay open until every port is picked, so the kernel cannot hand one out twice.
    """
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    return free_ports(1)[0]


def host_address() -> str | None:
    """The IPv4 address of the interface holding the default route, or None without one.

    A UDP socket's connect only picks the route; no packet is sent.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("203.0.113.1", 9))  # TEST-NET-3: any address routed by default would do
        except OSError:
            return None
        address = str(sock.getsockname()[0])
    return None if address.startswith("127.") or address == "0.0.0.0" else address  # noqa: S104


def probe(url: str, context: ssl.SSLContext | None = None) -> bool:
    """True if GET ``url`` answers 200; any connection, TLS or HTTP error is just 'not yet'."""
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as resp:  # noqa: S310 - loopback URL we built
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


def admin_context(certs: CertPaths) -> ssl.SSLContext:
    """TLS that trusts the cluster CA and authenticates with the admin client certificate."""
    context = ssl.create_default_context(cafile=str(certs.ca_cert))
    context.load_cert_chain(str(certs.admin_cert), str(certs.admin_key))
    return context


def unverified_context() -> ssl.SSLContext:
    """TLS without verification, for self-signed loopback health endpoints only."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def write_kubeconfig(path: Path, server: str, certs: CertPaths) -> None:
    """Write a self-contained admin kubeconfig (certs embedded), readable only by the owner."""

    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": CONTEXT,
        "preferences": {},
        "clusters": [
            {"name": CONTEXT, "cluster": {"server": server, "certificate-authority-data": b64(certs.ca_cert)}}
        ],
        "users": [
            {
                "name": "admin",
                "user": {
                    "client-certificate-data": b64(certs.admin_cert),
                    "client-key-data": b64(certs.admin_key),
                },
            }
        ],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": "admin"}}],
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        yaml.safe_dump(config, out, sort_keys=False)
