"""The strategy registry: what it finds, how it resolves a stored plan, what it refuses."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path
from typing import ClassVar

import pytest

from petalops.config import MonitorSettings, RolloutSettings
from petalops.errors import ConfigError
from petalops.rollout import strategies as package
from petalops.rollout.plan import RolloutPlan
from petalops.rollout.strategies import registry
from petalops.rollout.strategies.base import Strategy
from petalops.rollout.strategies.bluegreen import BlueGreen
from petalops.rollout.strategies.canary import Canary
from petalops.rollout.strategies.shadow import Shadow
from petalops.rollout.strategies.shadow_canary import ShadowCanary

DOCS = Path(__file__).parents[4] / "docs" / "rollouts.md"


def stored(strategy: str, then: str = "") -> RolloutPlan:
    return RolloutPlan("r-1", strategy, "2", "1", then=then)


def test_the_built_in_strategies_in_the_order_people_see_them() -> None:
    assert registry.names()[:4] == ("canary", "bluegreen", "shadow", "shadow-canary")


def test_every_module_of_the_package_that_defines_a_strategy_is_found() -> None:
    """A new file is all it takes: nothing else lists the strategies."""
    defined = set()
    for module in pkgutil.iter_modules(package.__path__):
        loaded = importlib.import_module(f"{package.__name__}.{module.name}")
        defined |= {
            obj.name
            for obj in vars(loaded).values()
            if isinstance(obj, type)
            and issubclass(obj, Strategy)
            and obj.__module__ == loaded.__name__
            and obj.name
        }
    assert defined == {"canary", "bluegreen", "shadow", "shadow-canary"}
    assert defined <= set(registry.names())


def test_get_names_the_valid_strategies_when_it_refuses() -> None:
    assert isinstance(registry.get("bluegreen"), BlueGreen)
    with pytest.raises(ConfigError) as refused:
        registry.get("linear")
    assert refused.value.message == (
        "strategy 'linear' is not one of canary, bluegreen, shadow, shadow-canary; "
        "example: --strategy canary"
    )


@pytest.mark.parametrize(
    ("strategy", "then", "expected"),
    [
        ("canary", "", Canary),
        ("bluegreen", "", BlueGreen),
        ("shadow", "", Shadow),
        ("shadow", "canary", ShadowCanary),
        ("canary", "something-else", Canary),  # an unknown continuation: the plan's strategy
    ],
)
def test_a_stored_plan_is_carried_out_by_its_strategy(
    strategy: str, then: str, expected: type[Strategy]
) -> None:
    assert type(registry.of(stored(strategy, then))) is expected


def test_a_plan_of_an_unknown_strategy_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"rollout r-1 uses strategy 'ramp'.*rollout abort"):
        registry.of(stored("ramp"))


class Linear(Strategy):
    name: ClassVar[str] = "linear"


class OtherCanary(Strategy):
    name: ClassVar[str] = "canary"


class Nameless(Strategy):
    pass


def test_register_adds_and_unregister_removes() -> None:
    assert registry.register(Linear) is Linear
    try:
        assert registry.names()[-1] == "linear"  # the default rank comes after the built-ins
        assert isinstance(registry.get("linear"), Linear)
        registry.register(Linear)  # the same class again: a no-op
        assert registry.names().count("linear") == 1
    finally:
        registry.unregister("linear")
    assert "linear" not in registry.names()


def test_register_refuses_a_taken_name_and_no_name() -> None:
    with pytest.raises(ValueError, match="'canary' is already Canary"):
        registry.register(OtherCanary)
    assert isinstance(registry.get("canary"), Canary)
    with pytest.raises(ValueError, match="Nameless has no name"):
        registry.register(Nameless)


def test_the_settings_accept_exactly_the_registered_names() -> None:
    for name in registry.names():
        assert RolloutSettings(strategy=name).strategy == name
        assert MonitorSettings(rollout_strategy=name).rollout_strategy == name
    assert MonitorSettings(rollout_strategy="none").rollout_strategy == "none"
    with pytest.raises(ValueError, match="a rollout strategy: canary, bluegreen, shadow"):
        RolloutSettings(strategy="none")
    with pytest.raises(ValueError, match="shadow-canary or none"):
        MonitorSettings(rollout_strategy="linear")
    registry.register(Linear)
    try:
        assert RolloutSettings(strategy="linear").strategy == "linear"
    finally:
        registry.unregister("linear")


def test_the_docs_table_has_one_row_per_strategy() -> None:
    table = DOCS.read_text(encoding="utf-8").split("## Strategies", 1)[1].split("\n\n", 2)[1]
    documented = re.findall(r"^\| `([a-z-]+)` \|", table, re.M)
    assert tuple(documented) == registry.names()
