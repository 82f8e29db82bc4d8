"""Which registry tags carry a version's signature, and the check every bundle load passes.

`train` records the signature of the bundle's manifest and the signing key's id on the
version (``petalops.signature``, ``petalops.signing_key``). Every load of a bundle goes
through ``registry.resolve.fetch_bundle``, which calls ``check_signature`` on the manifest
it is about to hand out: with ``signing.trusted_keys`` set, a bundle that is unsigned,
badly signed or signed by a key not trusted here is refused, whatever its sha256 tag says.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from petalops.config import Settings
from petalops.errors import SignatureError
from petalops.runtime.bundle import MANIFEST

if TYPE_CHECKING:
    from petalops.registry.resolve import VersionInfo
    from petalops.runtime.signing import Signature, TrustedKeys

SIGNATURE_TAG = "petalops.signature"
SIGNING_KEY_TAG = "petalops.signing_key"


def signature_tags(signature: Signature) -> dict[str, str]:
    """The version tags that record a signature."""
    return {SIGNATURE_TAG: signature.value, SIGNING_KEY_TAG: signature.key_id}


def trusted_keys(settings: Settings) -> TrustedKeys | None:
    """The public keys this install trusts, None when it trusts none (read from their files
    on every call, so a key added or removed takes effect at the next load, no restart)."""
    if not settings.signing.trusted_keys:
        return None
    # Imported only when keys are trusted: cryptography costs every `predict` and worker
    # start 12-44 ms (measured, -X importtime) that the unsigned default never needs.
    from petalops.runtime.signing import TrustedKeys

    return TrustedKeys.from_paths(settings.signing.trusted_keys)


def describe(info: VersionInfo) -> str:
    return f"version {info.version} of {info.name!r}"


def check_signature(
    settings: Settings, info: VersionInfo, directory: Path, trusted: TrustedKeys | None = None
) -> None:
    """Refuse the bundle in ``directory`` unless its manifest is signed by a trusted key
    (a no-op when no key is trusted: unsigned models are allowed then)."""
    keys = trusted if trusted is not None else trusted_keys(settings)
    if not keys:
        return
    manifest = (directory / MANIFEST).read_bytes()
    keys.verify(
        manifest,
        info.tags.get(SIGNATURE_TAG, ""),
        info.tags.get(SIGNING_KEY_TAG, ""),
        describe(info),
    )


@dataclass(frozen=True)
class SignatureState:
    """What `registry show` says about a version's signature."""

    signed: bool
    key_id: str
    # True / False when some key is trusted here, None when nothing is (nothing to check).
    verified: bool | None
    detail: str


def signature_state(settings: Settings, info: VersionInfo, directory: Path) -> SignatureState:
    """The signature of a version and whether it verifies with this install's trusted keys."""
    signed = bool(info.tags.get(SIGNATURE_TAG))
    key = info.tags.get(SIGNING_KEY_TAG, "")
    keys = trusted_keys(settings)
    if not keys:
        return SignatureState(
            signed, key, None, "not checked: no trusted key is configured (signing.trusted_keys)"
        )
    try:
        check_signature(settings, info, directory, keys)
    except SignatureError as exc:
        return SignatureState(signed, key, False, exc.message)
    return SignatureState(signed, key, True, f"verifies with trusted key {key}")
