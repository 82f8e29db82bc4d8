"""OpenAPI for the hot routes, merged into the document FastAPI builds for the rest."""

from __future__ import annotations

import re
from typing import Any

from petalops.serving.server import RawRoute

_PARAM = re.compile(r"\{(\w+)\}")


def raw_paths(routes: list[RawRoute], model_name: str) -> dict[str, dict[str, Any]]:
    """The ``paths`` object of the hot routes."""
    param_schemas = {
        "name": {"type": "string", "enum": [model_name]},
        "version": {"type": "string", "pattern": "^[0-9]{1,9}$"},
    }
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        operation: dict[str, Any] = {
            "tags": [route.tag],
            "summary": route.summary,
            "description": route.description,
            "operationId": f"{route.method.lower()}_{_slug(route.path)}",
            "parameters": [
                {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "schema": param_schemas[name],
                }
                for name in _PARAM.findall(route.path)
            ],
            "responses": {},
        }
        if route.method == "POST" and route.request_schema is not None:
            content: dict[str, Any] = {
                "application/json": {
                    "schema": route.request_schema,
                    "example": route.request_example,
                }
            }
            if route.csv:
                content["text/csv"] = {
                    "schema": {"type": "string"},
                    "example": "sepal_length,sepal_width,petal_length,"
                    "petal_width\n5.1,3.5,1.4,0.2\n",
                }
            operation["requestBody"] = {"required": True, "content": content}
        if route.method == "POST" and "{version}" not in route.path:
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
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return paths


def _slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", path.lower()).strip("_") or "root"
