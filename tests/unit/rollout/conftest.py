"""Rollout fixtures: settings on a real registry (iris v1 @champion, v2 @challenger) with a
short lease and tick, a hand-moved clock, and a controller on both."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.utils.rollout import Clock

from petalops.config import Settings
from petalops.rollout.controller import Controller


@pytest.fixture
def settings(trained_settings: Settings) -> Settings:
    trained_settings.rollout.lease_seconds = 5.0
    trained_settings.rollout.tick_seconds = 0.05
    return trained_settings


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def controller(settings: Settings, clock: Clock) -> Iterator[Controller]:
    ctl = Controller(settings, clock=clock, holder="test-controller")
    yield ctl
    ctl.store.close()
