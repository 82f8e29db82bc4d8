"""`petalops runs compare`: the rows that differ between runs."""

from __future__ import annotations

from petalops.experiments.compare import Comparison


def test_comparison_marks_only_rows_that_differ() -> None:
    comparison = Comparison(
        labels=["v1", "v2"],
        run_ids=["a" * 32, "b" * 32],
        params={"seed": ["42", "42"], "model.params.C": [None, "0.3"]},
        metrics={"accuracy": [0.9, 0.9], "log_loss": [0.2, 0.25]},
    )
    assert comparison.different == ["model.params.C", "log_loss"]
    assert comparison.to_json()["runs"][1] == {"label": "v2", "run_id": "b" * 32}
