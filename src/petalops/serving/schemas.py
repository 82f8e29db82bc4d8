"""Pydantic models of every hot route's request and response, for OpenAPI only.

The hot routes validate with `petalops.serving.rows` (plain Python, ~1 µs); these models
describe the same contract for `/docs`, `/openapi.json` and clients' code generators. The
feature names come from the settings, so the documented schema is the model's.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from petalops.serving.server import ApiShape

REF = "#/components/schemas/{model}"
FP_TYPES: Any = Literal["FP32", "FP64"]


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer: what was wrong, which field, and a valid example."""

    error: str = Field(examples=["features must have 4 numbers, got 3"])
    field: str | None = Field(None, examples=["features"])
    example: Any = Field(None, examples=[{"features": [5.1, 3.5, 1.4, 0.2]}])
    request_id: str | None = None


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class Ready(BaseModel):
    ready: bool
    model_version: str | None = None
    error: str | None = None


class Live(BaseModel):
    live: bool


class ModelReady(BaseModel):
    name: str
    ready: bool


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class KServeModel(BaseModel):
    name: str
    ready: bool


class KServeModels(BaseModel):
    models: list[str]


class Predictions(BaseModel):
    """MLflow scoring and KServe v1 answers: one class index per row."""

    predictions: list[int]


class Version(BaseModel):
    version: str
    model: str
    model_version: str | None


class InferOutputRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: Literal["label", "probabilities", "class_name"]
    parameters: dict[str, Any] | None = None


class InferResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: Literal["INT64", "FP32", "FP64", "BYTES"]
    parameters: dict[str, Any] | None = None
    data: list[Any]


class InferResponse(BaseModel):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[InferResponseOutput]


def build(shape: ApiShape, max_batch: int) -> dict[str, type[BaseModel]]:
    """The models whose fields depend on the project's features."""
    n = len(shape.features)
    number: Any = Annotated[float, Field(allow_inf_nan=False, ge=-1e12, le=1e12)]
    row_list: Any = Annotated[list[number], Field(min_length=n, max_length=n)]
    batch: Any = Annotated[list[row_list], Field(min_length=1, max_length=max_batch)]
    record_fields: dict[str, Any] = dict.fromkeys(shape.features, (number, ...))
    record: Any = create_model(
        "FeatureRecord", __config__=ConfigDict(extra="forbid"), **record_fields
    )
    records: Any = Annotated[list[record], Field(min_length=1, max_length=max_batch)]
    classes = shape.classes

    predict_request = create_model(
        "PredictRequest",
        features=(
            row_list,
            Field(description=f"the {n} features in order: {', '.join(shape.features)}"),
        ),
    )
    predict_response = create_model(
        "PredictResponse",
        prediction=(int, Field(description="class index", examples=[0])),
        flower_type=(str, Field(description="class name", examples=classes[:1] or ["setosa"])),
        probabilities=(list[float], Field(description=f"one per class: {', '.join(classes)}")),
        model_version=(str, ...),
        variant=(str, ...),
    )
    v1_batch = create_model(
        "V1BatchRequest", __config__=ConfigDict(extra="forbid"), instances=(records, ...)
    )
    v1_row_answer: Any = create_model(
        "V1Prediction",
        prediction=(int, ...),
        class_name=(str, ...),
        probabilities=(dict[str, float], ...),
    )
    v1_single = create_model(
        "V1SingleResponse",
        prediction=(int, ...),
        class_name=(str, ...),
        probabilities=(dict[str, float], ...),
        model_version=(str, ...),
        variant=(str, ...),
        request_id=(str, ...),
    )
    v1_batch_answer = create_model(
        "V1BatchResponse",
        predictions=(list[v1_row_answer], ...),
        model_version=(str, ...),
        variant=(str, ...),
        request_id=(str, ...),
    )
    split: Any = create_model(
        "DataframeSplit",
        columns=(list[str] | None, Field(None, description="feature names of the columns")),
        index=(list[Any] | None, None),
        data=(batch, ...),
    )
    invocations = [
        create_model("DataframeSplitRequest", dataframe_split=(split, ...)),
        create_model("DataframeRecordsRequest", dataframe_records=(records, ...)),
        create_model("InstancesRequest", instances=(batch | records, ...)),
        create_model("InputsRequest", inputs=(batch | records, ...)),
    ]
    kserve = create_model("KServeV1Request", instances=(batch | records, ...))
    infer_input: Any = create_model(
        "InferInput",
        __config__=ConfigDict(extra="allow"),
        name=(str, Field(examples=["input-0"])),
        shape=(Annotated[list[int], Field(min_length=1, max_length=2)], Field(examples=[[1, n]])),
        datatype=(FP_TYPES, ...),
        parameters=(dict[str, Any] | None, None),
        data=(list[number] | list[row_list], ...),
    )
    infer_request = create_model(
        "InferRequest",
        id=(str | None, None),
        parameters=(dict[str, Any] | None, None),
        inputs=(Annotated[list[infer_input], Field(min_length=1, max_length=1)], ...),
        outputs=(list[InferOutputRequest] | None, None),
    )
    return {
        "PredictRequest": predict_request,
        "PredictResponse": predict_response,
        "FeatureRecord": record,
        "V1BatchRequest": v1_batch,
        "V1SingleResponse": v1_single,
        "V1BatchResponse": v1_batch_answer,
        **{model.__name__: model for model in invocations},
        "KServeV1Request": kserve,
        "InferRequest": infer_request,
    }


def schema_of(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    """The model's JSON schema with its definitions hoisted into ``components``."""
    schema = model.model_json_schema(ref_template=REF)
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return {"$ref": REF.format(model=model.__name__)}


def union_of(models: list[type[BaseModel]], components: dict[str, Any]) -> dict[str, Any]:
    return {"oneOf": [schema_of(m, components) for m in models]}
