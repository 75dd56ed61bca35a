"""Self-signed certificates for tests that serve TLS (the ``examples`` extra's cryptography)."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from typing import Any

import pytest

pytest.importorskip("cryptography", reason="the examples extra is not installed")

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID


def self_signed(name: str, *, ip: str | None = None) -> tuple[bytes, bytes, bytes]:
    """A certificate for ``name`` (PEM), its key (PEM) and the certificate's DER form.

    With ``ip``, the certificate is for that address too (a subject alternative name) and
    may sign others: a client can trust it as its CA (``SSL_CERT_FILE``) and connect to
    ``https://<ip>``.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if ip is not None:
        address = x509.IPAddress(ipaddress.ip_address(ip))
        builder = builder.add_extension(x509.SubjectAlternativeName([address]), critical=False)
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=None), critical=True
        )
    certificate = builder.sign(key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return (
        certificate.public_bytes(serialization.Encoding.PEM),
        key_pem,
        certificate.public_bytes(serialization.Encoding.DER),
    )


@dataclass(frozen=True)
class MutualTLS:
    """A root CA, an intermediate CA, a server certificate for 127.0.0.1 signed by the root,
    and a client certificate signed by the intermediate, as SAP issues an X.509 service key:
    ``client_chain`` is the leaf then the intermediate, ``client_key`` an RSA key in the
    traditional ``BEGIN RSA PRIVATE KEY`` form. All PEM text."""

    ca: str
    server_certificate: str
    server_key: str
    client_chain: str
    client_leaf: str
    client_key: str


def mutual_tls() -> MutualTLS:
    """Certificates for a mutual-TLS token endpoint on 127.0.0.1 (see :class:`MutualTLS`)."""
    root, root_key = _certificate("test root CA", None, None, ca=True)
    intermediate, intermediate_key = _certificate("test intermediate CA", root, root_key, ca=True)
    address = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
    server, server_key = _certificate("127.0.0.1", root, root_key, san=address)
    client_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    client, _ = _certificate("client-x509", intermediate, intermediate_key, key=client_key)
    return MutualTLS(
        ca=_pem(root),
        server_certificate=_pem(server),
        server_key=_key_pem(server_key, serialization.PrivateFormat.PKCS8),
        client_chain=_pem(client) + _pem(intermediate),
        client_leaf=_pem(client),
        client_key=_key_pem(client_key, serialization.PrivateFormat.TraditionalOpenSSL),
    )


def _certificate(
    name: str,
    issuer: x509.Certificate | None,
    issuer_key: Any,
    *,
    ca: bool = False,
    san: x509.GeneralName | None = None,
    key: Any = None,
) -> tuple[x509.Certificate, Any]:
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName([san]), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256()), key


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def _key_pem(key: Any, form: serialization.PrivateFormat) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, form, serialization.NoEncryption()
    ).decode()
