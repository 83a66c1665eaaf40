"""Throwaway PKI for the local control plane: a CA, serving and admin certs, a service-account key."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# EC keys are instant to generate; the service-account key is RSA because that is what the
# apiserver's token signer and most tooling expect.
_Key = ec.EllipticCurvePrivateKey
_VALIDITY = dt.timedelta(days=365)
SERVING_DNS = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
SERVING_IPS = ("127.0.0.1", "10.0.0.1")


@dataclass(frozen=True)
class CertPaths:
    """PEM files written by :func:`generate_certs`."""

    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    sa_key: Path
    sa_pub: Path

    @classmethod
    def in_dir(cls, directory: Path) -> CertPaths:
        """The file layout inside ``directory``."""
        return cls(
            *(
                directory / name
                for name in (
                    "ca.crt",
                    "ca.key",
                    "apiserver.crt",
                    "apiserver.key",
                    "admin.crt",
                    "admin.key",
                    "sa.key",
                    "sa.pub",
                )
            )
        )


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _builder(subject: x509.Name, issuer: x509.Name, key: _Key) -> x509.CertificateBuilder:
    # Backdate a little so a clock that is slightly behind does not reject fresh certs.
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + _VALIDITY)
    )


def _leaf(
    subject: x509.Name,
    ca_cert: x509.Certificate,
    ca_key: _Key,
    usage: x509.ObjectIdentifier,
    sans: list[x509.GeneralName] | None = None,
) -> tuple[x509.Certificate, _Key]:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        _builder(subject, ca_cert.subject, key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=False,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.write_bytes(data)
    if private:
        os.chmod(path, 0o600)


def _key_pem(key: _Key | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _new_ca(cn: str) -> tuple[x509.Certificate, _Key]:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(cn)
    ca_cert = (
        _builder(ca_name, ca_name, ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=False,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return ca_cert, ca_key


def generate_certs(directory: Path, extra_ips: tuple[str, ...] = ()) -> CertPaths:
    """Create the CA, apiserver serving cert, admin client cert and SA key pair in ``directory``.

    ``extra_ips`` are added to the serving certificate (the host address pods reach it at).
    """
    directory.mkdir(parents=True, exist_ok=True)
    paths = CertPaths.in_dir(directory)
    ca_cert, ca_key = _new_ca("falco-reporter-devcluster-ca")
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in SERVING_DNS]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in (*SERVING_IPS, *extra_ips)]
    serving, serving_key = _leaf(
        _name("kube-apiserver"), ca_cert, ca_key, ExtendedKeyUsageOID.SERVER_AUTH, sans
    )
    # O=system:masters is the group RBAC lets do anything, so no bindings are needed for admin.
    admin, admin_key = _leaf(
        _name("admin", "system:masters"), ca_cert, ca_key, ExtendedKeyUsageOID.CLIENT_AUTH
    )
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = serialization.Encoding.PEM
    _write(paths.ca_cert, ca_cert.public_bytes(pem))
    _write(paths.ca_key, _key_pem(ca_key), private=True)
    _write(paths.serving_cert, serving.public_bytes(pem))
    _write(paths.serving_key, _key_pem(serving_key), private=True)
    _write(paths.admin_cert, admin.public_bytes(pem))
    _write(paths.admin_key, _key_pem(admin_key), private=True)
    _write(paths.sa_key, _key_pem(sa_key), private=True)
    _write(
        paths.sa_pub, sa_key.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return paths


@dataclass(frozen=True)
class MutualTlsPaths:
    """PEM files written by :func:`generate_mutual_tls`: one CA, a server and a client pair."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def generate_mutual_tls(directory: Path, ca_name: str = "falco-reporter-webhook-ca") -> MutualTlsPaths:
    """A CA with a loopback server certificate (receiver) and a client certificate (the sender).

    Each call makes a new CA, so two directories give two trust domains (for refused-client tests).
    """
    directory.mkdir(parents=True, exist_ok=True)
    paths = MutualTlsPaths(
        *(directory / name for name in ("ca.crt", "server.crt", "server.key", "client.crt", "client.key"))
    )
    ca_cert, ca_key = _new_ca(ca_name)
    sans: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    server, server_key = _leaf(
        _name("falco-reporter"), ca_cert, ca_key, ExtendedKeyUsageOID.SERVER_AUTH, sans
    )
    client, client_key = _leaf(_name("falcosidekick"), ca_cert, ca_key, ExtendedKeyUsageOID.CLIENT_AUTH)
    pem = serialization.Encoding.PEM
    _write(paths.ca_cert, ca_cert.public_bytes(pem))
    _write(paths.server_cert, server.public_bytes(pem))
    _write(paths.server_key, _key_pem(server_key), private=True)
    _write(paths.client_cert, client.public_bytes(pem))
    _write(paths.client_key, _key_pem(client_key), private=True)
    return paths
