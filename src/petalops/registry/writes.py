"""Alias and tag writes without MLflow's client, for the stores `resolve.py` reads directly.

`petalops rollout start` (and `promote`, `abort` …) move an alias and set two tags of the
registered model; importing MLflow for that costs more than the rest of the command. For the
embedded SQLite store these functions write the rows MLflow's own ``SqlAlchemyStore`` writes
for the same calls (``set_registered_model_alias``, ``set_registered_model_tag``,
``set_model_version_tag``, ``delete_registered_model_alias``: a merge of one row each, no
other column touched), in one transaction; for an MLflow tracking server they call its
public REST API (which also fires its webhooks). `petalops.registry.store` decides: whatever
these cannot take (another store, a name or value MLflow might refuse, a schema they do not
know) goes through the MLflow client and its own validation.
"""

from __future__ import annotations

import json
import re
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from petalops.config import Settings
from petalops.errors import NotFoundError, RegistryUnavailableError
from petalops.registry.resolve import _request, _sqlite_path

# What MLflow surely accepts (mlflow.utils.validation): aliases of word characters and "-",
# neither "latest" nor "v<digits>" (reserved); tag keys of the characters its parameter names
# allow, no "..", not absolute; values up to its registry limit. Anything else is left to
# the client, which says what is wrong in MLflow's words.
_ALIAS = re.compile(r"^[\w-]{1,255}$")
_RESERVED_ALIAS = re.compile(r"^(latest|v\d+)$", re.IGNORECASE)
_TAG_KEY = re.compile(r"^[\w.\-: ]{1,250}$")
MAX_TAG_VALUE = 5000
_MODEL_NAME = re.compile(r"^[^/:]{1,256}$")


def accepts(
    settings: Settings,
    name: str,
    alias: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> bool:
    """Whether these writes can do it: an embedded or HTTP store, and names and values MLflow
    surely accepts."""
    uri = settings.tracking_uri
    if _sqlite_path(uri) is None and not uri.startswith(("http://", "https://")):
        return False
    if not _MODEL_NAME.match(name) or ".." in name:
        return False
    if alias is not None and (not _ALIAS.match(alias) or _RESERVED_ALIAS.match(alias)):
        return False
    return all(
        _TAG_KEY.match(key) and ".." not in key and len(value) <= MAX_TAG_VALUE
        for key, value in (tags or {}).items()
    )


class UnknownSchema(Exception):
    """The embedded store's tables are not the ones these writes know (another MLflow
    version): the caller goes through the MLflow client instead. Nothing was written."""


# -- the embedded store ---------------------------------------------------------------------


def _connect(db: Path) -> sqlite3.Connection:
    if not db.is_file():
        raise NotFoundError(f"no model registry at {db}; run `petalops train` first")
    try:
        # isolation_level=None: transactions are opened by hand (BEGIN IMMEDIATE), so a
        # concurrent writer waits for the lock up front instead of failing at commit.
        return sqlite3.connect(db, timeout=30, isolation_level=None)
    except sqlite3.Error as exc:
        raise RegistryUnavailableError(f"cannot open the registry {db}: {exc}") from None


def _version_exists(con: sqlite3.Connection, name: str, version: int) -> bool:
    row = con.execute(
        "SELECT 1 FROM model_versions WHERE name=? AND version=? "
        "AND current_stage != 'Deleted_Internal'",
        (name, version),
    ).fetchone()
    return row is not None


def _model_exists(con: sqlite3.Connection, name: str) -> bool:
    return (
        con.execute("SELECT 1 FROM registered_models WHERE name=?", (name,)).fetchone() is not None
    )


def _in_transaction(db: Path, work: Callable[[sqlite3.Connection], None]) -> None:
    """Run ``work(con)`` in one write transaction; an unknown table or column rolls it back
    and raises UnknownSchema, a locked or broken database RegistryUnavailableError."""
    con = _connect(db)
    try:
        con.execute("BEGIN IMMEDIATE")
        try:
            work(con)
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
    except sqlite3.OperationalError as exc:
        if (
            "no such table" in str(exc)
            or "no such column" in str(exc)
            or "has no column" in str(exc)
        ):
            raise UnknownSchema(str(exc)) from None
        raise RegistryUnavailableError(f"cannot write the registry {db}: {exc}") from None
    except sqlite3.IntegrityError as exc:
        raise UnknownSchema(str(exc)) from None
    finally:
        con.close()


def _no_version(name: str, version: int) -> NotFoundError:
    return NotFoundError(f"model {name!r} has no version {version}; see `petalops registry list`")


def _no_model(name: str) -> NotFoundError:
    return NotFoundError(f"no registered model {name!r}; run `petalops train` first")


def _sqlite_set_alias(
    db: Path, name: str, alias: str, version: int, version_tags: Mapping[str, str]
) -> None:
    def work(con: sqlite3.Connection) -> None:
        if not _version_exists(con, name, version):
            raise _no_version(name, version)
        # The primary key is (workspace, name, alias) and workspace defaults to MLflow's
        # single-tenant "default": OR REPLACE is the ORM's merge of that row.
        con.execute(
            "INSERT OR REPLACE INTO registered_model_aliases (name, alias, version) VALUES (?,?,?)",
            (name, alias, version),
        )
        _put_version_tags(con, name, version, version_tags)

    _in_transaction(db, work)


def _put_version_tags(
    con: sqlite3.Connection, name: str, version: int, tags: Mapping[str, str]
) -> None:
    con.executemany(
        "INSERT OR REPLACE INTO model_version_tags (name, version, key, value) VALUES (?,?,?,?)",
        [(name, version, key, value) for key, value in tags.items()],
    )


def _sqlite_set_version_tags(db: Path, name: str, version: int, tags: Mapping[str, str]) -> None:
    def work(con: sqlite3.Connection) -> None:
        if not _version_exists(con, name, version):
            raise _no_version(name, version)
        _put_version_tags(con, name, version, tags)

    _in_transaction(db, work)


def _sqlite_set_model_tags(db: Path, name: str, tags: Mapping[str, str]) -> None:
    def work(con: sqlite3.Connection) -> None:
        if not _model_exists(con, name):
            raise _no_model(name)
        con.executemany(
            "INSERT OR REPLACE INTO registered_model_tags (name, key, value) VALUES (?,?,?)",
            [(name, key, value) for key, value in tags.items()],
        )

    _in_transaction(db, work)


def _sqlite_delete_alias(db: Path, name: str, alias: str) -> None:
    def work(con: sqlite3.Connection) -> None:
        found = con.execute(
            "DELETE FROM registered_model_aliases WHERE name=? AND alias=?", (name, alias)
        ).rowcount
        if not found:
            raise NotFoundError(
                f"model {name!r} has no alias {alias!r}; see `petalops registry list`"
            )

    _in_transaction(db, work)


# -- a tracking server ----------------------------------------------------------------------


def _rest_call(base: str, method: str, path: str, body: dict[str, Any], timeout: float) -> None:
    url = f"{base.rstrip('/')}/api/2.0/mlflow/{path}"
    request = _request(url)
    request.method = method
    request.add_header("Content-Type", "application/json")
    request.data = json.dumps(body).encode()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode("utf-8", "replace")
        if exc.code == 404 or "RESOURCE_DOES_NOT_EXIST" in detail:
            raise NotFoundError(f"not found in the registry at {base}: {path} {body}") from None
        raise RegistryUnavailableError(
            f"registry at {base} answered HTTP {exc.code} to {path}: {detail}"
        ) from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise RegistryUnavailableError(f"registry at {base} is unreachable: {exc}") from None


# -- the calls `petalops.registry.store` makes ----------------------------------------------


def set_alias(
    settings: Settings,
    name: str,
    alias: str,
    version: str,
    version_tags: Mapping[str, str],
    timeout: float = 10.0,
) -> None:
    """Point ``alias`` at ``version`` and set ``version_tags`` on it (one transaction in the
    embedded store; the alias first, then the tags, against a server)."""
    db = _sqlite_path(settings.tracking_uri)
    if db is not None:
        _sqlite_set_alias(db, name, alias, int(version), version_tags)
        return
    uri = settings.tracking_uri
    try:
        _rest_call(
            uri,
            "POST",
            "registered-models/alias",
            {"name": name, "alias": alias, "version": str(version)},
            timeout,
        )
    except NotFoundError:
        raise _no_version(name, int(version)) from None
    set_version_tags(settings, name, version, version_tags, timeout)


def set_version_tags(
    settings: Settings, name: str, version: str, tags: Mapping[str, str], timeout: float = 10.0
) -> None:
    db = _sqlite_path(settings.tracking_uri)
    if db is not None:
        _sqlite_set_version_tags(db, name, int(version), tags)
        return
    for key, value in tags.items():
        body = {"name": name, "version": str(version), "key": key, "value": value}
        try:
            _rest_call(settings.tracking_uri, "POST", "model-versions/set-tag", body, timeout)
        except NotFoundError:
            raise _no_version(name, int(version)) from None


def set_model_tags(
    settings: Settings, name: str, tags: Mapping[str, str], timeout: float = 10.0
) -> None:
    db = _sqlite_path(settings.tracking_uri)
    if db is not None:
        _sqlite_set_model_tags(db, name, tags)
        return
    for key, value in tags.items():
        body = {"name": name, "key": key, "value": value}
        try:
            _rest_call(settings.tracking_uri, "POST", "registered-models/set-tag", body, timeout)
        except NotFoundError:
            raise _no_model(name) from None


def delete_alias(settings: Settings, name: str, alias: str, timeout: float = 10.0) -> None:
    db = _sqlite_path(settings.tracking_uri)
    if db is not None:
        _sqlite_delete_alias(db, name, alias)
        return
    try:
        _rest_call(
            settings.tracking_uri,
            "DELETE",
            "registered-models/alias",
            {"name": name, "alias": alias},
            timeout,
        )
    except NotFoundError:
        raise NotFoundError(f"model {name!r} has no alias {alias!r}") from None
