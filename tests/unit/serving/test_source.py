"""The registry as the server's model source: the last-known-good record it keeps passes
the same signature check as a version read from the registry."""

from __future__ import annotations

import json

import pytest
from tests.utils.signing import trusting

from petalops.config import Settings
from petalops.errors import SignatureError
from petalops.registry import resolve
from petalops.runtime.signing import KeyPair
from petalops.serving.source import RegistrySource


def test_last_known_good_keeps_and_checks_the_signature(
    trained_settings: Settings, trainer_key: KeyPair
) -> None:
    settings = trusting(trained_settings, trainer_key.public)
    source = RegistrySource(settings)
    champion = resolve(settings)
    source.load(champion)
    source.remember(champion)
    (known,) = source.last_known_good()
    assert known.tags["petalops.signing_key"] == trainer_key.key_id
    assert source.load(known).version == champion.version
    # A record stripped of its signature (or a bundle served before signing was on) is
    # refused once keys are trusted, as the registry's own version would be.
    record = settings.cache_dir / "iris" / "served.json"
    entries = json.loads(record.read_text())
    for entry in entries:
        entry.pop("tags")
    record.write_text(json.dumps(entries))
    (stripped,) = source.last_known_good()
    with pytest.raises(SignatureError, match="is unsigned"):
        source.load(stripped)
