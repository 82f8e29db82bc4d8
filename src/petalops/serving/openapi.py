"""OpenAPI for the hot routes: the building blocks codecs describe themselves with, and the
``paths`` of the document FastAPI serves beside its own routes.

Each codec documents its requests and answers next to the code that reads and writes them
(`petalops.serving.routes`); the row-level types here carry the bounds that
`petalops.serving.rows` enforces, so the documented schema and the check are one contract.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from petalops.serving.rows import MAX_ABS
from petalops.serving.shape import ApiShape

if TYPE_CHECKING:  # a Route is described here; codec.py imports this module
    from petalops.serving.codec import Route

REF = "#/components/schemas/{model}"
# status -> (description, schema or None)
Responses = dict[int, tuple[str, dict[str, Any] | None]]
_PARAM = re.compile(r"\{(\w+)\}")
_ERROR_TEXT = {
    400: "Invalid input: the body names the field and shows a valid example.",
    404: "Unknown model or version.",
    409: "The version exists but cannot be served (integrity check failed).",
    413: "Body larger than serve.max_body_bytes.",
    415: "Unsupported Content-Type.",
    422: "A label that is not one of the model's classes.",
    503: "No model loaded yet, or the registry is unreachable.",
}


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


class Predictions(BaseModel):
    """MLflow scoring and KServe v1 answers: one class index per row."""

    predictions: list[int]


class Docs:
    """Schemas for one server's OpenAPI document, built for its features and batch limit.

    ``ref`` hoists a pydantic model (and its definitions) into ``components``; the
    attributes ``number``, ``row``, ``batch``, ``record`` and ``records`` are the types a
    request's rows take, with the limits `petalops.serving.rows` checks.
    """

    def __init__(self, shape: ApiShape, max_batch: int) -> None:
        self.shape = shape
        self.max_batch = max_batch
        self.components: dict[str, Any] = {}
        n = len(shape.features)
        number: Any = Annotated[float, Field(allow_inf_nan=False, ge=-MAX_ABS, le=MAX_ABS)]
        row: Any = Annotated[list[number], Field(min_length=n, max_length=n)]
        fields: dict[str, Any] = dict.fromkeys(shape.features, (number, ...))
        record: Any = create_model("FeatureRecord", __config__=ConfigDict(extra="forbid"), **fields)
        self.number = number
        self.row = row
        self.batch: Any = Annotated[list[row], Field(min_length=1, max_length=max_batch)]
        self.record = record
        self.records: Any = Annotated[list[record], Field(min_length=1, max_length=max_batch)]
        self.error = self.ref(ErrorBody)

    def ref(self, model: type[BaseModel]) -> dict[str, Any]:
        """A ``$ref`` to the model's schema, its definitions hoisted into ``components``."""
        schema = model.model_json_schema(ref_template=REF)
        self.components.update(schema.pop("$defs", {}))
        self.components[model.__name__] = schema
        return {"$ref": REF.format(model=model.__name__)}

    def one_of(self, *models: type[BaseModel]) -> dict[str, Any]:
        """A schema any one of the models satisfies."""
        return {"oneOf": [self.ref(model) for model in models]}

    def errors(self, *codes: int) -> Responses:
        """The error answers a route can give, each an `ErrorBody`."""
        return {code: (_ERROR_TEXT[code], self.error) for code in codes}


def paths(routes: Sequence[Route], model_name: str) -> dict[str, dict[str, Any]]:
    """The ``paths`` object of the hot routes."""
    param_schemas = {
        "name": {"type": "string", "enum": [model_name]},
        "version": {"type": "string", "pattern": "^[0-9]{1,9}$"},
    }
    document: dict[str, dict[str, Any]] = {}
    for route in routes:
        operation: dict[str, Any] = {
            "tags": [route.tag],
            "summary": route.summary,
            "description": route.description,
            "operationId": f"{route.method.lower()}_{_slug(route.path)}",
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": param_schemas[name]}
                for name in _PARAM.findall(route.path)
            ],
            "responses": {},
        }
        if route.method == "POST" and route.request_schema is not None:
            content: dict[str, Any] = {
                "application/json": {
                    "schema": route.request_schema,
                    "example": route.request_example,
                },
                **route.request_content,
            }
            operation["requestBody"] = {"required": True, "content": content}
        if route.method == "POST" and not route.versioned:
            operation["parameters"].append(
                {
                    "name": "X-Model-Version",
                    "in": "header",
                    "required": False,
                    "description": "Answer with this registered version instead of the champion.",
                    "schema": {"type": "string", "pattern": "^[0-9]{1,9}$"},
                }
            )
        for status, (text, schema) in sorted(route.responses.items()):
            response: dict[str, Any] = {"description": text}
            if route.text_response and status == 200:
                response["content"] = {"text/plain": {"schema": {"type": "string"}}}
            elif schema is not None:
                response["content"] = {"application/json": {"schema": schema}}
            operation["responses"][str(status)] = response
        if route.method == "POST":
            operation["responses"].setdefault("405", {"description": "Method not allowed."})
        document.setdefault(route.path, {})[route.method.lower()] = operation
    return document


def _slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", path.lower()).strip("_") or "root"
