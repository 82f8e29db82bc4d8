"""MLflow's requirements check, as `log_sklearn_model` has it done: per pin, not by mapping
every installed distribution first."""

from __future__ import annotations

import logging

import mlflow
import mlflow.pyfunc
import pytest
from mlflow.utils import environment

from petalops.registry.store import _pins_checked_directly


def test_a_pin_this_environment_does_not_satisfy_is_warned_of(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="mlflow"), _pins_checked_directly():
        environment.warn_dependency_requirement_mismatches(
            [f"mlflow=={mlflow.__version__}", "scikit-learn==0.0.1", "no-such-package-xyz==1.0"]
        )
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 2
    assert "scikit-learn==0.0.1" in warned[0] and "uninstalled" in warned[1]


def test_mlflow_s_own_check_is_back_afterwards_even_after_an_error() -> None:
    own = (
        environment.warn_dependency_requirement_mismatches,
        mlflow.pyfunc.warn_dependency_requirement_mismatches,
    )
    inside = []

    def log_model_that_fails() -> None:
        with _pins_checked_directly():
            inside.append(environment.warn_dependency_requirement_mismatches)
            inside.append(mlflow.pyfunc.warn_dependency_requirement_mismatches)
            raise RuntimeError("log_model failed")

    with pytest.raises(RuntimeError):
        log_model_that_fails()
    assert inside[0] is not own[0] and inside[1] is not own[1]
    assert environment.warn_dependency_requirement_mismatches is own[0]
    assert mlflow.pyfunc.warn_dependency_requirement_mismatches is own[1]


def test_the_distribution_map_is_never_built_while_a_model_is_logged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mlflow.utils import requirements_utils

    def refuse() -> None:
        raise AssertionError("packages_distributions scanned")

    monkeypatch.setattr(requirements_utils, "_MODULES_TO_PACKAGES", None)
    monkeypatch.setattr(requirements_utils, "_init_modules_to_packages_map", refuse)
    with _pins_checked_directly():
        environment.warn_dependency_requirement_mismatches([f"mlflow=={mlflow.__version__}"])
        mlflow.pyfunc.warn_dependency_requirement_mismatches([f"mlflow=={mlflow.__version__}"])
