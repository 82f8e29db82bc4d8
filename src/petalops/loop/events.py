"""The kinds of ``loop_events`` rows: one row per step of a retraining cycle, so that
`petalops monitor status` can show why a version was trained and rolled out."""

from __future__ import annotations

TRIGGER = "trigger"
SKIPPED = "skipped"
DATA = "data"
TRAINED = "trained"
GATE_FAILED = "gate_failed"
REGISTERED = "registered"
ROLLOUT_STARTED = "rollout_started"
ROLLOUT_PENDING = "rollout_pending"
ROLLOUT_OUTCOME = "rollout_outcome"
FAILED = "failed"
