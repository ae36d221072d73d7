"""A real Prometheus exposition endpoint (prometheus_client's own HTTP server).

Tests observe exactly the values they want into a fresh registry, and the
``scrape`` source (or a real Prometheus) reads them over HTTP from 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server


@dataclass
class MetricsEndpoint:
    """A running /metrics server with the kserve preset's metrics (as the demo exports them)."""

    url: str
    registry: CollectorRegistry
    latency: Histogram
    """request_predict_seconds{model_name, track, model_version}"""
    errors: Counter
    """request_predict_errors_total{model_name, track, model_version}"""

    def observe(
        self, model: str, seconds: float, n: int = 1, track: str = "stable", version: str = "1"
    ) -> None:
        child = self.latency.labels(model_name=model, track=track, model_version=version)
        for _ in range(n):
            child.observe(seconds)

    def error(self, model: str, n: int = 1, track: str = "stable", version: str = "1") -> None:
        self.errors.labels(model_name=model, track=track, model_version=version).inc(n)


@pytest.fixture
def metrics_endpoint() -> Iterator[MetricsEndpoint]:
    registry = CollectorRegistry()
    labels = ["model_name", "track", "model_version"]
    latency = Histogram("request_predict_seconds", "predict latency", labels, registry=registry)
    errors = Counter("request_predict_errors", "failed predictions", labels, registry=registry)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        yield MetricsEndpoint(
            url=f"http://127.0.0.1:{server.server_port}/metrics",
            registry=registry,
            latency=latency,
            errors=errors,
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
