"""Tokens, certificates and client CAs are reloaded without a restart; an empty token file is refused;
/metrics can require a token; mutual TLS can be limited to named client certificates."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import ssl
from pathlib import Path

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from falco_reporter import cli
from falco_reporter.receiver.http import ReceiverSettings, build_app, serve
from falco_reporter.receiver.ingest import IngestConfig, IngestService
from tests.fakes import FakeAPI
from tests.objects import alert_for
from tests.operator_proc import free_port


async def ready() -> bool:
    return True


def write_token(path: Path, value: str) -> None:
    """Replace the file as the kubelet updates a Secret volume (a new inode)."""
    tmp = path.with_suffix(".new")
    tmp.write_text(value)
    os.replace(tmp, path)


class Served:
    """The receiver app on loopback, over a fake API layer, for the length of a test."""

    def __init__(self, settings: ReceiverSettings) -> None:
        api = FakeAPI({"shop", "falco-reporter"})
        self.settings = settings
        self.app = build_app(IngestService(api, api, IngestConfig()), settings, ready)  # type: ignore[arg-type]
        self.stop = asyncio.Event()

    async def __aenter__(self) -> Served:
        self.task = asyncio.create_task(serve(self.app, self.settings, self.stop))
        await asyncio.sleep(0.3)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        await self.task


async def post(url: str, headers: dict[str, str] | None = None, ssl_ctx: ssl.SSLContext | None = None) -> int:
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            f"{url}/v1/alerts", json=alert_for("shop", "web"), headers=headers or {}, ssl=ssl_ctx or False
        ) as resp,
    ):
        return resp.status


async def test_token_file_change_is_picked_up_without_restart(tmp_path):
    """After the token file is replaced, the old token gets 401 and the new one 202, same process."""
    token = tmp_path / "token"
    token.write_text("first-token\n")
    port = free_port()
    async with Served(ReceiverSettings(host="127.0.0.1", port=port, token_file=str(token))):
        url = f"http://127.0.0.1:{port}"
        assert await post(url, {"Authorization": "Bearer first-token"}) == 202
        write_token(token, "second-token\n")
        await asyncio.sleep(1.1)
        assert await post(url, {"Authorization": "Bearer first-token"}) == 401
        assert await post(url, {"Authorization": "Bearer second-token"}) == 202
        write_token(token, "")  # a half-written update keeps the last good token
        await asyncio.sleep(1.1)
        assert await post(url, {"Authorization": "Bearer second-token"}) == 202


def test_empty_token_file_refuses_to_start(tmp_path, capsys):
    """An empty --token-file is an error at start (it used to disable authentication silently)."""
    token = tmp_path / "token"
    token.write_text("\n")
    assert cli.main(["receiver", "--token-file", str(token), "--bind", "127.0.0.1:1"]) == 2
    assert "is empty" in capsys.readouterr().err


async def test_metrics_can_require_a_bearer_token(tmp_path):
    """With --metrics-token-file, /metrics answers 401 without the token and 200 with it."""
    token = tmp_path / "metrics-token"
    token.write_text("scrape-me")
    port = free_port()
    async with (
        Served(ReceiverSettings(host="127.0.0.1", port=port, metrics_token_file=str(token))),
        aiohttp.ClientSession() as s,
    ):
        async with s.get(f"http://127.0.0.1:{port}/metrics") as resp:
            assert resp.status == 401
        async with s.get(
            f"http://127.0.0.1:{port}/metrics", headers={"Authorization": "Bearer scrape-me"}
        ) as resp:
            assert resp.status == 200 and "falco_reporter_alerts_received" in await resp.text()


# --- TLS -------------------------------------------------------------------------------------------


def _cert(cn: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None, usage=None):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer[0].subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if usage == ExtendedKeyUsageOID.SERVER_AUTH:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False
        )
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256()), key


def _pem(directory: Path, stem: str, cert, key) -> tuple[str, str]:
    c, k = directory / f"{stem}.crt", directory / f"{stem}.key"
    c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(c), str(k)


async def _server_serial(port: int) -> int:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    return x509.load_der_x509_certificate(der).serial_number


async def test_renewed_certificate_and_new_client_ca_are_used_without_restart(tmp_path):
    """Replacing tls.crt/tls.key (a cert-manager renewal) changes the served certificate; a client
    certificate of a CA added to the client-CA file is accepted from then on; only allowed subjects pass."""
    ca = _cert("ca-one", None)
    ca_two = _cert("ca-two", None)
    server = _cert("localhost", ca, ExtendedKeyUsageOID.SERVER_AUTH)
    cert, key = _pem(tmp_path, "server", *server)
    client_ca = tmp_path / "ca.crt"
    client_ca.write_bytes(ca[0].public_bytes(serialization.Encoding.PEM))
    port = free_port()
    settings = ReceiverSettings(
        host="127.0.0.1",
        port=port,
        tls_cert=cert,
        tls_key=key,
        tls_client_ca=str(client_ca),
        client_subjects=("falcosidekick",),
    )

    def client(cn: str, issuer) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        ctx.load_cert_chain(
            *_pem(
                tmp_path,
                f"client-{cn}-{issuer[0].serial_number}",
                *_cert(cn, issuer, ExtendedKeyUsageOID.CLIENT_AUTH),
            )
        )
        return ctx

    async with Served(settings):
        url = f"https://127.0.0.1:{port}"
        assert await _server_serial(port) == server[0].serial_number
        assert await post(url, ssl_ctx=client("falcosidekick", ca)) == 202
        assert await post(url, ssl_ctx=client("someone-else", ca)) == 403
        renewed = _cert("localhost", ca, ExtendedKeyUsageOID.SERVER_AUTH)
        _pem(tmp_path, "server", *renewed)
        client_ca.write_bytes(
            ca[0].public_bytes(serialization.Encoding.PEM)
            + ca_two[0].public_bytes(serialization.Encoding.PEM)
        )
        for _ in range(40):  # the server checks every 5 s
            if await _server_serial(port) == renewed[0].serial_number:
                break
            await asyncio.sleep(0.25)
        assert await _server_serial(port) == renewed[0].serial_number
        assert await post(url, ssl_ctx=client("falcosidekick", ca_two)) == 202
