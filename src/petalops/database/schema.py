"""Every table of the monitoring database, in one ``MetaData``.

The monitoring block (``petalops.monitoring.store``) and the rollout block
(``petalops.rollout.store``) both query these tables; neither defines one. A change to a
table here needs a step in :mod:`petalops.database.migrations` so that existing databases
follow.

* ``predictions``: the prediction log of docs/internals.md (feedback labels are its
  ``label``/``label_ts`` columns); ``features`` and ``probabilities`` are JSON text.
* ``loop_events``: every step of the closed loop.
* ``log_health``: each logger process's written/dropped counters, so `monitor watch` can
  alert on drops without Prometheus.
* ``spool_loads``: spool files loaded into ``predictions``; a file's name is inserted in
  the same transaction as its rows, so no file is ever loaded twice.
* ``rollout_events``: every rollout decision with its numbers (`petalops rollout history`).
* ``rollout_leases``: who may act on a rollout; taken with one atomic conditional UPDATE.
* ``rollout_commands``: promote/abort requests handed to a running controller.
* ``api_keys``: scoped API keys (`petalops keys`): a salted SHA-256 of each key, never the
  key itself, with its scope, rate limit, expiry and revocation time.
* ``audit_events``: every admin action (alias moves, rollout commands, key changes) with
  its time, who did it and the state before and after (`petalops audit`).
* ``served_versions``: each model version with logged live rows and the time of its newest
  one, kept by every insert into ``predictions`` and by retention, so that listing the
  versions is not a ``SELECT DISTINCT`` over the whole log.
* ``petalops_schema``: the migration steps applied to this database (named so that it
  cannot clash with a table of another application sharing a PostgreSQL database).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(128), nullable=False),
    sa.Column("row", sa.Integer, nullable=False, default=0),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("model_name", sa.String(200), nullable=False, default=""),
    sa.Column("model_version", sa.String(64), nullable=False, default=""),
    sa.Column("variant", sa.String(16), nullable=False, default="champion"),
    sa.Column("route", sa.String(128), nullable=False, default=""),
    sa.Column("status", sa.Integer, nullable=False, default=200),
    sa.Column("latency_ms", sa.Float, nullable=True),
    sa.Column("features", sa.Text, nullable=True),
    sa.Column("prediction", sa.Integer, nullable=True),
    sa.Column("class_name", sa.String(200), nullable=True),
    sa.Column("probabilities", sa.Text, nullable=True),
    sa.Column("reference_prediction", sa.Integer, nullable=True),
    sa.Column("label", sa.Integer, nullable=True),
    sa.Column("label_ts", sa.Float, nullable=True),
    sa.Index("ix_predictions_request", "request_id", "row"),
    sa.Index("ix_predictions_ts", "ts"),
)

loop_events = sa.Table(
    "loop_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("cycle", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("model_name", sa.String(200), nullable=False, default=""),
    sa.Column("model_version", sa.String(64), nullable=True),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("rollout_id", sa.String(64), nullable=True),
    sa.Column("message", sa.Text, nullable=False, default=""),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Index("ix_loop_events_ts", "ts"),
)

log_health = sa.Table(
    "log_health",
    metadata,
    sa.Column("writer", sa.String(200), primary_key=True),
    sa.Column("written", sa.BigInteger, nullable=False, default=0),
    sa.Column("dropped", sa.BigInteger, nullable=False, default=0),
    sa.Column("updated", sa.Float, nullable=False),
)

spool_loads = sa.Table(
    "spool_loads",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
)

rollout_events = sa.Table(
    "rollout_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("model_name", sa.String(200), nullable=False),
    sa.Column("rollout_id", sa.String(64), nullable=False),
    sa.Column("strategy", sa.String(16), nullable=False),
    sa.Column("phase", sa.String(32), nullable=False),
    sa.Column("step", sa.Integer, nullable=False, default=0),
    sa.Column("weight", sa.Float, nullable=False, default=0.0),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("verdict", sa.String(16), nullable=True),
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Column("champion_version", sa.String(64), nullable=True),
    sa.Column("challenger_version", sa.String(64), nullable=True),
    sa.Column("actor", sa.String(200), nullable=False, default=""),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Index("ix_rollout_events_model", "model_name", "id"),
)

rollout_leases = sa.Table(
    "rollout_leases",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("expires", sa.Float, nullable=False),
    sa.Column("acquired", sa.Float, nullable=False),
)

rollout_commands = sa.Table(
    "rollout_commands",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("model_name", sa.String(200), nullable=False),
    sa.Column("command", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Column("claimed_by", sa.String(200), nullable=True),
    sa.Column("done_ts", sa.Float, nullable=True),
    sa.Column("result", sa.Text, nullable=True),
)

# Labels sent for a request id whose prediction is not in ``predictions`` yet (still in a
# worker's spool): joined when its rows arrive, forgotten (and counted) after a while.
# ``row`` -1 means "the request's only row". Its own MetaData: migration step 2 creates it,
# and step 1 keeps creating exactly the tables it always did.
labels_metadata = sa.MetaData()

pending_labels = sa.Table(
    "pending_labels",
    labels_metadata,
    sa.Column("request_id", sa.String(128), primary_key=True),
    sa.Column("row", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("label", sa.Integer, nullable=False),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Index("ix_pending_labels_ts", "ts"),
)

# Security tables: their own MetaData, created by migration step 3.
security_metadata = sa.MetaData()

api_keys = sa.Table(
    "api_keys",
    security_metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("salt", sa.String(64), nullable=False),
    sa.Column("digest", sa.String(128), nullable=False),
    sa.Column("rate", sa.String(32), nullable=True),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("expires", sa.Float, nullable=True),
    sa.Column("revoked", sa.Float, nullable=True),
)

audit_events = sa.Table(
    "audit_events",
    security_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.String(200), nullable=False, default=""),
    sa.Column("before", sa.Text, nullable=True),
    sa.Column("after", sa.Text, nullable=True),
    sa.Column("detail", sa.Text, nullable=False, default=""),
    sa.Index("ix_audit_events_ts", "ts"),
)

# Versions with logged live rows (champion or challenger, a version chosen) and the ts of the
# newest such row: `monitor status` and the control room list versions from it instead of a
# SELECT DISTINCT over the whole prediction log, which grew with the log (429 ms after a long
# bench). An index on the version would answer it too, but was measured and rejected: +52 %
# on every insert. ``MonitorStore`` upserts it in the transaction of each insert and prunes it
# with retention; migration step 4 creates it and fills it from the log once.
served_metadata = sa.MetaData()

served_versions = sa.Table(
    "served_versions",
    served_metadata,
    sa.Column("model_name", sa.String(200), primary_key=True),
    sa.Column("model_version", sa.String(64), primary_key=True),
    sa.Column("last_ts", sa.Float, nullable=False),
)

# Kept apart from ``metadata``: the migrations create it before anything else and never
# touch it as a data table.
versions_metadata = sa.MetaData()

schema_versions = sa.Table(
    "petalops_schema",
    versions_metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("applied", sa.Float, nullable=False),
)
