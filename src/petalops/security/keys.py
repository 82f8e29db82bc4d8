"""Scoped API keys: making one, storing only its salted hash, finding it again.

A key reads ``po_<key id>_<secret>``. The key id is public (it names the stored record, so
a check is one dict lookup and one hash, whatever the number of keys); the secret is 256
random bits from `secrets`. Only ``sha256(salt + secret)`` is stored, with a random salt
per key. A slow password hash (scrypt, argon2) guards low-entropy passwords against
guessing; a 256-bit random secret cannot be guessed, and a slow hash on every request
would cost milliseconds of CPU per prediction, so SHA-256 it is (as GitHub and PyPI do
for their tokens).

The records live in the monitoring database (table ``api_keys``), or in a JSON file
(``security.keys_file``) for images whose database is not writable or not shared: the file
holds hashes only, so it can be a mounted Secret.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from petalops.config import Settings
from petalops.errors import ConflictError, InputError, NotFoundError

SCOPES = ("predict", "feedback", "admin")
PREFIX = "po"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
_RATE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*")
_PERIOD = {"s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"\s*(\d+)\s*([smhd])\s*")
_DURATION_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True, slots=True)
class Rate:
    """A token bucket's shape: ``count`` requests per ``period`` seconds, in bursts of at
    most ``count`` (the bucket starts full)."""

    count: float
    period: float

    @property
    def per_second(self) -> float:
        return self.count / self.period

    def __str__(self) -> str:
        unit = {1.0: "s", 60.0: "m", 3600.0: "h"}[self.period]
        count = int(self.count) if self.count == int(self.count) else self.count
        return f"{count}/{unit}"


def parse_rate(text: str) -> Rate:
    """``100/s``, ``600/m`` or ``1000/h`` as a `Rate`; InputError naming an example else."""
    match = _RATE.fullmatch(text)
    if match is None or float(match.group(1)) <= 0:
        raise InputError(
            f"rate {text!r} is not a rate; write requests per second, minute or hour, "
            "e.g. 100/s, 600/m or 1000/h",
            "rate",
        )
    return Rate(float(match.group(1)), _PERIOD[match.group(2)[0]])


def parse_duration(text: str) -> float:
    """``90d``, ``12h``, ``30m`` or ``45s`` in seconds."""
    match = _DURATION.fullmatch(text)
    if match is None or int(match.group(1)) <= 0:
        raise InputError(
            f"duration {text!r} is not a duration; e.g. 90d, 12h, 30m or 45s", "expires"
        )
    return float(int(match.group(1)) * _DURATION_SECONDS[match.group(2)])


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One stored key: everything but the key itself."""

    key_id: str
    name: str
    scope: str
    salt: str
    digest: str
    rate: str | None
    created: float
    expires: float | None = None
    revoked: float | None = None

    def status(self, now: float) -> str:
        if self.revoked is not None:
            return "revoked"
        if self.expires is not None and now >= self.expires:
            return "expired"
        return "active"

    def public(self) -> dict[str, Any]:
        """What `keys list` and the audit trail show: no salt, no hash."""
        return {
            "key_id": self.key_id,
            "name": self.name,
            "scope": self.scope,
            "rate": self.rate,
            "created": self.created,
            "expires": self.expires,
            "revoked": self.revoked,
            "status": self.status(time.time()),
        }


def digest(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode()).hexdigest()


def split_key(key: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed key, else None."""
    prefix, _, rest = key.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != PREFIX or not key_id or not secret:
        return None
    return key_id, secret


def new_key(
    name: str, scope: str, rate: str | None = None, expires_in: float | None = None
) -> tuple[str, ApiKey]:
    """A fresh key (shown once) and the record to store; InputError for a bad argument."""
    if scope not in SCOPES:
        raise InputError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}", "scope")
    if not _NAME.fullmatch(name):
        raise InputError(
            f"key name {name!r} must be 1-64 letters, digits, '.', '_', '-' or '@', "
            "starting with a letter or digit; e.g. shop-frontend",
            "name",
        )
    rate_text = str(parse_rate(rate)) if rate else None
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    now = time.time()
    record = ApiKey(
        key_id=key_id,
        name=name,
        scope=scope,
        salt=salt,
        digest=digest(salt, secret),
        rate=rate_text,
        created=now,
        expires=now + expires_in if expires_in else None,
    )
    return f"{PREFIX}_{key_id}_{secret}", record


class KeyStore(Protocol):
    """Where the key records live."""

    def all(self) -> list[ApiKey]: ...

    def add(self, key: ApiKey) -> None: ...

    def revoke(self, name_or_id: str, when: float) -> ApiKey: ...


def _find(keys: list[ApiKey], name_or_id: str) -> ApiKey:
    for key in keys:
        if name_or_id in (key.name, key.key_id):
            return key
    raise NotFoundError(
        f"no API key named {name_or_id!r}; `petalops keys list` shows the names", "name"
    )


class FileKeys:
    """Key records as one JSON document (``{"keys": [...]}``), replaced atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def all(self) -> list[ApiKey]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return []
        try:
            return [ApiKey(**record) for record in json.loads(text)["keys"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(
                f"{self.path} is not a keys file written by `petalops keys create` ({exc})",
                "security.keys_file",
            ) from None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[list[ApiKey]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = self.path.with_name(self.path.name + ".lock")
        with lock.open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            keys = self.all()
            yield keys
            document = json.dumps({"keys": [asdict(k) for k in keys]}, indent=1)
            fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".keys-")
            with os.fdopen(fd, "w") as out:
                out.write(document)
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)  # readers see the old file or the new one

    def add(self, key: ApiKey) -> None:
        with self._locked() as keys:
            if any(k.name == key.name for k in keys):
                raise ConflictError(f"an API key named {key.name!r} exists; pick another name")
            keys.append(key)

    def revoke(self, name_or_id: str, when: float) -> ApiKey:
        with self._locked() as keys:
            found = _find(keys, name_or_id)
            if found.revoked is None:
                keys[keys.index(found)] = found = replace(found, revoked=when)
            return found


class DatabaseKeys:
    """Key records in the monitoring database's ``api_keys`` table."""

    def __init__(self, url: str) -> None:
        from petalops.database.engine import create_engine
        from petalops.database.migrations import migrate

        self.engine = create_engine(url)
        migrate(self.engine)

    def all(self) -> list[ApiKey]:
        import sqlalchemy as sa

        from petalops.database.schema import api_keys

        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(api_keys).order_by(api_keys.c.created)).mappings()
            return [ApiKey(**dict(row)) for row in rows]

    def add(self, key: ApiKey) -> None:
        import sqlalchemy as sa

        from petalops.database.schema import api_keys

        try:
            with self.engine.begin() as conn:
                conn.execute(api_keys.insert().values(**asdict(key)))
        except sa.exc.IntegrityError:
            raise ConflictError(
                f"an API key named {key.name!r} exists; pick another name"
            ) from None

    def revoke(self, name_or_id: str, when: float) -> ApiKey:
        import sqlalchemy as sa

        from petalops.database.schema import api_keys

        found = _find(self.all(), name_or_id)
        if found.revoked is not None:
            return found
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(api_keys).where(api_keys.c.key_id == found.key_id).values(revoked=when)
            )
        return replace(found, revoked=when)

    def close(self) -> None:
        self.engine.dispose()


def open_store(settings: Settings) -> FileKeys | DatabaseKeys:
    """The settings' key store: ``security.keys_file`` if set, else the monitoring database."""
    path = settings.security.keys_file
    if path is not None:
        return FileKeys(path.expanduser())
    return DatabaseKeys(settings.monitor_url)


def has_no_store(settings: Settings) -> bool:
    """True when no key can exist yet, without opening a database: the keys file or the
    SQLite monitoring database is missing. Lets a worker of a keyless server skip loading
    SQLAlchemy (~300 ms of start-up)."""
    path = settings.security.keys_file
    if path is not None:
        return not path.expanduser().exists()
    url = settings.monitor_url
    if url.startswith("sqlite:///"):
        return not Path(url.removeprefix("sqlite:///")).exists()
    return False


def load_keys(settings: Settings) -> list[ApiKey]:
    """Every stored key (revoked and expired ones too), or [] when there is no store yet."""
    if has_no_store(settings):
        return []
    store = open_store(settings)
    try:
        return store.all()
    finally:
        if isinstance(store, DatabaseKeys):
            store.close()


class KeyReader:
    """`load_keys` again and again through one open store (a serving worker's reloads)."""

    def __init__(self) -> None:
        self._store: FileKeys | DatabaseKeys | None = None

    def __call__(self, settings: Settings) -> list[ApiKey]:
        if self._store is None:
            if has_no_store(settings):
                return []
            self._store = open_store(settings)
        return self._store.all()
