"""Serving a model with categorical features and missing values through every protocol."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.utils.serving import BundleSource
from tests.utils.tabular import PENGUIN_FEATURES, penguins_csv, trained_bundle

from petalops.config import Settings
from petalops.data.load import feature_frame
from petalops.serving.app import create_app

ROW: dict[str, Any] = {
    "island": "Dream",
    "bill_length_mm": 46.5,
    "bill_depth_mm": 17.9,
    "flipper_length_mm": 192.0,
    "body_mass_g": None,
    "sex": "female",
}


@pytest.fixture(scope="module")
def penguins(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("penguins")
    path = penguins_csv(root)
    out: dict[str, Any] = {"path": path}
    for version, unknown in (("1", "ignore"), ("2", "error")):
        settings = _settings(root, path, unknown)
        out[version] = trained_bundle(root / f"v{version}", settings, path)
    return out


def _settings(home: Path, path: Path, unknown: str = "ignore") -> Settings:
    return Settings(  # type: ignore[call-arg]
        project="penguins",
        home=home / ".petalops",
        data={"source": str(path), "target": "species"},
        model={
            "class": "sklearn.ensemble.RandomForestClassifier",
            "params": {"n_estimators": 25},
            "preprocess": {"unknown": unknown},
        },
    )


@pytest.fixture(params=["1", "2"])
def client(
    request: pytest.FixtureRequest, penguins: dict[str, Any], tmp_path: Path
) -> Iterator[TestClient]:
    version = request.param
    directory, digest, _, _ = penguins[version]
    source = BundleSource(
        {version: (directory, digest)}, name="penguins", aliases={"champion": version}
    )
    fd = os.open(tmp_path / "log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    settings = _settings(tmp_path, penguins["path"])
    app = create_app(settings, source=source, log_fd=fd, open_sink=False)
    try:
        with TestClient(app, raise_server_exceptions=False) as test_client:
            test_client.version = version  # type: ignore[attr-defined]
            yield test_client
    finally:
        os.close(fd)


def _expected(penguins: dict[str, Any], version: str, row: dict[str, Any]) -> str:
    import numpy as np

    _, _, pipeline, dataset = penguins[version]
    values = np.asarray([[row[f] for f in PENGUIN_FEATURES]], dtype=object)
    index = int(pipeline.predict_proba(feature_frame(values, dataset.schema)).argmax())
    return str(dataset.classes[index])


def test_every_protocol_takes_strings_and_nulls(
    client: TestClient, penguins: dict[str, Any]
) -> None:
    expected = _expected(penguins, client.version, ROW)  # type: ignore[attr-defined]
    classes = penguins["1"][3].classes
    v1 = client.post("/v1/predict", json=ROW)
    assert v1.status_code == 200, v1.text
    assert v1.json()["class_name"] == expected
    columns = list(reversed(PENGUIN_FEATURES))
    split = client.post(
        "/invocations",
        json={"dataframe_split": {"columns": columns, "data": [[ROW[c] for c in columns]] * 2}},
    )
    assert split.status_code == 200, split.text
    assert [classes[i] for i in split.json()["predictions"]] == [expected, expected]
    records = client.post("/invocations", json={"dataframe_records": [ROW]})
    assert [classes[i] for i in records.json()["predictions"]] == [expected]
    tutorial = client.post("/predict", json={"features": [ROW[f] for f in PENGUIN_FEATURES]})
    assert tutorial.status_code == 200, tutorial.text
    assert tutorial.json()["flower_type"] == expected
    inputs = [
        {
            "name": f,
            "datatype": "BYTES" if f in ("island", "sex") else "FP64",
            "shape": [1, 1],
            "data": [ROW[f]],
        }
        for f in PENGUIN_FEATURES
    ]
    oip = client.post("/v2/models/penguins/infer", json={"inputs": inputs})
    assert oip.status_code == 200, oip.text
    names = {o["name"]: o["data"] for o in oip.json()["outputs"]}
    assert names["class_name"] == [expected]
    metadata = client.get("/v2/models/penguins").json()
    kinds = {i["name"]: i["datatype"] for i in metadata["inputs"]}
    assert kinds["island"] == "BYTES" and kinds["body_mass_g"] == "FP64"


@pytest.mark.parametrize(
    ("row", "says"),
    [
        (
            {**ROW, "bill_length_mm": "long"},
            "bill_length_mm must be a number, got the string 'long'; send null for a missing",
        ),
        ({**ROW, "island": [1]}, "island must be a category (a string)"),
    ],
)
def test_bad_mixed_input_is_a_json_400_naming_the_column(
    client: TestClient, row: dict[str, Any], says: str
) -> None:
    answer = client.post("/v1/predict", json=row)
    assert answer.status_code == 400
    assert says in answer.json()["error"]


def test_an_unseen_category_follows_the_policy_and_is_counted(client: TestClient) -> None:
    answer = client.post("/v1/predict", json={**ROW, "island": "Atlantis"})
    if client.version == "2":  # type: ignore[attr-defined]
        assert answer.status_code == 422
        message = answer.json()["error"]
        assert "feature 'island' has the category 'Atlantis', never seen in training" in message
    else:
        assert answer.status_code == 200
    # Counted under either policy, refused or not: the version's own series (the counter
    # is the process's, so another version's series says nothing about this one).
    metrics = client.get("/metrics").text
    series = (
        f'petalops_unseen_categories_total{{feature="island",model_version="{client.version}"}}'
    )
    assert series in metrics


def test_typed_rows_for_the_command_line(penguins: dict[str, Any]) -> None:
    from petalops.errors import InputError
    from petalops.runtime.model import open_bundle
    from petalops.serving.rows import typed_rows

    directory, digest, _, _ = penguins["1"]
    runtime = open_bundle(directory, "penguins", "1", digest)
    rows = typed_rows(["Dream", 46.5, 17.9, 192, None, "female"], runtime, "--input")
    assert rows == [["Dream", 46.5, 17.9, 192.0, rows[0][4], "female"]]
    assert rows[0][4] != rows[0][4]  # a missing number is NaN
    with pytest.raises(InputError, match=r"--input\[0\]\[1\] \(bill_length_mm\) must be a number"):
        typed_rows([["Dream", "x", 17.9, 192, None, "female"]], runtime, "--input")


PREDICTING = {"tutorial", "petalops", "mlflow", "kserve-v1", "oip-v2"}


def _schema_of(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        found: dict[str, Any] = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        return found
    return schema


def test_openapi_follows_the_model_schema(client: TestClient, penguins: dict[str, Any]) -> None:
    import jsonschema

    document = client.get("/openapi.json").json()
    schema = penguins[client.version][3].schema  # type: ignore[attr-defined]
    record = document["components"]["schemas"]["FeatureRecord"]["properties"]
    island = record["island"]["anyOf"]
    assert {"type": "null"} in island  # missing allowed (allow_missing defaults to true)
    enum = next(part["enum"] for part in island if "enum" in part)
    assert enum == list(schema.column("island").categories)
    assert sorted(enum) == ["Biscoe", "Dream", "Torgersen"]
    numbers = next(part for part in record["bill_length_mm"]["anyOf"] if part["type"] == "number")
    assert numbers["maximum"] == 1e12
    # /predict takes one row by position: each place its own feature's type
    predict = document["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    features = _schema_of(document, predict["schema"])["properties"]["features"]
    assert features["minItems"] == features["maxItems"] == len(PENGUIN_FEATURES)
    first, second = features["prefixItems"][:2]
    assert "enum" in first["anyOf"][0] and second["anyOf"][0]["type"] == "number"
    # OIP v2: one tensor per feature, BYTES for a categorical one
    infer = document["paths"]["/v2/models/{name}/infer"]["post"]["requestBody"]["content"]
    tensors = {t["name"]: t for t in infer["application/json"]["example"]["inputs"]}
    assert tensors["island"]["datatype"] == "BYTES"
    # every documented example fits its schema and is answered 200
    for path, methods in document["paths"].items():
        operation = methods.get("post")
        if operation is None or operation["tags"][0] not in PREDICTING or "feedback" in path:
            continue
        content = operation["requestBody"]["content"]["application/json"]
        root = {**content["schema"], "components": document["components"]}
        jsonschema.Draft202012Validator(root).validate(content["example"])
        version: str = client.version  # type: ignore[attr-defined]
        concrete = path.replace("{name}", "penguins").replace("{version}", version)
        answer = client.post(concrete, json=content["example"])
        assert answer.status_code == 200, (path, answer.text)
    # and a category the model never saw is outside the documented enum
    bad = {**record_example(document), "island": "Atlantis"}
    root = {"$ref": "#/components/schemas/FeatureRecord", "components": document["components"]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(root).validate(bad)


def record_example(document: dict[str, Any]) -> dict[str, Any]:
    v1 = document["paths"]["/v1/predict"]["post"]["requestBody"]["content"]["application/json"]
    example: dict[str, Any] = v1["example"]
    return example
