"""The models the benchmarks serve and score, built the same way for petalops and for the
hand-written baselines they are compared with.

* ``iris``      LogisticRegression on Iris (numeric; petalops's numpy fast path)
* ``forest``    a default RandomForestClassifier on Iris (a tree ensemble; ONNX Runtime)
* ``penguins``  the Palmer penguins with two categorical features and missing values:
                imputation + one-hot encoding + a default RandomForestClassifier
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

MODELS = ("iris", "forest", "penguins")
IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
PENGUIN_FEATURES = [
    "island",
    "bill_length_mm",
    "bill_depth_mm",
    "flipper_length_mm",
    "body_mass_g",
    "sex",
]
FOREST = "sklearn.ensemble.RandomForestClassifier"


def project(model: str) -> str:
    return "penguins" if model == "penguins" else "iris"


def features(model: str) -> list[str]:
    return PENGUIN_FEATURES if model == "penguins" else IRIS_FEATURES


def row(model: str) -> list[Any]:
    """One request row in feature order (a missing body mass for penguins)."""
    if model == "penguins":
        return ["Dream", 46.5, 17.9, 192.0, None, "female"]
    return [5.1, 3.5, 1.4, 0.2]


def penguins_frame() -> Any:
    from palmerpenguins import load_penguins

    return load_penguins()[[*PENGUIN_FEATURES, "species"]]


def prepare_project(model: str, directory: Path) -> list[str]:
    """Write what `petalops train` needs in ``directory``; return its ``--set`` overrides."""
    if model == "forest":
        return [f"model.class={FOREST}"]
    if model == "penguins":
        penguins_frame().to_csv(directory / "penguins.csv", index=False)
        (directory / "petalops.yaml").write_text(
            "project: penguins\n"
            "data: {source: penguins.csv, target: species}\n"
            f"model: {{class: {FOREST}}}\n",
            encoding="utf-8",
        )
    return []


def sklearn_model(model: str) -> Any:
    """The same model as a plain scikit-learn Pipeline (what a hand-written server loads)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    if model == "penguins":
        frame = penguins_frame()
        numeric = PENGUIN_FEATURES[1:5]
        prep = ColumnTransformer(
            [
                ("num", SimpleImputer(strategy="median"), numeric),
                (
                    "cat",
                    Pipeline(
                        [
                            ("impute", SimpleImputer(strategy="most_frequent")),
                            ("encode", OneHotEncoder(handle_unknown="ignore")),
                        ]
                    ),
                    ["island", "sex"],
                ),
            ]
        )
        pipeline = Pipeline([("prep", prep), ("clf", RandomForestClassifier(random_state=42))])
        return pipeline.fit(frame[PENGUIN_FEATURES], frame["species"])
    x, y = load_iris(return_X_y=True, as_frame=True)
    x.columns = IRIS_FEATURES
    clf = (
        RandomForestClassifier(random_state=42)
        if model == "forest"
        else LogisticRegression(max_iter=200)
    )
    return Pipeline([("clf", clf)]).fit(x, y)
