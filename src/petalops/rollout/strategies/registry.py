"""The registry of rollout strategies: every name `--strategy` and the settings accept.

Each module of this package registers its strategy with ``@register``; the package is
scanned once, on the first lookup (never at import), so adding a strategy is one new file
here. A strategy defined elsewhere (a test, a plugin) is plugged in by calling ``register``
itself, and taken out again with ``unregister``.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from typing import TYPE_CHECKING, TypeVar

from petalops.errors import ConfigError

if TYPE_CHECKING:
    # Only for the annotations: base imports the plan, which asks this registry for its
    # strategy, so a runtime import here would be a cycle.
    from petalops.rollout.plan import RolloutPlan
    from petalops.rollout.strategies.base import Strategy

S = TypeVar("S", bound="type[Strategy]")

_PACKAGE = __name__.rpartition(".")[0]
_known: dict[str, Strategy] = {}
_lock = threading.Lock()  # guards _known
# Held while the package is scanned, never together with _lock: a module being imported by
# another thread may be waiting in its @register for _lock.
_scan_lock = threading.Lock()
_scanned = False


def register(cls: S) -> S:
    """Add a strategy class (usable as a class decorator); its ``name`` must be new."""
    strategy = cls()
    if not strategy.name:
        raise ValueError(f'{cls.__qualname__} has no name; set `name = "..."` on the class')
    with _lock:
        taken = _known.get(strategy.name)
        if taken is not None and type(taken) is not cls:
            raise ValueError(
                f"rollout strategy {strategy.name!r} is already {type(taken).__qualname__}; "
                "pick another name"
            )
        _known[strategy.name] = strategy
    return cls


def unregister(name: str) -> None:
    """Remove a strategy added with ``register`` (a no-op for an unknown name)."""
    with _lock:
        _known.pop(name, None)


def _scan() -> None:
    global _scanned
    if _scanned:
        return
    with _scan_lock:
        if _scanned:
            return
        package = importlib.import_module(_PACKAGE)
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{_PACKAGE}.{module.name}")  # runs its @register
        _scanned = True


def strategies() -> list[Strategy]:
    """Every registered strategy, in the order of their ``rank`` (then of registration)."""
    _scan()
    with _lock:
        known = list(_known.values())
    return sorted(known, key=lambda s: s.rank)


def names() -> tuple[str, ...]:
    """The strategy names, in the order `--help` and the error messages list them."""
    return tuple(s.name for s in strategies())


def get(name: str) -> Strategy:
    """The strategy called ``name``; an unknown name is a ConfigError listing the valid ones."""
    for strategy in strategies():
        if strategy.name == name:
            return strategy
    raise ConfigError(
        f"strategy {name!r} is not one of {', '.join(names())}; example: --strategy canary"
    )


def of(plan: RolloutPlan) -> Strategy:
    """The strategy that carries out a stored plan (its ``strategy`` and ``then`` fields)."""
    known = strategies()
    for strategy in known:
        if (strategy.stored_as, strategy.then) == (plan.strategy, plan.then):
            return strategy
    for strategy in known:
        if (strategy.stored_as, strategy.then) == (plan.strategy, ""):
            return strategy
    raise ConfigError(
        f"rollout {plan.rollout_id} uses strategy {plan.strategy!r}, which this install does "
        f"not have (it has {', '.join(names())}); abort it with `petalops rollout abort`"
    )
