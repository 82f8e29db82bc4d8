"""The route table: every hot route, one module per protocol, with its OpenAPI description."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from petalops.serving import schemas as s
from petalops.serving.routes import feedback, kserve, mlflow, oip, ops, tutorial, v1
from petalops.serving.server import ApiShape, RawRoute


def all_routes(shape: ApiShape, max_batch: int, components: dict[str, Any]) -> list[RawRoute]:
    """The hot routes of this server, with schemas built for the project's features."""
    m = s.build(shape, max_batch)

    def ref(model: type[BaseModel]) -> dict[str, Any]:
        return s.schema_of(model, components)

    error = ref(s.ErrorBody)

    def errors(*codes: int) -> dict[int, tuple[str, dict[str, Any] | None]]:
        text = {
            400: "Invalid input: the body names the field and shows a valid example.",
            404: "Unknown model or version.",
            409: "The version exists but cannot be served (integrity check failed).",
            413: "Body larger than serve.max_body_bytes.",
            415: "Unsupported Content-Type.",
            422: "A label that is not one of the model's classes.",
            503: "No model loaded yet, or the registry is unreachable.",
        }
        return {code: (text[code], error) for code in codes}

    body_errors = errors(400, 404, 409, 413, 415, 503)
    row = shape.example_row
    record = shape.example_record
    n = len(shape.features)
    return [
        RawRoute(
            "POST",
            "/predict",
            tutorial.predict,
            "Predict one row (tutorial API)",
            "tutorial",
            ref(m["PredictRequest"]),
            {"features": row},
            responses={200: ("Prediction", ref(m["PredictResponse"])), **body_errors},
        ),
        RawRoute(
            "GET",
            "/health",
            tutorial.health,
            "Health (tutorial API)",
            "tutorial",
            responses={200: ("Up", ref(s.Health))},
        ),
        RawRoute(
            "GET",
            "/healthz",
            ops.healthz,
            "Liveness",
            "operations",
            responses={200: ("Up", ref(s.Health))},
        ),
        RawRoute(
            "GET",
            "/readyz",
            ops.readyz,
            "Readiness",
            "operations",
            responses={200: ("Ready", ref(s.Ready)), 503: ("Not ready", ref(s.Ready))},
        ),
        RawRoute(
            "GET",
            "/metrics",
            ops.scrape,
            "Prometheus metrics",
            "operations",
            responses={200: ("Text exposition format", None)},
            text_response=True,
        ),
        RawRoute(
            "POST",
            "/v1/predict",
            v1.predict,
            "Predict named-feature rows",
            "petalops",
            {"oneOf": [ref(m["FeatureRecord"]), ref(m["V1BatchRequest"])]},
            record,
            responses={
                200: (
                    "Prediction(s)",
                    {"oneOf": [ref(m["V1SingleResponse"]), ref(m["V1BatchResponse"])]},
                ),
                **body_errors,
            },
        ),
        RawRoute(
            "POST",
            "/v1/feedback",
            feedback.feedback,
            "Record true labels for earlier predictions",
            "petalops",
            {
                "oneOf": [
                    ref(feedback.FeedbackItem),
                    ref(feedback.FeedbackBatch),
                    {"type": "array", "items": ref(feedback.FeedbackItem)},
                ]
            },
            feedback.EXAMPLE,
            responses={
                200: ("Rows labelled", ref(feedback.FeedbackResult)),
                409: ("The prediction log is off on this server", error),
                **errors(400, 404, 413, 415, 422),
            },
        ),
        RawRoute(
            "POST",
            "/invocations",
            mlflow.invocations,
            "Score (MLflow protocol)",
            "mlflow",
            s.union_of(
                [
                    m["DataframeSplitRequest"],
                    m["DataframeRecordsRequest"],
                    m["InstancesRequest"],
                    m["InputsRequest"],
                ],
                components,
            ),
            {"dataframe_split": {"columns": shape.features, "data": [row]}},
            csv=True,
            responses={200: ("Predictions", ref(s.Predictions)), **body_errors},
        ),
        RawRoute(
            "GET",
            "/ping",
            mlflow.ping,
            "Health (MLflow protocol)",
            "mlflow",
            responses={200: ("Ready", ref(s.Health)), 503: ("Not ready", ref(s.Health))},
        ),
        RawRoute(
            "GET",
            "/version",
            mlflow.version,
            "Version (MLflow protocol)",
            "mlflow",
            responses={200: ("Versions", ref(s.Version))},
        ),
        RawRoute(
            "GET",
            "/v1/models",
            kserve.models,
            "List models (KServe v1)",
            "kserve-v1",
            responses={200: ("Models", ref(s.KServeModels))},
        ),
        RawRoute(
            "GET",
            "/v1/models/{name}",
            kserve.model,
            "Model status (KServe v1)",
            "kserve-v1",
            responses={
                200: ("Ready", ref(s.KServeModel)),
                503: ("Not ready", ref(s.KServeModel)),
                **errors(404),
            },
        ),
        RawRoute(
            "POST",
            "/v1/models/{name}:predict",
            kserve.predict,
            "Predict (KServe v1)",
            "kserve-v1",
            ref(m["KServeV1Request"]),
            {"instances": [row]},
            responses={200: ("Predictions", ref(s.Predictions)), **body_errors},
        ),
        RawRoute(
            "GET",
            "/v2",
            oip.server_metadata,
            "Server metadata (OIP v2)",
            "oip-v2",
            responses={200: ("Metadata", ref(s.ServerMetadata))},
        ),
        RawRoute(
            "GET",
            "/v2/health/live",
            oip.live,
            "Server live (OIP v2)",
            "oip-v2",
            responses={200: ("Live", ref(s.Live))},
        ),
        RawRoute(
            "GET",
            "/v2/health/ready",
            oip.ready,
            "Server ready (OIP v2)",
            "oip-v2",
            responses={200: ("Ready", ref(s.Ready)), 503: ("Not ready", ref(s.Ready))},
        ),
        *_model_routes("/v2/models/{name}", m, ref, errors, row, n),
        *_model_routes("/v2/models/{name}/versions/{version}", m, ref, errors, row, n),
    ]


def _model_routes(
    base: str, m: dict[str, type[BaseModel]], ref: Any, errors: Any, row: list[float], n: int
) -> list[RawRoute]:
    infer_example = {
        "inputs": [{"name": "input-0", "shape": [1, n], "datatype": "FP64", "data": row}]
    }
    return [
        RawRoute(
            "GET",
            base,
            oip.model_metadata,
            "Model metadata (OIP v2)",
            "oip-v2",
            responses={200: ("Metadata", ref(s.ModelMetadata)), **errors(404, 409, 503)},
        ),
        RawRoute(
            "GET",
            f"{base}/ready",
            oip.model_ready,
            "Model ready (OIP v2)",
            "oip-v2",
            responses={
                200: ("Ready", ref(s.ModelReady)),
                503: ("Not ready", ref(s.ModelReady)),
                **errors(404, 409),
            },
        ),
        RawRoute(
            "POST",
            f"{base}/infer",
            oip.infer,
            "Inference (OIP v2)",
            "oip-v2",
            ref(m["InferRequest"]),
            infer_example,
            responses={
                200: ("Inference response", ref(s.InferResponse)),
                **errors(400, 404, 409, 413, 415, 503),
            },
        ),
    ]
