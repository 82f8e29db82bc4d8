"""Signatures of model bundles: Ed25519 keys, the signature of a manifest, and its check.

The sha256 of ``manifest.json`` on the registry version proves a bundle was not changed
after registration only to someone who trusts the registry: whoever can write its artifacts
can write its tags as well. A signature made at training time by a key the registry never
holds moves that trust to the key's holder. What is signed is the manifest's bytes, which
pin every other file of the bundle through the sha256 it lists.

The key id is the fingerprint of the public key (the first 16 hex digits of the sha256 of
its 32 raw bytes): it says which trusted key to verify with, and a version's tags name it.
Everything here is pure (bytes and key files in, signatures and verdicts out); which tags
carry the signature is the registry's business (`petalops.registry.resolve`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from petalops.errors import ConfigError, SignatureError

# Domain separation: a petalops signing key's signature over a manifest can never be
# replayed as its signature over anything else, nor the other way round.
CONTEXT = b"petalops.bundle-manifest.v1\x00"
PRIVATE_SUFFIX = ".key"
PUBLIC_SUFFIX = ".pub"


def key_id(public: Ed25519PublicKey) -> str:
    """The fingerprint that names a public key: 16 hex digits of the sha256 of its raw bytes."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class Signature:
    """A manifest's signature (base64) and the id of the key that made it."""

    value: str
    key_id: str


@dataclass(frozen=True)
class KeyPair:
    """Where ``keys signing init`` wrote a key pair, and its key id."""

    private: Path
    public: Path
    key_id: str


def generate(directory: Path, name: str = "signing", force: bool = False) -> KeyPair:
    """Write a new Ed25519 key pair: ``<name>.key`` (PKCS#8 PEM, mode 0600, created so that
    no other user can ever read it) and ``<name>.pub`` (SubjectPublicKeyInfo PEM)."""
    private_path = directory / f"{name}{PRIVATE_SUFFIX}"
    public_path = directory / f"{name}{PUBLIC_SUFFIX}"
    if not force:
        for path in (private_path, public_path):
            if path.exists():
                raise ConfigError(
                    f"{path} exists already; keep it, or replace the pair with --force "
                    "(versions signed by the old key then verify only where its .pub is "
                    "still trusted)"
                )
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    directory.mkdir(parents=True, exist_ok=True)
    _write_new(private_path, private_pem, 0o600)
    _write_new(public_path, public_pem, 0o644)
    return KeyPair(private=private_path, public=public_path, key_id=key_id(key.public_key()))


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to a temporary file created with ``mode`` (never wider, whatever the
    umask) and rename it over ``path``: a reader sees the whole key or none."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


class Signer:
    """A private signing key loaded from its file."""

    def __init__(self, key: Ed25519PrivateKey, source: Path) -> None:
        self._key = key
        self.source = source
        self.key_id = key_id(key.public_key())

    @classmethod
    def from_file(cls, path: Path) -> Signer:
        """Load an Ed25519 private key (PEM); a missing, unreadable, too widely readable
        or non-Ed25519 file is a one-line ConfigError naming the fix."""
        path = path.expanduser()
        try:
            data = path.read_bytes()
            mode = path.stat().st_mode & 0o777
        except OSError as exc:
            raise ConfigError(
                f"signing.key_file {path} cannot be read ({exc.strerror}); create a key pair "
                "with `petalops keys signing init`"
            ) from None
        if mode & 0o077:
            raise ConfigError(
                f"signing.key_file {path} is readable by other users (mode {mode:04o}); "
                f"restrict it: chmod 600 {path}"
            )
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise ConfigError(
                f"signing.key_file {path} is not an unencrypted PEM private key; create one "
                "with `petalops keys signing init`"
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(
                f"signing.key_file {path} holds a {type(key).__name__}, not an Ed25519 key; "
                "create one with `petalops keys signing init`"
            )
        return cls(key, path)

    def sign(self, manifest: bytes) -> Signature:
        """The signature of a manifest's bytes."""
        value = self._key.sign(CONTEXT + manifest)
        return Signature(value=base64.b64encode(value).decode("ascii"), key_id=self.key_id)


def load_public_key(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file; anything else is a one-line ConfigError."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"trusted key {path} cannot be read ({exc.strerror}); list the .pub files (or a "
            "directory of them) in signing.trusted_keys"
        ) from None
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ConfigError(
            f"trusted key {path} is not a PEM public key; use the .pub file written by "
            "`petalops keys signing init`"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"trusted key {path} is a {type(key).__name__}, not an Ed25519 key")
    return key


class TrustedKeys:
    """The public keys whose signatures a server or `predict` accepts, by key id."""

    def __init__(self, keys: dict[str, Ed25519PublicKey]) -> None:
        self.keys = keys

    @classmethod
    def from_paths(cls, paths: list[Path]) -> TrustedKeys:
        """Each path is a ``.pub`` file, or a directory whose ``*.pub`` files are all trusted."""
        keys: dict[str, Ed25519PublicKey] = {}
        for entry in paths:
            path = entry.expanduser()
            files = sorted(path.glob(f"*{PUBLIC_SUFFIX}")) if path.is_dir() else [path]
            if path.is_dir() and not files:
                raise ConfigError(
                    f"signing.trusted_keys names the directory {path}, which holds no "
                    f"*{PUBLIC_SUFFIX} file; copy the trainer's public key there"
                )
            for file in files:
                key = load_public_key(file)
                keys[key_id(key)] = key
        return cls(keys)

    def __bool__(self) -> bool:
        return bool(self.keys)

    def ids(self) -> list[str]:
        return sorted(self.keys)

    def verify(self, manifest: bytes, signature: str, signed_by: str, what: str) -> None:
        """Check ``signature`` (base64) of ``manifest`` by the key ``signed_by``; raise a
        SignatureError naming ``what`` (``version 3 of 'iris'``) when it is missing, wrong
        or from a key not trusted here. Only call it when some key is trusted."""
        public = self.signer_of(signature, signed_by, what)
        try:
            public.verify(base64.b64decode(signature, validate=True), CONTEXT + manifest)
        except (InvalidSignature, binascii.Error, ValueError):
            raise SignatureError(
                f"{what}: the signature by trusted key {signed_by} does not match its "
                "manifest; the bundle (or its sha256 tag) was changed after it was signed, "
                "refusing to load it",
                reason="bad_signature",
            ) from None

    def signer_of(self, signature: str, signed_by: str, what: str) -> Ed25519PublicKey:
        """The trusted key a signature names; a SignatureError when there is no signature
        or its key is not trusted here (what can be told from the tags alone)."""
        if not signature:
            raise SignatureError(
                f"{what} is unsigned, and this install only serves bundles signed by a "
                f"trusted key ({', '.join(self.ids())}); retrain it with signing.key_file "
                "set, or drop signing.trusted_keys to allow unsigned models",
                reason="unsigned",
            )
        public = self.keys.get(signed_by)
        if public is None:
            raise SignatureError(
                f"{what} is signed by key {signed_by or '(none named)'}, which is not "
                f"trusted here ({', '.join(self.ids())}); add its .pub file to "
                "signing.trusted_keys only if you trust whoever holds that key",
                reason="unknown_key",
            )
        return public
