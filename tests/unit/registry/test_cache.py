"""The bundle cache: atomic fills (a race of fetches never half-fills or fails), discards,
and the last-known-good record a worker falls back on during a registry outage."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from tests.utils.serving import make_bundle

from petalops.errors import IntegrityError
from petalops.registry.cache import KEEP, BundleCache


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return make_bundle(tmp_path_factory.mktemp("bundle") / "v1", 1.0)


def test_concurrent_fills_of_one_version_all_get_the_whole_verified_copy(
    tmp_path: Path, bundle: tuple[Path, str]
) -> None:
    source, sha = bundle
    cache = BundleCache(tmp_path / "cache")
    racers = 8
    barrier = threading.Barrier(racers)

    def fetch(staging: Path) -> None:
        shutil.copytree(source, staging)
        barrier.wait(10)  # every racer holds a full copy; all rename at once

    results: list[Path | BaseException] = []

    def fill() -> None:
        try:
            results.append(cache.fill("iris", "1", sha, fetch))
        except BaseException as exc:
            results.append(exc)

    threads = [threading.Thread(target=fill) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == [tmp_path / "cache" / "iris" / "1"] * racers
    left = sorted(p.name for p in (tmp_path / "cache" / "iris").iterdir())
    assert left == ["1"]  # no staging directory left behind


def test_a_fetch_that_does_not_verify_is_never_cached(
    tmp_path: Path, bundle: tuple[Path, str]
) -> None:
    source, sha = bundle
    cache = BundleCache(tmp_path / "cache")

    def tampered(staging: Path) -> None:
        shutil.copytree(source, staging)
        (staging / "linear.json").write_text("{}")

    with pytest.raises(IntegrityError, match="checksum mismatch"):
        cache.fill("iris", "1", sha, tampered)
    assert cache.cached("iris", "1") is None
    assert cache.fill("iris", "1", sha, lambda staging: shutil.copytree(source, staging))


def test_discard_drops_the_copy_whole(tmp_path: Path, bundle: tuple[Path, str]) -> None:
    source, sha = bundle
    cache = BundleCache(tmp_path / "cache")
    cache.fill("iris", "1", sha, lambda staging: shutil.copytree(source, staging))
    cache.discard("iris", "1")
    assert cache.cached("iris", "1") is None
    assert list((tmp_path / "cache" / "iris").iterdir()) == []
    cache.discard("iris", "1")  # twice is harmless


def test_last_known_good_is_newest_first_bounded_and_only_what_is_cached(
    tmp_path: Path, bundle: tuple[Path, str]
) -> None:
    source, sha = bundle
    cache = BundleCache(tmp_path / "cache")
    assert cache.last_known_good("iris") == []
    cache.remember("iris", "1", sha)  # not cached yet: nothing to fall back on
    assert cache.last_known_good("iris") == []
    versions = [str(v) for v in range(1, KEEP + 3)]
    for version in versions:
        cache.fill("iris", version, sha, lambda staging: shutil.copytree(source, staging))
        cache.remember("iris", version, sha)
    cache.remember("iris", "2", sha)  # served again: it moves to the front
    known = [k.version for k in cache.last_known_good("iris")]
    assert known[0] == "2" and len(known) == KEEP and len(set(known)) == KEEP
    cache.discard("iris", "2")
    assert "2" not in [k.version for k in cache.last_known_good("iris")]
    assert all(k.sha256 == sha for k in cache.last_known_good("iris"))


def test_a_damaged_record_means_no_fallback_not_a_crash(tmp_path: Path) -> None:
    cache = BundleCache(tmp_path / "cache")
    (tmp_path / "cache" / "iris").mkdir(parents=True)
    (tmp_path / "cache" / "iris" / "served.json").write_text("{not json")
    assert cache.last_known_good("iris") == []


def test_the_record_keeps_the_signature_tags_it_was_served_with(
    tmp_path: Path, bundle: tuple[Path, str]
) -> None:
    source, sha = bundle
    cache = BundleCache(tmp_path / "cache")
    for version in ("1", "2"):
        cache.fill("iris", version, sha, lambda staging: shutil.copytree(source, staging))
    signed = {"petalops.signature": "c2ln", "petalops.signing_key": "0123456789abcdef"}
    cache.remember("iris", "1", sha, signed)
    cache.remember("iris", "2", sha)  # unsigned
    known = {k.version: k.tags for k in cache.last_known_good("iris")}
    assert known == {"1": signed, "2": {}}
