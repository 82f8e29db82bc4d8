"""/openapi.json of a real server follows the data schema of the model it serves: a
mixed-type penguins model (two categorical features, missing values) is documented as it
really is, and every documented example is answered."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from tests.utils.server_process import ServerProcess
from tests.utils.tabular import PENGUIN_FEATURES, penguins_csv

from petalops.config import Settings

PREDICTING = {"tutorial", "petalops", "mlflow", "kserve-v1", "oip-v2"}


@pytest.fixture(scope="module")
def penguin_server(
    tmp_path_factory: pytest.TempPathFactory, _session_stores: dict[str, Path]
) -> Iterator[ServerProcess]:
    from petalops.pipeline.run import train

    root = tmp_path_factory.mktemp("penguins-openapi")
    home = root / ".petalops"
    shutil.copytree(_session_stores["empty"], home)
    path = penguins_csv(root)
    # The project's config, as the server finds it in its working directory.
    (root / "petalops.yaml").write_text(
        f"project: penguins\ndata:\n  source: {path}\n  target: species\n"
        "  columns:\n    island: {allow_missing: false}\n"
        "model:\n  scale: true\n  params: {max_iter: 1000}\n",
        encoding="utf-8",
    )
    settings = Settings(  # type: ignore[call-arg]
        project="penguins",
        home=home,
        data={
            "source": str(path),
            "target": "species",
            "columns": {"island": {"allow_missing": False}},
        },
        model={"scale": True, "params": {"max_iter": 1000}},
    )
    train(settings)
    server = ServerProcess(home)
    try:
        server.wait_until("/readyz")
        yield server
    finally:
        server.stop()


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" not in schema:
        return schema
    found: dict[str, Any] = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return found


def test_openapi_documents_the_served_penguins_model(penguin_server: ServerProcess) -> None:
    url = penguin_server.url
    document = httpx.get(f"{url}/openapi.json", timeout=30).json()
    record = document["components"]["schemas"]["FeatureRecord"]
    assert list(record["properties"]) == PENGUIN_FEATURES
    island = record["properties"]["island"]
    # never missing (data.columns.island.allow_missing=false): no null, the categories as enum
    assert sorted(island["enum"]) == ["Biscoe", "Dream", "Torgersen"]
    sex = record["properties"]["sex"]["anyOf"]
    assert {"type": "null"} in sex
    assert sorted(next(p["enum"] for p in sex if "enum" in p)) == ["female", "male"]
    mass = record["properties"]["body_mass_g"]
    assert {p["type"] for p in mass["anyOf"]} == {"number", "null"}
    assert "2700 .. 6300" in mass["description"]
    infer = document["paths"]["/v2/models/{name}/infer"]["post"]["requestBody"]["content"]
    inputs = _resolve(document, infer["application/json"]["schema"])["properties"]["inputs"]
    assert inputs["minItems"] == inputs["maxItems"] == len(PENGUIN_FEATURES)
    island_tensor = document["components"]["schemas"]["InferInput_island"]["properties"]
    assert island_tensor["datatype"]["const"] == "BYTES"

    answered = 0
    for path, methods in document["paths"].items():
        operation = methods.get("post", {})
        if operation.get("tags", [""])[0] not in PREDICTING or "feedback" in path:
            continue
        content = operation["requestBody"]["content"]["application/json"]
        validator = jsonschema.Draft202012Validator(
            {**content["schema"], "components": document["components"]}
        )
        validator.validate(content["example"])
        concrete = path.replace("{name}", "penguins").replace("{version}", "1")
        answer = httpx.post(url + concrete, json=content["example"], timeout=30)
        assert answer.status_code == 200, (path, answer.text)
        answered += 1
        # what the document refuses, the server refuses too
        if path == "/v1/predict":
            bad = {**content["example"], "island": None}
            assert not validator.is_valid(bad)
            refused = httpx.post(url + path, json=bad, timeout=30)
            assert refused.status_code == 400
            assert "island may not be null" in refused.json()["error"]
    assert answered >= 6  # /predict, /v1/predict, /invocations, KServe v1, OIP v2 (x2)
