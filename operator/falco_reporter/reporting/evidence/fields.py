"""One view of an alert's values: its Falco output fields plus names derived from the enrichment.

Signals in the knowledge base, the indicator checks and the exception builder all read values
through :class:`FieldView`, so a derived name (``fd.sport``, ``image.repository``) means the same
thing everywhere.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from dataclasses import dataclass, field

from falco_reporter.models.enrichment import Enrichment
from falco_reporter.models.falco import FalcoAlertSpec

_ANAME = re.compile(r"^proc\.aname\[(\d+)\]$")
_INBOUND = frozenset({"accept", "accept4", "listen"})


def image_repository(image: str) -> str:
    """The repository of an image reference, lower case: no ``@digest``, no ``:tag``."""
    repo = image.strip().lower().split("@", 1)[0]
    head, _, last = repo.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]


def peer_scope(address: str) -> str:
    """loopback, link-local, private (RFC 1918 and friends: cluster or internal), public, or ''."""
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return ""
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_private or ip in ipaddress.ip_network("100.64.0.0/10"):
        return "private"
    return "public" if ip.is_global else "private"


@dataclass(frozen=True)
class FieldView:
    """Read-only access to an alert's values by Falco field or derived name."""

    alert: FalcoAlertSpec
    enrichment: Enrichment
    _cache: dict[str, list[str]] = field(default_factory=dict, compare=False, repr=False)

    def values(self, name: str) -> list[str]:
        """Every value the name has (most names have one; ``proc.ancestors`` has several)."""
        if name not in self._cache:
            self._cache[name] = [v for v in self._compute(name) if v]
        return self._cache[name]

    def get(self, name: str) -> str:
        """The first value, or ''."""
        found = self.values(name)
        return found[0] if found else ""

    def _text(self, name: str) -> str:
        return self.alert.text(name) or ""

    def _compute(self, name: str) -> list[str]:
        enr, alert = self.enrichment, self.alert
        if name == "image.repository":
            image = enr.container.image or alert.subject.image or self._text("container.image.repository")
            return [image_repository(image)] if image else []
        if name == "container.image.repository":
            return [self._text(name) or image_repository(enr.container.image)]
        if name == "k8s.ns.name":
            return [enr.namespace or alert.subject.namespace or self._text(name)]
        if name == "k8s.pod.name":
            return [enr.pod or alert.subject.pod or self._text(name)]
        if name == "workload.kind":
            return [enr.workload.kind]
        if name == "workload.name":
            return [enr.workload.name]
        if name == "proc.ancestors":
            return self._ancestors()
        if name == "proc.exe.dir":
            exe = self._text("proc.exepath") or self._text("proc.exe")
            return [posixpath.dirname(exe)] if exe.startswith("/") else []
        if name == "fd.sport":
            return [self._server_port()]
        if name == "peer.scope":
            return [peer_scope(self.remote_address())]
        if name == "container.privileged":
            return ["true" if enr.security.privileged or self._text("container.privileged") == "true" else ""]
        return [self._text(name)]

    def _ancestors(self) -> list[str]:
        found = [self._text("proc.pname")]
        numbered = sorted(
            (int(m.group(1)), str(v))
            for key, v in self.alert.output_fields.items()
            if (m := _ANAME.match(key)) and v not in (None, "", "<NA>")
        )
        found += [v for _, v in numbered]
        return list(dict.fromkeys(v for v in found if v))

    def inbound(self) -> bool:
        """Whether the alert's connection was accepted by this process (it is the server)."""
        return self._text("evt.type") in _INBOUND or self._text("fd.direction") == "in"

    def remote_address(self) -> str:
        """The other end of the connection: fd.rip, else the address part of fd.name."""
        rip = self._text("fd.rip") or self._text("fd.cip" if self.inbound() else "fd.sip")
        if rip:
            return rip
        name = self._text("fd.name")
        if "->" in name:
            local, remote = name.split("->", 1)
            side = local if self.inbound() else remote
            return side.rsplit(":", 1)[0]
        return ""

    def _server_port(self) -> str:
        # Falco names a TCP/UDP socket "client:port->server:port", whichever side this process is.
        direct = self._text("fd.sport")
        name = self._text("fd.name")
        if direct:
            return direct
        if "->" in name:
            return name.split("->", 1)[1].rsplit(":", 1)[-1]
        return self._text("fd.lport" if self.inbound() else "fd.rport")
