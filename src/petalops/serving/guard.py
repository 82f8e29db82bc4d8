"""A serving worker's key check: which scopes need a key, the check itself, rate limits.

Each worker reloads the stored keys (`petalops.security.keys.load_keys`) every
``reconcile_seconds``, off the event loop, so a key created or revoked anywhere works or
stops working on every worker within one reconcile interval. Until the first load has
succeeded every guarded route answers 503: a worker that cannot read its keys fails
closed. A later failed reload keeps the last keys it read.

A scope needs a key as soon as one key of that scope exists (revoked and expired ones
count: revoking the last key does not open the routes again). An ``admin`` key is good
for every scope. The admin routes also take the admin token; they stay off (403) while
there is neither a token nor an admin key.

Rate limits are a token bucket per key *per worker* (in memory, no shared store on the
request path): with N workers a key gets up to N times its rate in all. Hand-written: the
well-kept limiters (`limits`, `slowapi`) bring a storage layer and a framework binding for
what is ten lines here, on the hottest path there is.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import math
import time
from collections.abc import Callable
from typing import Any

from petalops.config import Settings
from petalops.security.keys import SCOPES, ApiKey, KeyReader, Rate, parse_rate, split_key
from petalops.serving.http import Call, HttpError
from petalops.serving.metrics import RequestMetrics

# The example value shipped in .env.example and the k8s Secret: never a real secret.
DEFAULT_ADMIN_TOKEN = "change-me"
_BEARER = [(b"www-authenticate", b"Bearer")]
# Compared against when the key id is unknown, so that a miss costs what a hit costs.
_DUMMY = (hashlib.sha256(bytes(16)), hashlib.sha256(bytes(16) + b"-").digest())
_RETRY_SECONDS = 1.0


class KeyGuard:
    """The keys one worker knows, and the checks of its guarded routes."""

    def __init__(
        self,
        settings: Settings,
        metrics: RequestMetrics | None = None,
        loader: Callable[[Settings], list[ApiKey]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self._loader = loader or KeyReader()
        self._clock = clock
        self.loaded = False
        self.last_error: str | None = None
        self.refreshed: float | None = None
        # Scopes whose routes need a key now; all of them until the first load (fail closed).
        self.guarded: frozenset[str] = frozenset(SCOPES)
        self._keys: dict[str, ApiKey] = {}
        self._hashes: dict[str, tuple[Any, bytes]] = {}
        self._verified: dict[str, ApiKey] = {}
        self._rates: dict[str, Rate] = {}
        self._buckets: dict[str, list[float]] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def _admin_token(self) -> bytes:
        token = self.settings.admin_token
        return token.encode() if token and token != DEFAULT_ADMIN_TOKEN else b""

    @property
    def _feedback_token(self) -> bytes:
        return self.settings.serve.feedback_token.encode()

    # -- keeping up with the store -----------------------------------------------------------

    def use(self, keys: list[ApiKey]) -> None:
        """Take ``keys`` as the worker's key set (buckets of unchanged keys carry over)."""
        self._keys = {key.key_id: key for key in keys}
        # Per key, SHA-256 already fed its salt (copied per check) and the digest as bytes:
        # half the cost of hashing salt + secret from their hex text on every request.
        # Keys seen valid since this load, by the exact text sent: a repeat caller skips the
        # hash. A miss costs the full constant-time check; a hit or a miss tells nothing the
        # answer does not (only verified keys go in, and str hashing is keyed per process).
        self._verified = {}
        self._hashes = {
            key.key_id: (hashlib.sha256(bytes.fromhex(key.salt)), bytes.fromhex(key.digest))
            for key in keys
        }
        self._rates = {key.key_id: parse_rate(key.rate) for key in keys if key.rate}
        self._buckets = {k: b for k, b in self._buckets.items() if k in self._rates}
        self.guarded = frozenset(key.scope for key in keys)
        self.loaded = True

    async def refresh(self) -> None:
        """Reload the keys (in a thread); on failure keep the last ones and say why."""
        try:
            keys = await asyncio.to_thread(self._loader, self.settings)
        except Exception as exc:
            self.last_error = repr(exc)
            return
        self.last_error = None
        self.use(keys)
        self.refreshed = time.time()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            pace = self.settings.reconcile_seconds if self.loaded else _RETRY_SECONDS
            await asyncio.sleep(min(pace, self.settings.reconcile_seconds))
            await self.refresh()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def status(self) -> dict[str, Any]:
        """What `/admin/status` shows of this worker's keys (names only)."""
        now = time.time()
        return {
            "loaded": self.loaded,
            "guarded_scopes": sorted(self.guarded),
            "keys": len(self._keys),
            "active": sorted(k.name for k in self._keys.values() if k.status(now) == "active"),
            "refreshed": self.refreshed,
            "last_error": self.last_error,
        }

    # -- checks ------------------------------------------------------------------------------

    def check(self, call: Call, scope: str) -> None:
        """Let the request through on a valid key of ``scope`` (or admin), within its rate;
        else raise the 401 / 403 / 429 / 503 that says why. Sets ``call.key_name`` and
        ``call.key_scope``. Called only while ``scope`` is guarded."""
        presented = self._presented(call, scope)
        if presented is None:
            raise self._failure(
                401,
                scope,
                "missing",
                f"this route needs an API key of scope {scope!r}; send it as "
                "'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
            )
        if scope == "feedback" and split_key(presented) is None:
            legacy = self._legacy(presented.encode("latin-1"))
            if legacy is not None:
                call.key_name, call.key_scope = legacy
                return
        key = self._verify(presented, scope)
        self._grant(call, key, scope)

    def admin(self, call: Call) -> str:
        """The actor behind an admin request (an admin key's name, or ``admin-token``);
        403 while there is neither an admin token nor an admin key, else 401 / 403 like
        `check`."""
        token = self._admin_token
        if not token and "admin" not in self.guarded:
            shipped = self.settings.admin_token == DEFAULT_ADMIN_TOKEN
            why = (
                f"PETALOPS_ADMIN_TOKEN is the shipped example {DEFAULT_ADMIN_TOKEN!r}; set it "
                "to a secret of your own"
                if shipped
                else "set PETALOPS_ADMIN_TOKEN"
            )
            raise self._failure(
                403,
                "admin",
                "disabled",
                f"admin routes are disabled: {why}, or create an admin key with "
                "`petalops keys create --scope admin`",
                bearer=False,
            )
        reason = "invalid"
        try:
            presented = self._presented(call, "admin", count=False)
        except HttpError:
            presented, reason = None, "malformed"
        if presented is not None and split_key(presented) is not None:
            key = self._verify(presented, "admin")
            self._grant(call, key, "admin")
            return key.name
        if token and presented is not None and hmac.compare_digest(presented.encode(), token):
            call.key_name, call.key_scope = "admin-token", "admin"
            return "admin-token"
        if presented is None and reason != "malformed":
            reason = "missing"
        raise self._failure(
            401,
            "admin",
            reason,
            "missing or wrong admin token or admin key; send 'Authorization: Bearer "
            "<PETALOPS_ADMIN_TOKEN>' or 'Bearer <admin key>' (`petalops keys create --scope "
            "admin`)",
        )

    def _legacy(self, given: bytes) -> tuple[str, str] | None:
        """The static tokens feedback took before keys: serve.feedback_token, admin token."""
        admin, feedback = self._admin_token, self._feedback_token
        if admin and hmac.compare_digest(given, admin):
            return "admin-token", "admin"
        if feedback and hmac.compare_digest(given, feedback):
            return "feedback-token", "feedback"
        return None

    def _presented(self, call: Call, scope: str, count: bool = True) -> str | None:
        """The credential sent: ``X-API-Key``, else a Bearer ``Authorization``; 401 for a
        malformed header."""
        if call.api_key:
            return call.api_key.decode("latin-1").strip()
        header = call.authorization
        if not header:
            return None
        scheme, _, value = header.decode("latin-1").strip().partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not value:
            raise self._failure(
                401,
                scope,
                "malformed" if count else "",
                "the Authorization header must read 'Bearer <key>' (or send 'X-API-Key: "
                f"<key>'), got scheme {scheme[:20]!r}",
            )
        return value

    def _verify(self, presented: str, scope: str) -> ApiKey:
        if not self.loaded:
            raise HttpError(
                503,
                "this worker has not loaded its API keys yet (the key store: "
                f"{self.last_error or 'loading'}); retry shortly",
                headers=[(b"retry-after", b"1")],
            )
        key = self._verified.get(presented)
        if key is None:
            key = self._hashed(presented, scope)
        if key.revoked is not None or key.expires is not None:
            state = key.status(time.time())
            if state != "active":
                raise self._failure(
                    401,
                    scope,
                    state,
                    f"API key {key.name!r} is {state}; create a new one with "
                    "`petalops keys create`",
                )
        return key

    def _hashed(self, presented: str, scope: str) -> ApiKey:
        """The full check: the salted hash of the secret, compared in constant time."""
        parts = split_key(presented)
        key_id, secret = parts if parts else ("", presented)
        key = self._keys.get(key_id)
        salted, expected = self._hashes.get(key_id, _DUMMY)
        hasher = salted.copy()
        hasher.update(secret.encode())
        matches = hmac.compare_digest(hasher.digest(), expected)
        if key is None or not matches:
            raise self._failure(
                401,
                scope,
                "invalid",
                "the API key is not valid here; `petalops keys list` shows the keys, "
                "`petalops keys create` makes one",
            )
        self._verified[presented] = key
        return key

    def _grant(self, call: Call, key: ApiKey, scope: str) -> None:
        if key.scope != scope and key.scope != "admin":
            raise self._failure(
                403,
                scope,
                "scope",
                f"API key {key.name!r} has scope {key.scope!r}; this route needs {scope!r} "
                f"(create one with `petalops keys create --scope {scope}`)",
                bearer=False,
            )
        rate = self._rates.get(key.key_id)
        if rate is not None:
            now = self._clock()
            bucket = self._buckets.get(key.key_id)
            if bucket is None:
                bucket = self._buckets[key.key_id] = [rate.count, now]
            tokens = min(rate.count, bucket[0] + (now - bucket[1]) * rate.per_second)
            bucket[1] = now
            if tokens < 1.0:
                bucket[0] = tokens
                if self.metrics is not None:
                    self.metrics.keyed(key.name, "rate_limited")
                wait = max(1, math.ceil((1.0 - tokens) / rate.per_second))
                raise HttpError(
                    429,
                    f"API key {key.name!r} is over its rate of {key.rate} (per worker); "
                    f"retry after {wait} s",
                    "Authorization",
                    headers=[(b"retry-after", b"%d" % wait)],
                )
            bucket[0] = tokens - 1.0
        if self.metrics is not None:
            self.metrics.keyed(key.name, "allowed")
        call.key_name, call.key_scope = key.name, key.scope

    def _failure(
        self, status: int, scope: str, reason: str, message: str, bearer: bool = True
    ) -> HttpError:
        if self.metrics is not None and reason:
            self.metrics.auth_failed(scope, reason)
        return HttpError(
            status,
            message,
            "Authorization",
            "Bearer po_1a2b3c4d5e6f_…",
            headers=list(_BEARER) if bearer else None,
        )
