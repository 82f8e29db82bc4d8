"""Ed25519 key pairs, manifest signatures and the verdicts on them."""

from __future__ import annotations

import base64
import hashlib
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from petalops.errors import ConfigError, SignatureError
from petalops.runtime.signing import Signer, TrustedKeys, generate, key_id, load_public_key

MANIFEST = b'{"format": 1, "files": {"linear.json": "ab12"}}'


def test_generate_writes_a_private_key_only_its_owner_reads(tmp_path: Path) -> None:
    pair = generate(tmp_path / "keys")
    assert stat.S_IMODE(pair.private.stat().st_mode) == 0o600
    assert pair.private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert pair.public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    # The key id is the fingerprint of the public key: sha256 of its 32 raw bytes.
    public = load_public_key(pair.public)
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert pair.key_id == key_id(public) == hashlib.sha256(raw).hexdigest()[:16]
    assert Signer.from_file(pair.private).key_id == pair.key_id
    assert sorted(p.name for p in pair.private.parent.iterdir()) == ["signing.key", "signing.pub"]


def test_generate_never_replaces_a_pair_unless_forced(tmp_path: Path) -> None:
    first = generate(tmp_path)
    with pytest.raises(ConfigError, match="exists already.*--force"):
        generate(tmp_path)
    assert Signer.from_file(first.private).key_id == first.key_id
    second = generate(tmp_path, force=True)
    assert second.key_id != first.key_id


def test_a_signature_verifies_only_for_the_same_manifest(tmp_path: Path) -> None:
    pair = generate(tmp_path)
    signature = Signer.from_file(pair.private).sign(MANIFEST)
    trusted = TrustedKeys.from_paths([pair.public])
    assert signature.key_id == pair.key_id
    trusted.verify(MANIFEST, signature.value, signature.key_id, "version 1 of 'iris'")
    tampered = MANIFEST.replace(b"ab12", b"cd34")
    with pytest.raises(SignatureError, match="does not match its manifest") as refused:
        trusted.verify(tampered, signature.value, signature.key_id, "version 1 of 'iris'")
    assert refused.value.reason == "bad_signature"
    assert "version 1 of 'iris'" in refused.value.message


def test_a_signature_of_the_bare_manifest_does_not_verify(tmp_path: Path) -> None:
    # Signatures carry a petalops context prefix: the key's signature of the same bytes
    # made for another purpose is not a bundle signature.
    pair = generate(tmp_path)
    key = serialization.load_pem_private_key(pair.private.read_bytes(), password=None)
    bare = base64.b64encode(key.sign(MANIFEST)).decode()  # type: ignore[union-attr,call-arg]
    with pytest.raises(SignatureError) as refused:
        TrustedKeys.from_paths([pair.public]).verify(MANIFEST, bare, pair.key_id, "v1")
    assert refused.value.reason == "bad_signature"


def test_unsigned_unknown_key_and_garbage_are_refused(tmp_path: Path) -> None:
    ours = generate(tmp_path / "ours")
    theirs = generate(tmp_path / "theirs")
    trusted = TrustedKeys.from_paths([ours.public])
    by_them = Signer.from_file(theirs.private).sign(MANIFEST)
    with pytest.raises(SignatureError, match="is unsigned") as unsigned:
        trusted.verify(MANIFEST, "", "", "v3")
    assert unsigned.value.reason == "unsigned"
    with pytest.raises(SignatureError, match=f"signed by key {theirs.key_id}.*not trusted") as who:
        trusted.verify(MANIFEST, by_them.value, by_them.key_id, "v3")
    assert who.value.reason == "unknown_key"
    # Their signature relabelled with our key id is still theirs.
    with pytest.raises(SignatureError) as relabelled:
        trusted.verify(MANIFEST, by_them.value, ours.key_id, "v3")
    assert relabelled.value.reason == "bad_signature"
    with pytest.raises(SignatureError) as garbage:
        trusted.verify(MANIFEST, "not base64!", ours.key_id, "v3")
    assert garbage.value.reason == "bad_signature"


def test_trusted_keys_from_files_and_directories(tmp_path: Path) -> None:
    a = generate(tmp_path / "dir", name="a")
    b = generate(tmp_path / "dir", name="b")
    c = generate(tmp_path / "other", name="c")
    trusted = TrustedKeys.from_paths([tmp_path / "dir", c.public])
    assert trusted.ids() == sorted([a.key_id, b.key_id, c.key_id])
    assert not TrustedKeys.from_paths([])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="holds no \\*.pub file"):
        TrustedKeys.from_paths([tmp_path / "empty"])
    with pytest.raises(ConfigError, match="cannot be read"):
        TrustedKeys.from_paths([tmp_path / "missing.pub"])
    with pytest.raises(ConfigError, match="not a PEM public key"):
        TrustedKeys.from_paths([a.private])


def test_signer_refuses_unusable_key_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read.*keys signing init"):
        Signer.from_file(tmp_path / "nope.key")
    pair = generate(tmp_path)
    pair.private.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by other users.*chmod 600"):
        Signer.from_file(pair.private)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = tmp_path / "rsa.key"
    other.write_bytes(
        rsa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    other.chmod(0o600)
    with pytest.raises(ConfigError, match="not an Ed25519 key"):
        Signer.from_file(other)
    pair.public.chmod(0o600)
    with pytest.raises(ConfigError, match="not an unencrypted PEM private key"):
        Signer.from_file(pair.public)
