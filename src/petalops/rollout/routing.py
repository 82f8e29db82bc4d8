"""The traffic policy (registered-model tag ``petalops.traffic``) and per-request routing.

Pure and fast: ``choose_variant`` runs on every request, so it does one blake2b hash of the
request key and an integer comparison. A key always lands in the same bucket for a given
rollout, so a caller sticks to one variant within a step, and because the challenger owns
buckets ``0 .. weight*100 - 1`` a caller that reached the challenger stays there as the
weight grows.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal, get_args

TRAFFIC_TAG = "petalops.traffic"
BUCKETS = 10_000

Strategy = Literal["none", "canary", "bluegreen", "shadow"]
Variant = Literal["champion", "challenger"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)
# Strategies in which the challenger answers a share of live requests.
_WEIGHTED = frozenset({"canary", "bluegreen"})


def utc_now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class TrafficPolicy:
    """What the serving workers should do with the challenger.

    ``weight`` is the challenger's share of live traffic in percent (0-100, fractions
    allowed down to 0.01). ``shadow`` copies every request to the challenger off the
    response path and always answers with the champion.
    """

    strategy: Strategy = "none"
    weight: float = 0.0
    step: int = 0
    rollout_id: str = ""
    updated: str = ""

    @classmethod
    def none(cls) -> TrafficPolicy:
        """The resting state: the champion answers everything."""
        return cls()

    @classmethod
    def parse(cls, text: str | None) -> TrafficPolicy:
        """Parse the tag value; a missing, garbled or unknown tag means strategy ``none``.

        Serving must never fail on a bad tag, so this never raises.
        """
        if not text:
            return cls.none()
        try:
            data = json.loads(text)
        except (ValueError, TypeError):
            return cls.none()
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Any) -> TrafficPolicy:
        """Build from a decoded tag; anything invalid falls back to strategy ``none``."""
        if not isinstance(data, dict):
            return cls.none()
        strategy = data.get("strategy", "none")
        if strategy not in STRATEGIES:
            return cls.none()
        weight = data.get("weight", 0)
        step = data.get("step", 0)
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            return cls.none()
        if isinstance(step, bool) or not isinstance(step, int):
            step = 0
        if weight != weight:  # NaN
            return cls.none()
        rollout_id = data.get("rollout_id", "")
        updated = data.get("updated", "")
        return cls(
            strategy=strategy,
            weight=min(100.0, max(0.0, float(weight))),
            step=max(0, step),
            rollout_id=rollout_id if isinstance(rollout_id, str) else "",
            updated=updated if isinstance(updated, str) else "",
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        # Whole percentages serialize as integers, as in docs/internals.md.
        if float(self.weight).is_integer():
            data["weight"] = int(self.weight)
        return data

    def serialize(self) -> str:
        """The tag value: compact JSON with sorted keys (byte-stable for compare-and-set)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def stamped(self, **changes: Any) -> TrafficPolicy:
        """A copy with ``changes`` applied and ``updated`` set to now."""
        return replace(self, updated=utc_now_iso(), **changes)

    @property
    def challenger_buckets(self) -> int:
        """How many of the 10,000 hash buckets the challenger answers."""
        if self.strategy not in _WEIGHTED:
            return 0
        return round(self.weight * (BUCKETS // 100))

    @property
    def shadow(self) -> bool:
        return self.strategy == "shadow"

    @property
    def needs_challenger(self) -> bool:
        """Whether workers should have the challenger loaded and warm."""
        return self.strategy != "none"


def bucket_of(key: str, salt: str = "") -> int:
    """The stable bucket (0..9999) of a request key; ``salt`` is the rollout id."""
    message = f"{salt}\x1f{key}".encode("utf-8", "surrogatepass")
    digest = hashlib.blake2b(message, digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def choose_variant(policy: TrafficPolicy, key: str) -> Variant:
    """Which variant answers the request with this key (header ``X-Petalops-Key`` or id)."""
    buckets = policy.challenger_buckets
    if buckets <= 0:
        return "champion"
    if buckets >= BUCKETS:
        return "challenger"
    return "challenger" if bucket_of(key, policy.rollout_id) < buckets else "champion"
