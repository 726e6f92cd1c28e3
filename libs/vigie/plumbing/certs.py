"""A deployment's own certificate authority (`vigie certs`, issue 25; REGULATION.md R30, R37,
R38): a CA, the servers' certificates (NATS, PostgreSQL, the object store) and client certificates
(each service, police subscribers, the national police's posts). For tests and small sites; a
commune with its own PKI issues the same files from it (docs/security.md).

ECDSA P-256 keys: every party (nats-server, PostgreSQL, Go's and Python's TLS) speaks them."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from vigie.plumbing.catalog import SERVICES

CA_DAYS = 3650
LEAF_DAYS = 825  # what browsers and most TLS stacks accept for a leaf


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, PEM."""
    cert_pem: bytes
    key_pem: bytes

    def write(self, folder: Path, name: str) -> tuple[Path, Path]:
        """`name`.pem (0644) and `name`.key (0600) in `folder`."""
        folder.mkdir(parents=True, exist_ok=True)
        cert, key = folder / f"{name}.pem", folder / f"{name}.key"
        key.touch(mode=0o600)
        key.chmod(0o600)
        key.write_bytes(self.key_pem)
        cert.write_bytes(self.cert_pem)
        return cert, key


# What a client certificate is for, in its subject's OU (issue 34): the police port takes a
# post's and nothing else of the same CA — not a service's, not a subscriber's.
POST, SUBSCRIBER, SERVICE = "post", "subscriber", "service"
KINDS = (POST, SUBSCRIBER, SERVICE)


def _name(common_name: str, kind: str | None = None) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Vigie"),
                      *([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, kind)]
                        if kind else []),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def subject(common_name: str, kind: str | None = None) -> str:
    """The subject as RFC 4514 writes it (``CN=ingest,OU=service,O=Vigie``): the user name
    nats-server maps a client certificate to (`verify_and_map`)."""
    return _name(common_name, kind).rfc4514_string()


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_ca(common_name: str = "Vigie deployment CA", *, days: int = CA_DAYS) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(_name(common_name)).issuer_name(_name(common_name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                         crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def issue(ca: Issued, common_name: str, *, hosts: tuple[str, ...] = (), server: bool = False,
          client: bool = False, kind: str | None = None, days: int = LEAF_DAYS) -> Issued:
    """A leaf signed by `ca`: a server certificate naming `hosts` (DNS names or IP addresses),
    a client certificate (its common name says who, `kind` what for: a post, a subscriber, a
    service), or both."""
    if not (server or client):
        raise ValueError("a certificate is for a server, a client, or both")
    if kind is not None and kind not in KINDS:
        raise ValueError(f"a client certificate is for one of {', '.join(KINDS)}")
    if server and not hosts:
        raise ValueError("a server certificate names the hosts it answers for")
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("the CA's key is not an ECDSA key")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
        [ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
    builder = (x509.CertificateBuilder()
               .subject_name(_name(common_name, kind)).issuer_name(ca_cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   ca_key.public_key()), critical=False))
    if hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName([_san(h) for h in hosts]),
                                        critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def load(folder: Path, name: str) -> Issued:
    return Issued((folder / f"{name}.pem").read_bytes(), (folder / f"{name}.key").read_bytes())


def common_name(cert_pem: bytes) -> str:
    cert = x509.load_pem_x509_certificate(cert_pem)
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def peer_identity(peer: dict[str, object] | None) -> tuple[str | None, str | None]:
    """(common name, kind) of a TLS peer's certificate as `ssl.SSLSocket.getpeercert()` gives
    it; (None, None) without one."""
    if not peer:
        return None, None
    fields: dict[str, str] = {}
    for rdn in peer.get("subject", ()):  # type: ignore[attr-defined]
        for name, value in rdn:
            fields[name] = value
    return fields.get("commonName"), fields.get("organizationalUnitName")


def serial(cert_pem: bytes) -> int:
    return int(x509.load_pem_x509_certificate(cert_pem).serial_number)


def revocation_list(ca: Issued, serials: set[int]) -> bytes:
    """The CA's certificate revocation list naming `serials` (PEM). Valid until the CA expires: it
    is a local file the gateway reads, re-issued at each revocation (`vigie certs revoke`), not
    fetched from anywhere, so an old one cannot be slipped in by the network."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("the CA's key is not an ECDSA key")
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateRevocationListBuilder()
               .issuer_name(ca_cert.subject).last_update(now - dt.timedelta(minutes=5))
               .next_update(ca_cert.not_valid_after_utc))
    for number in sorted(serials):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(number).revocation_date(now).build())
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def revoked(crl_pem: bytes) -> set[int]:
    return {r.serial_number for r in x509.load_pem_x509_crl(crl_pem)}


# The names the servers answer to in Compose, Kubernetes (namespace vigie) and on one machine.
SERVER_HOSTS: dict[str, tuple[str, ...]] = {
    "nats": ("nats", "nats-2", "nats-3", "nats-cluster", "nats.vigie.svc",
             *(f"nats-{i}.nats-cluster.vigie.svc" for i in range(3)), "localhost", "127.0.0.1"),
    "postgres": ("postgres", "postgres.vigie.svc", "localhost", "127.0.0.1"),
    "seaweedfs": ("seaweedfs", "seaweedfs.vigie.svc", "seaweedfs-0.seaweedfs",
                  "seaweedfs-0.seaweedfs.vigie.svc", "localhost", "127.0.0.1"),
}
CLIENTS = (*SERVICES, "init")  # `vigie init` and the operator's CLI connect as "init"
CRL = "crl.pem"  # the CA's revocation list, which the gateway's police port checks (R30)


def init_folder(folder: Path, *, extra_hosts: tuple[str, ...] = (),
                ca_name: str = "Vigie deployment CA") -> list[str]:
    """What a deployment needs in ``folder`` — the CA, the servers' certificates, one client
    certificate per service and for `init`, an empty revocation list — never overwriting a file
    (`vigie certs init`, and `vigie run` for its own). Returns what it made."""
    made: list[str] = []
    if (folder / "ca.key").exists():
        ca = load(folder, "ca")
    else:
        ca = make_ca(ca_name)
        ca.write(folder, "ca")
        made.append("ca")
    for server, hosts in SERVER_HOSTS.items():
        if not (folder / f"{server}.key").exists():
            # NATS routes: each node is the other's client.
            issue(ca, server, hosts=hosts + extra_hosts, server=True,
                  client=server == "nats").write(folder, server)
            made.append(server)
    for client in CLIENTS:
        if not (folder / f"{client}.key").exists():
            issue(ca, client, client=True, kind=SERVICE).write(folder, client)
            made.append(client)
    if not (folder / CRL).exists():
        (folder / CRL).write_bytes(revocation_list(ca, set()))
        made.append(CRL)
    return made
