"""The state one worker shares between its routes, and the route table of the hot path."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from petalops.config import IRIS_CLASSES, IRIS_FEATURES, Settings
from petalops.serving.accesslog import JsonLog
from petalops.serving.holder import RuntimeHolder, Served, Snapshot
from petalops.serving.http import (
    JSON,
    Call,
    HttpError,
    Receive,
    parse_json,
    read_body,
    require_json,
)
from petalops.serving.metrics import RequestMetrics
from petalops.serving.sidechannel import SideChannel

IRIS_EXAMPLE = [5.1, 3.5, 1.4, 0.2]


@dataclass(frozen=True)
class ApiShape:
    """The model's interface as the API documents it (from settings; Iris by default)."""

    name: str
    features: list[str]
    classes: list[str]
    example_row: list[float]

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiShape:
        features = settings.data.features or ["feature_0", "feature_1", "feature_2", "feature_3"]
        classes = settings.data.classes or []
        example = IRIS_EXAMPLE if features == IRIS_FEATURES else [0.0] * len(features)
        if features == IRIS_FEATURES and not classes:
            classes = IRIS_CLASSES
        return cls(settings.project, list(features), list(classes), list(example))

    # Valid example bodies, shown in every 4xx answer; built once, never on the hot path.
    @cached_property
    def example_record(self) -> dict[str, float]:
        return dict(zip(self.features, self.example_row, strict=True))

    @cached_property
    def examples(self) -> dict[str, Any]:
        row, n = self.example_row, len(self.features)
        return {
            "predict": {"features": row},
            "v1": {"instances": [self.example_record]},
            "kserve": {"instances": [row]},
            "mlflow": {"dataframe_split": {"columns": self.features, "data": [row]}},
            "csv": ",".join(self.features) + "\n" + ",".join(map(str, row)),
            "oip": {
                "inputs": [{"name": "input-0", "shape": [1, n], "datatype": "FP64", "data": row}]
            },
        }


@dataclass(slots=True)
class Reply:
    """A hot route's answer, plus what the dispatcher needs for metrics and logs."""

    body: bytes
    status: int = 200
    content_type: bytes = JSON
    version: str = ""
    variant: str = ""
    headers: list[tuple[bytes, bytes]] | None = None
    # What was predicted, for the side channel (metrics by class, prediction log, shadow).
    snapshot: Snapshot | None = None
    served: Served | None = None
    rows: list[list[float]] | None = None
    labels: list[int] | None = None
    probas: list[list[float]] | None = None


Handler = Callable[["Server", Call, Receive], Awaitable[Reply]]


@dataclass
class Server:
    """Everything the routes of one worker need."""

    settings: Settings
    shape: ApiShape
    holder: RuntimeHolder
    metrics: RequestMetrics
    log: JsonLog
    side: SideChannel

    @property
    def max_body(self) -> int:
        return self.settings.serve.max_body_bytes

    @property
    def max_batch(self) -> int:
        return self.settings.serve.max_batch

    async def json_body(self, call: Call, receive: Receive, example: Any) -> Any:
        require_json(call, example)
        return parse_json(await read_body(receive, call, self.max_body), example)

    async def choose(self, call: Call, version: str | None = None) -> tuple[Snapshot, Served, str]:
        """The snapshot, the runtime and the variant that answer this request."""
        snapshot = self.holder.snapshot
        wanted = version
        if wanted is None and call.model_version is not None:
            wanted = call.model_version
            if not wanted.isdigit() or len(wanted) > 9:
                raise HttpError(
                    400,
                    f"X-Model-Version must be a registered version number, got {wanted!r}",
                    "X-Model-Version",
                    "3",
                )
        if wanted:
            served, variant = await self.holder.version(wanted)
            return snapshot, served, variant
        served, variant = snapshot.pick(call.routing_key or call.request_id, call.champion_only)
        return snapshot, served, variant

    def predicted(
        self,
        body: bytes,
        snapshot: Snapshot,
        served: Served,
        variant: str,
        rows: list[list[float]],
        labels: list[int],
        probas: list[list[float]],
    ) -> Reply:
        """A 200 answer carrying what the side channel needs after it is sent."""
        return Reply(
            body, 200, JSON, served.version, variant, None, snapshot, served, rows, labels, probas
        )


@dataclass(frozen=True)
class RawRoute:
    """One hot route: how to dispatch it and how to document it in OpenAPI."""

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    request_schema: dict[str, Any] | None = None
    request_example: Any = None
    csv: bool = False
    responses: dict[int, tuple[str, dict[str, Any] | None]] = field(default_factory=dict)
    response_example: Any = None
    text_response: bool = False

    @property
    def description(self) -> str:
        return (self.handler.__doc__ or "").strip()


_PARAM = re.compile(r"\{(\w+)\}")
# The key under which a path's route table keeps its first route (its metric label).
LABEL = "*"


class Router:
    """Exact paths by dict lookup; templated paths by a short list of regexes."""

    def __init__(self, routes: list[RawRoute]) -> None:
        self.routes = routes
        self.exact: dict[str, dict[str, RawRoute]] = {}
        self.templated: list[tuple[re.Pattern[str], dict[str, RawRoute]]] = []
        patterns: dict[str, dict[str, RawRoute]] = {}
        for route in routes:
            table = patterns if "{" in route.path else self.exact
            by_method = table.setdefault(route.path, {LABEL: route})
            by_method[route.method] = route
        # Prediction routes first: they are the ones matched thousands of times a second.
        hot_first = sorted(patterns.items(), key=lambda item: "POST" not in item[1])
        for template, by_method in hot_first:
            regex = (
                "^"
                + _PARAM.sub(
                    r"(?P<\1>[^/:]+)", re.escape(template).replace(r"\{", "{").replace(r"\}", "}")
                )
                + "$"
            )
            self.templated.append((re.compile(regex), by_method))

    def match(self, path: str) -> tuple[dict[str, RawRoute] | None, dict[str, str]]:
        by_method = self.exact.get(path)
        if by_method is not None:
            return by_method, {}
        for regex, candidates in self.templated:
            found = regex.match(path)
            if found is not None:
                return candidates, found.groupdict()
        return None, {}
