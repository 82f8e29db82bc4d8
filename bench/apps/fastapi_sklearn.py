"""The typical hand-written model server: FastAPI + a pydantic body + scikit-learn predict."""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

_iris = load_iris()
model = LogisticRegression(max_iter=200).fit(_iris.data, _iris.target)
app = FastAPI()


class Features(BaseModel):
    features: list[float]


@app.post("/predict")
def predict(body: Features) -> dict[str, int]:
    return {"prediction": int(model.predict([body.features])[0])}
