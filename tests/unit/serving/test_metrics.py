"""Request metrics are batched but exact, and /metrics exposes the documented names."""

from __future__ import annotations

from prometheus_client import REGISTRY
from starlette.testclient import TestClient

from petalops.serving.metrics import RequestMetrics

ROW = [5.1, 3.5, 1.4, 0.2]


def _value(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_flush_adds_exact_counts_and_buckets() -> None:
    metrics = RequestMetrics()
    labels = {"route": "/unit", "status": "200", "model_version": "9", "variant": "champion"}
    hist = {"route": "/unit", "model_version": "9", "variant": "champion"}
    count0 = _value("petalops_requests_total", labels)
    fast0 = _value("petalops_request_duration_seconds_bucket", {**hist, "le": "0.0001"})
    slow0 = _value("petalops_request_duration_seconds_bucket", {**hist, "le": "0.5"})
    sum0 = _value("petalops_request_duration_seconds_sum", hist)
    for seconds in (0.00005, 0.00005, 0.3):
        metrics.request("/unit", 200, "9", "champion", seconds)
    metrics.flush()
    assert _value("petalops_requests_total", labels) == count0 + 3
    assert _value("petalops_request_duration_seconds_bucket", {**hist, "le": "0.0001"}) == fast0 + 2
    assert _value("petalops_request_duration_seconds_bucket", {**hist, "le": "0.5"}) == slow0 + 3
    assert abs(_value("petalops_request_duration_seconds_sum", hist) - sum0 - 0.3001) < 1e-9


def test_metrics_route_exposes_the_contract(client: TestClient) -> None:
    client.post("/predict", json={"features": ROW})
    client.post("/predict", json={"features": [99.0, 99.0, 99.0, 99.0]})
    client.post("/predict", json={"features": [1]})
    text = client.get("/metrics").text
    for name in [
        "petalops_requests_total",
        "petalops_request_duration_seconds_bucket",
        "petalops_predictions_total",
        "petalops_input_out_of_range_total",
        "petalops_model_loads_total",
        "petalops_model_info",
        "petalops_model_ready",
        "petalops_reconcile_errors_total",
    ]:
        assert f"# TYPE {name.removesuffix('_total').removesuffix('_bucket')}" in text, name
    assert (
        'petalops_requests_total{model_version="1",route="/predict",status="200",'
        'variant="champion"}' in text
    )
    assert 'route="/predict",status="400"' in text
    assert 'petalops_input_out_of_range_total{model_version="1"}' in text
    assert 'petalops_model_info{name="iris",variant="champion",version="1"} 1.0' in text
    assert "petalops_model_ready 1.0" in text


def test_metrics_count_failing_values_per_feature_and_refusals(client: TestClient) -> None:
    def counted(feature: str, check: str) -> float:
        labels = {"model_version": "1", "feature": feature, "check": check}
        return _value("petalops_input_values_total", labels)

    before = {
        ("petal_length", "out_of_range"): counted("petal_length", "out_of_range"),
        ("sepal_width", "refused"): counted("sepal_width", "refused"),
        ("_request", "refused"): counted("_request", "refused"),
        ("sepal_length", "out_of_range"): counted("sepal_length", "out_of_range"),
    }
    client.post("/predict", json={"features": [5.1, 3.5, 99.0, 0.2]})
    refused = client.post("/predict", json={"features": [5.1, "wide", 1.4, 0.2]})
    assert refused.status_code == 400
    client.post("/predict", json={"features": [5.1]})  # wrong width: no one feature
    text = client.get("/metrics").text  # a scrape flushes the batched counts first
    assert "# TYPE petalops_input_values_total counter" in text
    assert {key: counted(*key) - n for key, n in before.items()} == {
        ("petal_length", "out_of_range"): 1.0,
        ("sepal_width", "refused"): 1.0,
        ("_request", "refused"): 1.0,
        ("sepal_length", "out_of_range"): 0.0,
    }
