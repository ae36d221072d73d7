"""Metric presets: where each model server keeps latency, request and error counters.

A preset is data. The Prometheus collector turns it into one PromQL query per
signal for the whole fleet. Names and labels are those the servers really export
(see each entry's comment); counter-only servers give a mean latency, and a server
with no error counter has ``errors = None`` so the error rate is ``null``, not 0.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

LatencyUnit = Literal["s", "ms", "us"]


class Preset(BaseModel):
    """How to read one model server's metrics."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_histogram: str | None = None
    """Histogram base name (the collector appends _bucket/_count/_sum)."""
    latency_sum: str | None = None
    """Counter of total latency, for servers without a histogram (mean = sum/count)."""
    latency_count: str | None = None
    """Counter of requests that ``latency_sum`` covers."""
    latency_unit: LatencyUnit = "s"
    """Unit of the latency metrics: s, ms or us."""
    requests: str | None = None
    """Counter (a metric name or a selector) of all requests."""
    errors: str | None = None
    """Counter (name or selector) of failed requests; None: the server exports none."""
    model_label: str = "model_name"
    """Label naming the model; the default selector is {model_label = registered model}."""
    track_label: str | None = None
    """Label telling stable from canary series, when the server or scrape config sets one."""
    canary_value: str = "canary"
    """Value of ``track_label`` on canary series; any other value counts as stable."""


BUILTIN_PRESETS: dict[str, Preset] = {
    # KServe Python model server (kserve/metrics.py): request_predict_seconds histogram
    # labelled model_name. It exports no error counter of its own; the demo adds
    # request_errors_total, which an operator can map the same way via a custom preset.
    "kserve": Preset(
        latency_histogram="request_predict_seconds",
        requests="request_predict_seconds_count",
        errors="request_predict_errors_total",
        model_label="model_name",
        track_label="track",
    ),
    # Seldon MLServer: model_infer_request_duration histogram, success/failure counters.
    "mlserver": Preset(
        latency_histogram="model_infer_request_duration",
        requests="model_infer_request_success",
        errors="model_infer_request_failure",
        model_label="model_name",
    ),
    # BentoML: bentoml_service_request_duration_seconds histogram and a request counter
    # with the HTTP status in http_response_code.
    "bentoml": Preset(
        latency_histogram="bentoml_service_request_duration_seconds",
        requests="bentoml_service_request_total",
        errors='bentoml_service_request_total{http_response_code=~"5.."}',
        model_label="service_name",
    ),
    # NVIDIA Triton: cumulative counters only (microseconds), no latency histogram by default.
    "triton": Preset(
        latency_sum="nv_inference_request_duration_us",
        latency_count="nv_inference_exec_count",
        latency_unit="us",
        requests="nv_inference_request_success",
        errors="nv_inference_request_failure",
        model_label="model",
    ),
    # TorchServe (Prometheus metrics mode): counters of requests and total latency in µs.
    "torchserve": Preset(
        latency_sum="ts_inference_latency_microseconds",
        latency_count="ts_inference_requests_total",
        latency_unit="us",
        requests="ts_inference_requests_total",
        errors=None,
        model_label="model_name",
    ),
    # Ray Serve: per-deployment processing latency histogram (ms), request and error counters.
    "rayserve": Preset(
        latency_histogram="ray_serve_deployment_processing_latency_ms",
        latency_unit="ms",
        requests="ray_serve_deployment_request_counter_total",
        errors="ray_serve_deployment_error_counter_total",
        model_label="deployment",
    ),
    # vLLM: end-to-end request latency histogram and a success counter; no error counter.
    "vllm": Preset(
        latency_histogram="vllm:e2e_request_latency_seconds",
        requests="vllm:request_success_total",
        errors=None,
        model_label="model_name",
    ),
    # Seldon Core v1 executor: server request histogram with the HTTP code as a label.
    "seldon": Preset(
        latency_histogram="seldon_api_executor_server_requests_seconds",
        requests="seldon_api_executor_server_requests_seconds_count",
        errors='seldon_api_executor_server_requests_seconds_count{code=~"5.."}',
        model_label="deployment_name",
    ),
}
