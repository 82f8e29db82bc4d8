"""What an attacker with write access to the registry can do: register a modified bundle
under a new version and retag it so that every checksum matches."""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from pathlib import Path

from petalops.config import Settings
from petalops.registry import SHA_TAG, fetch_bundle, resolve
from petalops.registry.signatures import SIGNATURE_TAG, SIGNING_KEY_TAG, signature_tags
from petalops.registry.store import client as registry_client
from petalops.runtime.bundle import MANIFEST
from petalops.runtime.signing import Signer

# Tags an attacker copying a version would leave behind (the registry writes them itself).
_NOT_COPIED = ("petalops.alias_history", "petalops.promoted_by", "petalops.promoted_at")


def tampered_bundle(settings: Settings, version: str, into: Path) -> Path:
    """A copy of a version's bundle whose linear model always answers class 2, with the
    manifest rewritten so that it lists the new file's sha256 (every checksum holds)."""
    source = fetch_bundle(trusting(settings), resolve(settings, f"{settings.project}/{version}"))
    bundle = into / "petalops"
    shutil.copytree(source, bundle)
    linear = bundle / "linear.json"
    params = json.loads(linear.read_text())
    params["bias"] = [0.0] * (len(params["bias"]) - 1) + [1e6]
    linear.write_text(json.dumps(params))
    manifest = json.loads((bundle / MANIFEST).read_text())
    manifest["files"]["linear.json"] = hashlib.sha256(linear.read_bytes()).hexdigest()
    (bundle / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return bundle


def register_tampered(
    settings: Settings,
    version: str,
    workdir: Path,
    signature: str = "copied",
    signer: Signer | None = None,
) -> str:
    """Register a tampered copy of ``version`` as a new version whose ``petalops.sha256``
    matches the tampered manifest. ``signature``: ``copied`` (the original version's
    signature tags, as a retagging attacker leaves them), ``resigned`` (by ``signer``, a key
    of the attacker's own) or ``none``. Returns the new version number."""
    original = resolve(settings, f"{settings.project}/{version}")
    workdir.mkdir(parents=True, exist_ok=True)
    bundle = tampered_bundle(settings, version, workdir / "bundle")
    manifest = (bundle / MANIFEST).read_bytes()
    tags = {k: v for k, v in original.tags.items() if k not in _NOT_COPIED}
    tags[SHA_TAG] = hashlib.sha256(manifest).hexdigest()
    if signature == "none":
        tags.pop(SIGNATURE_TAG, None)
        tags.pop(SIGNING_KEY_TAG, None)
    elif signature == "resigned":
        assert signer is not None
        tags.update(signature_tags(signer.sign(manifest)))
    client = registry_client(settings)
    experiment = client.create_experiment(
        f"tamper-{uuid.uuid4().hex[:8]}", artifact_location=(workdir / "artifacts").as_uri()
    )
    run = client.create_run(experiment)
    client.log_artifacts(run.info.run_id, str(bundle), "petalops")
    client.set_terminated(run.info.run_id)
    created = client.create_model_version(
        settings.project,
        source=f"{run.info.artifact_uri}/petalops",
        run_id=run.info.run_id,
        tags=tags,
    )
    return str(created.version)


def trusting(settings: Settings, *keys: Path) -> Settings:
    """The same settings with ``signing.trusted_keys`` set to ``keys``."""
    signing = settings.signing.model_copy(update={"trusted_keys": list(keys)})
    return settings.model_copy(update={"signing": signing})
