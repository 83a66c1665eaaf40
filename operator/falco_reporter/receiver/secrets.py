"""Credentials from mounted files, picked up again when they change (no restart).

Kubernetes updates a mounted Secret by swapping a symlink, and cert-manager renews certificates
in place, so the receiver re-reads the bearer token, the metrics token and the TLS files when
their file identity (inode, size, mtime) changes: tokens at most once a second, on use; TLS
files every few seconds from a background check. A file that becomes empty or unreadable keeps
the previous value (with a log line): a half-written update must not open the receiver.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import ssl
import time
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)


class SecretFileError(ValueError):
    """A configured secret file is missing or empty at start: refuse to start."""


def _identity(path: str) -> tuple[int, int, int]:
    st = os.stat(path)
    return st.st_ino, st.st_size, st.st_mtime_ns


class FileSecret:
    """A token read from a file, re-read when the file changes."""

    def __init__(self, path: str, *, check_every: float = 1.0) -> None:
        self.path = path
        self.check_every = check_every
        try:
            self._identity = _identity(path)
            value = open(path, encoding="utf-8").read().strip()  # noqa: SIM115 - read once
        except OSError as exc:
            raise SecretFileError(f"cannot read {path}: {exc}") from exc
        if not value:
            raise SecretFileError(f"{path} is empty: refusing to start without the token it should hold")
        self._value = value
        self._checked = time.monotonic()

    @property
    def value(self) -> str:
        now = time.monotonic()
        if now - self._checked >= self.check_every:
            self._checked = now
            self._reload()
        return self._value

    def _reload(self) -> None:
        try:
            identity = _identity(self.path)
            if identity == self._identity:
                return
            value = open(self.path, encoding="utf-8").read().strip()  # noqa: SIM115
        except OSError as exc:
            log.warning("cannot re-read %s, keeping the previous token: %s", self.path, exc)
            return
        if not value:
            log.warning("%s became empty, keeping the previous token", self.path)
            return
        self._identity, self._value = identity, value
        log.info("token file %s changed: reloaded", self.path)

    def matches(self, header: str) -> bool:
        """Whether an Authorization header carries this token (constant-time)."""
        return hmac.compare_digest(header.encode(), f"Bearer {self.value}".encode())


class ReloadingTLS:
    """The server's SSLContext, with certificate, key and client CA reloaded in place on change.

    New handshakes use the new certificate; a client CA added to the file is trusted from then
    on (OpenSSL cannot forget a CA of a live context: a removed CA stays trusted until restart).
    """

    def __init__(self, cert: str, key: str, client_ca: str) -> None:
        self.files = [f for f in (cert, key, client_ca) if f]
        self.cert, self.key, self.client_ca = cert, key, client_ca
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._load()
        if client_ca:
            self.context.verify_mode = ssl.CERT_REQUIRED
        self._identities = self._current()

    def _current(self) -> list[tuple[int, int, int] | None]:
        out: list[tuple[int, int, int] | None] = []
        for f in self.files:
            try:
                out.append(_identity(f))
            except OSError:
                out.append(None)
        return out

    def _load(self) -> None:
        self.context.load_cert_chain(self.cert, self.key or None)
        if self.client_ca:
            self.context.load_verify_locations(self.client_ca)

    def check(self) -> bool:
        """Reload when a file changed; True when reloaded."""
        identities = self._current()
        if identities == self._identities or None in identities:
            return False
        try:
            self._load()
        except (OSError, ssl.SSLError) as exc:  # e.g. the key updated before the certificate
            log.warning("TLS files changed but do not load yet (%s); will retry", exc)
            return False
        self._identities = identities
        log.info("TLS certificate/key/client CA reloaded")
        return True

    async def run(self, stop: asyncio.Event, every: float = 5.0) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every)
            self.check()


def peer_subject_allowed(peercert: dict[str, Any] | None, allowed: Sequence[str]) -> bool:
    """Whether a verified client certificate's subject is allowed: its common name, or its whole
    subject as ``CN=a,O=b`` (RDNs in certificate order), equals one of ``allowed``."""
    if not allowed:
        return True
    if not peercert:
        return False
    short = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU", "countryName": "C"}
    pairs = [(k, v) for rdn in peercert.get("subject", ()) for k, v in rdn]
    names = {v for k, v in pairs if k == "commonName"}
    whole = ",".join(f"{short.get(k, k)}={v}" for k, v in pairs)
    return bool(names & set(allowed)) or whole in allowed
