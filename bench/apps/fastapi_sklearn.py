"""The typical hand-written model server: FastAPI + a pydantic body + scikit-learn predict.

``PETALOPS_BENCH_MODEL`` (iris, forest, penguins; see `bench.apps.models`) picks the model;
rows arrive as ``{"features": [...]}`` in feature order and are predicted from a one-row
DataFrame, as such servers do for mixed-type Pipelines.
"""

from __future__ import annotations

import os

import pandas as pd
from bench.apps.models import features, sklearn_model
from fastapi import FastAPI
from pydantic import BaseModel

MODEL = os.environ.get("PETALOPS_BENCH_MODEL", "iris")
model = sklearn_model(MODEL)
columns = features(MODEL)
app = FastAPI()


class Features(BaseModel):
    features: list[float | str | None]


@app.post("/predict")
def predict(body: Features) -> dict[str, str]:
    frame = pd.DataFrame([body.features], columns=columns)
    return {"prediction": str(model.predict(frame)[0])}
