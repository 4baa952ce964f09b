"""A test PostgreSQL that speaks TLS with a certificate from a test CA, and signs one role in with a password.

    server = start_postgres()
    pki = Pki.create(tmp_dir, host_name="localhost")
    enable_tls_and_passwords(server, pki, roles=["tapbot_entra"])

The CA and the server certificate are made here with ``cryptography`` (a second, unrelated CA stands for "the wrong
CA"). The server certificate names only ``host_name`` (a DNS name, no IP address), so connecting to 127.0.0.1 is a
host-name mismatch. ``roles`` authenticate with SCRAM over TCP, which is how Azure Database for PostgreSQL checks a
Microsoft Entra access token sent as the password; every other role keeps ``trust``.
"""

from __future__ import annotations

import datetime as dt
import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.postgres import PostgresServer, _run


@dataclass(frozen=True)
class Pki:
    ca_file: Path
    other_ca_file: Path
    cert_file: Path
    key_file: Path

    @classmethod
    def create(cls, directory: Path, *, host_name: str) -> Pki:
        directory.mkdir(parents=True, exist_ok=True)
        ca_key, ca_cert = _authority("tapbot test CA")
        _, other_cert = _authority("some other CA")
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host_name)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host_name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        pki = cls(
            ca_file=directory / "ca.pem",
            other_ca_file=directory / "other-ca.pem",
            cert_file=directory / "server.crt",
            key_file=directory / "server.key",
        )
        pki.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        pki.other_ca_file.write_bytes(other_cert.public_bytes(serialization.Encoding.PEM))
        pki.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        pki.key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return pki


def enable_tls_and_passwords(server: PostgresServer, pki: Pki, *, roles: list[str]) -> None:
    """ssl=on with the test certificate; ``roles`` must send a password (SCRAM) over TCP. Reloads the server."""
    cert = server.root / "server.crt"
    key = server.root / "server.key"
    cert.write_bytes(pki.cert_file.read_bytes())
    key.write_bytes(pki.key_file.read_bytes())
    key.chmod(0o600)  # PostgreSQL refuses a key file that others can read
    if server.run_as is not None:
        account = pwd.getpwnam(server.run_as)
        for path in (cert, key):
            os.chown(path, account.pw_uid, account.pw_gid)
    with (server.data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
        conf.write(f"\nssl = on\nssl_cert_file = '{cert}'\nssl_key_file = '{key}'\n")
        conf.write("password_encryption = 'scram-sha-256'\n")
    hba = server.data_dir / "pg_hba.conf"
    rules = "".join(f"host all {role} 127.0.0.1/32 scram-sha-256\n" for role in roles)
    hba.write_text(rules + hba.read_text(encoding="utf-8"), encoding="utf-8")
    _run(server, "pg_ctl", "reload", "-D", str(server.data_dir), "-w")


def _authority(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert
