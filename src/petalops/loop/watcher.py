"""`petalops monitor watch`: evaluate the alert conditions, and with ``--retrain`` close the loop.

Each check: evaluate the alerts → log / webhook when one starts or resolves → record the
outcome of rollouts this loop started → on a trigger in ``RETRAIN_TRIGGERS``, run a
retraining cycle (`petalops.loop.cycle`), every step of it a row of ``loop_events``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from petalops.config import Settings
from petalops.errors import NotFoundError, PetalopsError
from petalops.health import beat
from petalops.loop.cycle import Cycle, CycleResult, Trainer, default_trainer, run_cycle
from petalops.loop.rollouts import RolloutStarter, default_rollout_starter, track_rollouts
from petalops.monitoring.alerts import RETRAIN_TRIGGERS, Alert, Evaluation, evaluate, post_webhook
from petalops.monitoring.firstwindow import drift_reference
from petalops.monitoring.store import MonitorStore
from petalops.registry import load_profile, resolve

log = logging.getLogger(__name__)

REPEAT_SECONDS = 3600.0


@dataclass
class TickResult:
    """One check: the evaluation, the cycle it ran (if any) and whether the webhook took it."""

    evaluation: Evaluation
    cycle: CycleResult | None = None
    webhook: bool | None = None
    events: list[str] = field(default_factory=list)


class Watcher:
    """One `monitor watch` process: evaluate → log / webhook → maybe retrain → record."""

    def __init__(
        self,
        settings: Settings,
        store: MonitorStore,
        *,
        retrain: bool | None = None,
        server_url: str | None = None,
        webhook_url: str | None = None,
        trainer: Trainer = default_trainer,
        rollout_starter: RolloutStarter = default_rollout_starter,
        clock: Callable[[], float] = time.time,
        on_alert: Callable[[Alert], None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.retrain = settings.monitor.retrain if retrain is None else retrain
        self.server_url = server_url
        self.webhook_url = webhook_url if webhook_url is not None else settings.monitor.webhook_url
        self.trainer = trainer
        self.rollout_starter = rollout_starter
        self.clock = clock
        self.on_alert = on_alert
        self._dropped_seen: dict[str, int] = {}
        self._notified: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

    @property
    def name(self) -> str:
        return str(self.settings.project)

    def _profile(self) -> tuple[dict[str, Any] | None, str]:
        """The champion's drift reference (monitor.drift_reference) and its name."""
        try:
            info = resolve(self.settings, f"{self.name}@champion")
            training = load_profile(self.settings, f"{self.name}/{info.version}")
        except NotFoundError:
            return None, ""
        chosen = drift_reference(self.settings, self.store, info.version, training)
        return chosen.profile, chosen.label

    def tick(self) -> TickResult:
        """One check; a retraining cycle when ``retrain`` is on and a trigger fires."""
        now = self.clock()
        profile, reference = self._profile()
        evaluation = evaluate(
            self.settings,
            self.store,
            profile,
            reference=reference,
            now=now,
            server_url=self.server_url,
            dropped_before=self._dropped_seen,
        )
        result = TickResult(evaluation)
        # Like Alertmanager: notify when an alert starts firing (again every REPEAT_SECONDS
        # while it lasts) and when it resolves, not on every check.
        current = {alert.key: alert for alert in evaluation.alerts}
        fresh = [
            alert
            for key, alert in current.items()
            if now - self._notified.get(key, -REPEAT_SECONDS) >= REPEAT_SECONDS
        ]
        resolved = [key for key in self._notified if key not in current]
        for alert in fresh:
            self._notified[alert.key] = now
            log.warning("ALERT %s: %s", alert.name, alert.message)
            if self.on_alert is not None:
                self.on_alert(alert)
        for key in resolved:
            del self._notified[key]
            log.info("RESOLVED %s", key[0])
        if (fresh or resolved) and self.webhook_url:
            result.webhook = post_webhook(
                self.webhook_url, fresh, resolved=[key[0] for key in resolved]
            )
        track_rollouts(self.settings, self.store)
        triggers = [a for a in evaluation.alerts if a.name in RETRAIN_TRIGGERS]
        if self.retrain and triggers:
            result.cycle = self.run_cycle(triggers, evaluation, now)
        return result

    def run_cycle(self, triggers: list[Alert], evaluation: Evaluation, now: float) -> CycleResult:
        """One retraining cycle, every step recorded in ``loop_events``."""
        return run_cycle(
            Cycle(
                settings=self.settings,
                store=self.store,
                triggers=triggers,
                evaluation=evaluation,
                now=now,
                trainer=self.trainer,
                rollout_starter=self.rollout_starter,
            )
        )

    def run(
        self,
        *,
        interval: float | None = None,
        iterations: int | None = None,
        on_tick: Callable[[TickResult], None] | None = None,
    ) -> None:
        """Tick every ``interval`` seconds (``monitor.watch_seconds``) until interrupted."""
        pause = interval if interval is not None else self.settings.monitor.watch_seconds
        done = 0
        while iterations is None or done < iterations:
            started = time.monotonic()
            try:
                result = self.tick()
            except PetalopsError as exc:
                log.error("watch: %s", exc.message)
            except Exception:  # a transient store or registry failure must not end the watch
                log.exception("watch: check failed; retrying in %.0f s", pause)
            else:
                if on_tick is not None:
                    on_tick(result)
            beat(self.settings.home_dir, "monitor")  # the liveness probe's heartbeat
            done += 1
            if iterations is not None and done >= iterations:
                break
            time.sleep(max(pause - (time.monotonic() - started), 0.0))
