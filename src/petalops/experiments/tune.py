"""Hyperparameter search: grid or random over ``model.params``, scored by cross-validation on
the training split only (the held-out test split stays unseen, exactly as `train` makes it).

Each trial is a nested MLflow run under one parent "tune" run. The configured parameters are
always trial 0 (``config``), so the best trial is never worse than what you had. With
``register=True`` the best parameters go through the normal `train` → gate → registration.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from scipy import stats
from sklearn.model_selection import (
    ParameterGrid,
    ParameterSampler,
    StratifiedKFold,
    cross_val_score,
)
from threadpoolctl import threadpool_limits

from petalops.config import Settings
from petalops.data.load import load_dataset
from petalops.errors import ConfigError, InputError
from petalops.pipeline.build import build_pipeline, classifier
from petalops.pipeline.run import TrainResult, train
from petalops.pipeline.split import split_indices
from petalops.registry import store

METRICS = ("accuracy", "f1_macro", "neg_log_loss")
_DIST = re.compile(r"^\s*(loguniform|uniform|randint)\s*\(\s*([^,]+?)\s*,\s*([^)]+?)\s*\)\s*$")
TrialCallback = Callable[["Trial", int], None]


@dataclass
class Trial:
    number: int
    label: str  # "config" for the configured parameters, else "trial N"
    params: dict[str, Any]
    mean: float
    std: float
    scores: list[float]
    run_id: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "label": self.label,
            "params": self.params,
            "mean": self.mean,
            "std": self.std,
            "scores": self.scores,
            "run_id": self.run_id,
        }


@dataclass
class TuneResult:
    metric: str
    strategy: str
    cv: int
    trials: list[Trial]  # sorted best first
    parent_run_id: str
    baseline: Trial
    train: TrainResult | None = None  # when registered
    space: dict[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> Trial:
        return self.trials[0]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "metric": self.metric,
            "strategy": self.strategy,
            "cv": self.cv,
            "space": self.space,
            "parent_run_id": self.parent_run_id,
            "best": self.best.to_json(),
            "baseline": self.baseline.to_json(),
            "trials": [t.to_json() for t in self.trials],
        }
        if self.train is not None:
            out["registered"] = {
                "version": self.train.version,
                "alias": self.train.alias,
                "run_id": self.train.run_id,
                "metrics": self.train.metrics,
            }
        return out


def _scalar(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_param_specs(specs: list[str]) -> dict[str, list[Any] | str]:
    """``["C=0.01,0.1,1", "penalty=l2"]`` / ``["C=loguniform(1e-3,1e2)"]`` → a search space."""
    space: dict[str, list[Any] | str] = {}
    for spec in specs:
        key, sep, raw = spec.partition("=")
        key = key.strip().removeprefix("model.params.")
        if not sep or not key or not raw.replace(",", "").strip():
            raise InputError(
                f"--param {spec!r} is not NAME=V1,V2,…; example: --param C=0.01,0.1,1,10"
            )
        if _DIST.match(raw):
            space[key] = raw.strip()
        else:
            space[key] = [_scalar(v.strip()) for v in raw.split(",") if v.strip()]
    return space


def _distribution(key: str, text: str) -> Any:
    match = _DIST.match(text)
    if not match:
        raise ConfigError(
            f"tune.params.{key}={text!r} is neither a list nor a distribution; "
            "examples: [0.1, 1, 10], loguniform(0.001, 100)"
        )
    kind, low_text, high_text = match.groups()
    low, high = _scalar(low_text), _scalar(high_text)
    if not all(isinstance(v, int | float) for v in (low, high)) or not low < high:
        raise ConfigError(f"tune.params.{key}={text!r} needs two numbers low < high")
    if kind == "loguniform":
        if low <= 0:
            raise ConfigError(f"tune.params.{key}={text!r}: loguniform needs low > 0")
        return stats.loguniform(low, high)
    if kind == "uniform":
        return stats.uniform(low, high - low)
    return stats.randint(int(low), int(high) + 1)


def candidates(
    space: dict[str, list[Any] | str], strategy: str, trials: int, seed: int
) -> list[dict[str, Any]]:
    """The parameter sets to try, in a fixed order for a given seed."""
    if not space:
        raise InputError("nothing to tune: give --param NAME=V1,V2,… or set tune.params")
    for key, values in space.items():
        if isinstance(values, list) and not values:
            raise InputError(f"--param {key} has no values; example: --param {key}=0.1,1,10")
    if strategy == "grid":
        bad = [k for k, v in space.items() if isinstance(v, str)]
        if bad:
            raise InputError(
                f"grid search needs lists of values; {bad[0]}={space[bad[0]]} is a distribution "
                "(use --strategy random)"
            )
        return [dict(p) for p in ParameterGrid(space)]
    if strategy != "random":
        raise InputError(f"strategy {strategy!r} is not supported; use grid or random")
    dists = {k: (_distribution(k, v) if isinstance(v, str) else v) for k, v in space.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # fewer grid points than trials
        sampled = list(ParameterSampler(dists, n_iter=trials, random_state=seed))
    return [{k: _plain(v) for k, v in p.items()} for p in sampled]


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def training_split(settings: Settings, y: np.ndarray) -> np.ndarray:
    """Indices of the training rows: the split `petalops train` makes (its own function)."""
    train_idx, _ = split_indices(settings, y)
    return train_idx


def check_param_names(settings: Settings, names: list[str]) -> None:
    estimator = classifier(build_pipeline(settings.model, settings.seed))
    valid = sorted(estimator.get_params(deep=False))
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise InputError(
            f"{type(estimator).__name__} has no parameter {unknown[0]!r}; valid: {', '.join(valid)}"
        )


def cv_scores(
    settings: Settings,
    x: np.ndarray,
    y: np.ndarray,
    features: list[str],
    params: dict[str, Any],
    folds: int,
    metric: str,
) -> np.ndarray:
    """Per-fold scores of the configured model with ``params`` merged into model.params."""
    model = settings.model.model_copy(update={"params": {**settings.model.params, **params}})
    pipeline = build_pipeline(model, settings.seed)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=settings.seed)
    frame = pd.DataFrame(x, columns=features)
    try:
        # Folds are small: one BLAS thread is fastest (measured 10.7 s → 0.6 s for 12 fits on a
        # busy 2-core machine, where OpenBLAS threads spin against each other).
        with warnings.catch_warnings(), threadpool_limits(1):
            warnings.simplefilter("ignore", UserWarning)  # ConvergenceWarning on extreme values
            scores = cross_val_score(
                pipeline, frame, y, cv=splitter, scoring=metric, error_score="raise"
            )
    except (ValueError, TypeError) as exc:
        raise InputError(
            f"model.params {params} rejected by {settings.model.class_path}: "
            f"{str(exc).splitlines()[0]}"
        ) from None
    return np.asarray(scores, dtype=np.float64)


def tune(
    settings: Settings,
    data_path: str | Path | None = None,
    *,
    space: dict[str, list[Any] | str] | None = None,
    strategy: str | None = None,
    trials: int | None = None,
    cv: int | None = None,
    metric: str | None = None,
    register: bool = False,
    on_start: Callable[[int], None] | None = None,
    on_trial: TrialCallback | None = None,
) -> TuneResult:
    """Search model.params by cross-validation on the training split; optionally register."""
    search = space if space is not None else dict(settings.tune.params)
    how = strategy or settings.tune.strategy
    n_trials = trials if trials is not None else settings.tune.trials
    folds = cv if cv is not None else settings.tune.cv
    score_name = metric or settings.tune.metric
    if score_name not in METRICS:
        raise InputError(f"metric {score_name!r} is not supported; use one of {', '.join(METRICS)}")
    if folds < 2:
        raise InputError(f"--cv {folds} is too small; use at least 2 folds")
    if n_trials < 1:
        raise InputError(f"--trials {n_trials} must be at least 1")
    check_param_names(settings, list(search))
    sets = candidates(search, how, n_trials, settings.seed)

    dataset = load_dataset(settings.data, data_path)
    train_idx = training_split(settings, dataset.y)
    x, y = dataset.x[train_idx], dataset.y[train_idx]
    smallest = int(np.bincount(y).min())
    if smallest < folds:
        raise InputError(
            f"--cv {folds} needs at least {folds} training rows per class; the smallest class "
            f"has {smallest} (lower --cv)"
        )
    if on_start:
        on_start(len(sets) + 1)

    done: list[Trial] = []
    tags = {"petalops.data_sha256": dataset.fingerprint.sha256, "petalops.tune": "trial"}
    with store.tracked_run(settings, run_name=f"tune {how} {score_name}") as parent_id:
        for number, params in enumerate([{}, *sets]):
            label = "config" if number == 0 else f"trial {number}"
            scores = cv_scores(settings, x, y, dataset.features, params, folds, score_name)
            effective = {**settings.model.params, **params}
            with store.tracked_run(settings, run_name=label, nested=True) as run_id:
                # The same dataset input a train run carries, so MLflow's UI links each trial
                # to the data it was scored on.
                store.log_dataset(
                    dataset.frame,
                    dataset.source_path,
                    settings.project,
                    dataset.target,
                    dataset.fingerprint.sha256,
                )
                store.log_run_data(
                    {**{f"model.params.{k}": v for k, v in effective.items()}, "cv": folds},
                    {
                        f"cv_{score_name}": float(scores.mean()),
                        f"cv_{score_name}_std": float(scores.std()),
                    },
                    {**tags, "petalops.trial": label},
                )
            trial = Trial(
                number,
                label,
                params,
                float(scores.mean()),
                float(scores.std()),
                scores.tolist(),
                run_id,
            )
            done.append(trial)
            if on_trial:
                on_trial(trial, number + 1)
        # Best mean first; ties go to the earlier trial (the config first), never to chance.
        ranked = sorted(done, key=lambda t: (-t.mean, t.number))
        best = ranked[0]
        store.log_run_data(
            {
                "tune.strategy": how,
                "tune.cv": folds,
                "tune.metric": score_name,
                "tune.trials": len(sets),
                "tune.space": json.dumps(search, default=str),
            },
            {f"best_cv_{score_name}": best.mean, f"config_cv_{score_name}": done[0].mean},
            {
                "petalops.tune": "parent",
                "petalops.tune.best_params": json.dumps(best.params),
                "petalops.data_sha256": dataset.fingerprint.sha256,
            },
        )
    result = TuneResult(score_name, how, folds, ranked, parent_id, done[0], space=dict(search))
    if register:
        best_settings = settings.model_copy(deep=True)
        best_settings.model.params = {**settings.model.params, **best.params}
        result.train = train(
            best_settings, data_path, register=True, run_name=f"tune best (parent {parent_id[:8]})"
        )
    return result
