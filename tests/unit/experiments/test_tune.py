"""Search spaces (parsing --param, grid and random candidates, their errors) and the
training split the search runs on."""

from __future__ import annotations

import pytest

from petalops.config import DataSettings, Settings
from petalops.data.load import load_dataset
from petalops.errors import ConfigError, InputError
from petalops.experiments.tune import candidates, parse_param_specs, training_split
from petalops.pipeline.split import split


def test_param_specs_parse_values_as_yaml_scalars() -> None:
    space = parse_param_specs(["C=0.01,0.1,1,10", "model.params.penalty=l2", "fit_intercept=true"])
    assert space == {"C": [0.01, 0.1, 1, 10], "penalty": ["l2"], "fit_intercept": [True]}


def test_param_spec_keeps_a_distribution_as_text() -> None:
    assert parse_param_specs(["C=loguniform(1e-3, 100)"]) == {"C": "loguniform(1e-3, 100)"}


@pytest.mark.parametrize("spec", ["C", "=1,2", "C=", "C= , "])
def test_malformed_param_spec_is_an_input_error(spec: str) -> None:
    with pytest.raises(InputError, match=r"example: --param C=0\.01,0\.1,1,10"):
        parse_param_specs([spec])


def test_grid_is_the_full_product_in_a_stable_order() -> None:
    sets = candidates({"C": [0.1, 1], "tol": [1e-4, 1e-3]}, "grid", 99, seed=0)
    assert len(sets) == 4
    assert sets == candidates({"C": [0.1, 1], "tol": [1e-4, 1e-3]}, "grid", 99, seed=0)
    assert {(s["C"], s["tol"]) for s in sets} == {(0.1, 1e-4), (0.1, 1e-3), (1, 1e-4), (1, 1e-3)}


def test_random_search_samples_distributions_reproducibly() -> None:
    space: dict[str, list[object] | str] = {"C": "loguniform(0.001, 100)", "tol": [1e-4, 1e-3]}
    first = candidates(space, "random", 6, seed=1)
    assert len(first) == 6
    assert first == candidates(space, "random", 6, seed=1)
    assert first != candidates(space, "random", 6, seed=2)
    assert all(0.001 <= s["C"] <= 100 and isinstance(s["C"], float) for s in first)


def test_grid_refuses_a_distribution() -> None:
    with pytest.raises(InputError, match="use --strategy random"):
        candidates({"C": "loguniform(0.001, 100)"}, "grid", 5, seed=0)


@pytest.mark.parametrize(
    ("space", "strategy", "error", "needle"),
    [
        ({}, "grid", InputError, "nothing to tune"),
        ({"C": []}, "grid", InputError, "has no values"),
        ({"C": [1]}, "bayes", InputError, "use grid or random"),
        ({"C": "loguniform(0, 1)"}, "random", ConfigError, "low > 0"),
        ({"C": "loguniform(5, 1)"}, "random", ConfigError, "low < high"),
    ],
)
def test_bad_spaces_are_refused(
    space: dict[str, list[object] | str], strategy: str, error: type[Exception], needle: str
) -> None:
    with pytest.raises(error, match=needle):
        candidates(space, strategy, 3, seed=0)


def test_the_search_sees_exactly_the_training_rows_of_train() -> None:
    data = load_dataset(DataSettings())
    settings = Settings(seed=5)  # type: ignore[call-arg]
    rows = split(settings, data)
    picked = training_split(settings, data.y)
    assert (data.x[picked] == rows.x_train).all()
    assert len(set(picked.tolist())) == len(rows.y_train)
