"""The deployment's Ed25519 signing keys: the export key signs every package's manifest, the
recording key each link of the recorder's chain. Their fingerprints are what an investigator compares
with the ones the deployment publishes (GET /api/keys)."""

from __future__ import annotations

import base64
import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


class SigningKeyError(ValueError):
    """A configured signing key cannot be used (a clear line for the operator)."""


class SigningKey:
    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, pem: str | bytes) -> SigningKey:
        data = pem.encode() if isinstance(pem, str) else pem
        if not data.lstrip().startswith(b"-----BEGIN"):
            # One line in an environment file: the PEM base64-encoded (base64 -w0 key.pem).
            try:
                data = base64.b64decode(data, validate=True)
            except ValueError:
                raise SigningKeyError("the key is neither PEM nor base64 of a PEM") from None
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise SigningKeyError(f"the key is not a PEM private key: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningKeyError("the key must be an Ed25519 key "
                                  "(openssl genpkey -algorithm ed25519)")
        return cls(key)

    def private_pem(self) -> str:
        return self._private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()).decode()

    def public_pem(self) -> bytes:
        return public_pem(self._private.public_key())

    def fingerprint(self) -> str:
        return fingerprint(self.public_pem())

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)

    @property
    def private_key(self) -> Ed25519PrivateKey:
        return self._private


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public(public_key_pem: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(public_key_pem)
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError("not an Ed25519 public key")
    return key


def trusted_keys(pems: list[bytes]) -> dict[str, Ed25519PublicKey]:
    """Fingerprint → key, for verifying what these keys signed."""
    return {fingerprint(p): load_public(p) for p in pems}


def fingerprint(public_key_pem: bytes) -> str:
    """SHA256:<base64> of the key's DER form: what `openssl pkey -pubin -outform DER | openssl
    dgst -sha256 -binary | openssl base64` prints after "SHA256:" (LISEZMOI.txt)."""
    key = serialization.load_pem_public_key(public_key_pem)
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return "SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode()


def signature_holds(public_key_pem: bytes, data: bytes, signature: bytes) -> bool:
    try:
        key = serialization.load_pem_public_key(public_key_pem)
    except (ValueError, TypeError):
        return False
    if not isinstance(key, Ed25519PublicKey):
        return False
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True
