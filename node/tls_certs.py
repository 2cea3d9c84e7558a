"""Making the network's TLS certificates (``cryptography``): the network CA, validators' peer certificates
and client-API (HTTPS) certificates. Used by ``carecoin network init`` and ``add-branch``; the node itself
only reads PEM files (``node.tls``).

Decisions:
- One network CA per network (ECDSA P-256, self-signed, ``BasicConstraints(ca, path_length=0)``, 20 years),
  kept with the company's files (``company/tls-ca.key`` 0600, ``company/tls-ca.pem``) and pinned in
  genesis.json as ``"tls": {"ca_pem": ..., "ca_sha256": ...}``.
- A validator's peer certificate has its own ECDSA P-256 key (``<branch>/tls/peer.key``, 0600), never the
  Ed25519 node key: the node key signs consensus only, and the TLS key can be replaced without touching
  genesis. The certificate names the validator it belongs to in a SAN URI ``carecoin:node:<node key hex>``
  (``NODE_URI_PREFIX``); after the TLS handshake each side checks that this URI names the key the node-key
  challenge proves, so a CA-signed certificate cannot be used by another validator's key.
- Client-API certificates (``network init --tls``) carry the listen host as an IP/DNS SAN (and 127.0.0.1 /
  localhost for an any-address host), ``serverAuth`` only.
- Validity starts one hour back (clock skew between branches) and runs 10 years for leaves; rotation is a
  new ``add-branch``-style issue with the same CA (no revocation list yet: a leaked peer key is answered by
  removing the validator by governance, since the node-key challenge stays required).
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from node.tls import NODE_URI_PREFIX

CA_DAYS = 20 * 365
LEAF_DAYS = 10 * 365
BACKDATE = datetime.timedelta(hours=1)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "carecoin"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])


def make_ca(chain_id: str) -> tuple[bytes, bytes]:
    """A fresh network CA: (key PEM, certificate PEM)."""
    key = _new_key()
    now = datetime.datetime.now(datetime.timezone.utc)
    name = _name(f"carecoin network CA {chain_id}")
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE).not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256()))
    return _key_pem(key), cert.public_bytes(serialization.Encoding.PEM)


def _issue(ca_key_pem: bytes, ca_cert_pem: bytes, common_name: str, sans: list[x509.GeneralName],
           usages: list) -> tuple[bytes, bytes]:
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    key = _new_key()
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE).not_valid_after(now + datetime.timedelta(days=LEAF_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return _key_pem(key), cert.public_bytes(serialization.Encoding.PEM)


def make_peer_cert(ca_key_pem: bytes, ca_cert_pem: bytes, name: str, node_key: bytes) -> tuple[bytes, bytes]:
    """A validator's peer-link certificate binding ``node_key`` (SAN URI ``carecoin:node:<hex>``); client and
    server use (each side of a link presents it)."""
    return _issue(ca_key_pem, ca_cert_pem, f"carecoin validator {name}",
                  [x509.UniformResourceIdentifier(NODE_URI_PREFIX + node_key.hex())],
                  [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH])


def make_api_cert(ca_key_pem: bytes, ca_cert_pem: bytes, name: str, host: str) -> tuple[bytes, bytes]:
    """A client-API (HTTPS) certificate for ``host`` (an any-address host also gets 127.0.0.1 and localhost)."""
    hosts = [host] if host not in ("0.0.0.0", "::") else ["127.0.0.1", "::1", "localhost"]
    if "localhost" not in hosts:
        hosts.append("localhost")
    sans: list[x509.GeneralName] = []
    for h in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    return _issue(ca_key_pem, ca_cert_pem, f"carecoin API {name}", sans, [ExtendedKeyUsageOID.SERVER_AUTH])


def compute_fingerprint(cert_pem: bytes | str) -> str:
    """SHA-256 of the certificate's DER bytes, hex."""
    data = cert_pem.encode() if isinstance(cert_pem, str) else cert_pem
    der = x509.load_pem_x509_certificate(data).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def read_node_key_of_pem(cert_pem: bytes) -> bytes | None:
    """The node key a certificate's ``carecoin:node:`` SAN URI names (None if it names none)."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    try:
        uris = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.UniformResourceIdentifier)
    except x509.ExtensionNotFound:
        return None
    for uri in uris:
        if uri.startswith(NODE_URI_PREFIX):
            try:
                return bytes.fromhex(uri[len(NODE_URI_PREFIX):])
            except ValueError:
                return None
    return None


def write_private(path: Path, data: bytes) -> None:
    """Write a private key file 0600 (created with that mode; an existing file is replaced)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def write_public(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
