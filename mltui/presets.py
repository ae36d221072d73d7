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
    requests_exclude_errors: bool = False
    """True when ``requests`` counts successful requests only (Triton, MLServer): the
    collector then takes ``requests + errors`` as all requests."""


BUILTIN_PRESETS: dict[str, Preset] = {
    # Names checked against each server's own source or docs (see the comment per entry).
    #
    # KServe Python model server (kserve/metrics.py): histogram request_predict_seconds,
    # label model_name (PROM_LABELS). KServe itself exports no error counter and no track:
    # request_predict_errors_total and the "track" label (stable/canary) are mltui's
    # documented extensions, exported by the embedded demo's model server and easy to add
    # with a relabel or a few lines in a custom predictor. Without them error rate is null
    # and no track split is shown.
    "kserve": Preset(
        latency_histogram="request_predict_seconds",
        requests="request_predict_seconds_count",
        errors="request_predict_errors_total",
        model_label="model_name",
        track_label="track",
    ),
    # Seldon MLServer (mlserver/handlers/dataplane.py): counters model_infer_request_success
    # and model_infer_request_failure (prometheus_client adds _total) and a *Summary*
    # model_infer_request_duration (seconds; no buckets, so mean latency only), all labelled
    # model and version.
    "mlserver": Preset(
        latency_sum="model_infer_request_duration_sum",
        latency_count="model_infer_request_duration_count",
        requests="model_infer_request_success_total",
        errors="model_infer_request_failure_total",
        requests_exclude_errors=True,
        model_label="model",
    ),
    # BentoML >= 1.2 (docs "Metrics"): histogram bentoml_service_request_duration_seconds and
    # counter bentoml_service_request_total, labels endpoint, service_name, service_version,
    # http_response_code.
    "bentoml": Preset(
        latency_histogram="bentoml_service_request_duration_seconds",
        requests="bentoml_service_request_total",
        errors='bentoml_service_request_total{http_response_code=~"5.."}',
        model_label="service_name",
    ),
    # NVIDIA Triton (docs user_guide/metrics.md): counters only by default, labels model and
    # version. nv_inference_request_duration_us is cumulative request time (µs) and pairs
    # with nv_inference_request_success (the docs say so); failures are counted apart in
    # nv_inference_request_failure (label reason in newer releases).
    "triton": Preset(
        latency_sum="nv_inference_request_duration_us",
        latency_count="nv_inference_request_success",
        latency_unit="us",
        requests="nv_inference_request_success",
        errors="nv_inference_request_failure",
        requests_exclude_errors=True,
        model_label="model",
    ),
    # TorchServe, metrics_mode=prometheus (docs metrics.md): counters ts_inference_requests_total
    # and ts_inference_latency_microseconds, labels model_name, model_version (+ uuid/hostname).
    # Its 4XX/5XX counters carry no model label, so there is no per-model error counter.
    "torchserve": Preset(
        latency_sum="ts_inference_latency_microseconds",
        latency_count="ts_inference_requests_total",
        latency_unit="us",
        requests="ts_inference_requests_total",
        errors=None,
        model_label="model_name",
    ),
    # Ray Serve (docs serve/monitoring): histogram ray_serve_deployment_processing_latency_ms
    # (milliseconds), counters ray_serve_deployment_request_counter_total and
    # ray_serve_deployment_error_counter_total (the _total names since Ray 2.10), tag deployment.
    "rayserve": Preset(
        latency_histogram="ray_serve_deployment_processing_latency_ms",
        latency_unit="ms",
        requests="ray_serve_deployment_request_counter_total",
        errors="ray_serve_deployment_error_counter_total",
        model_label="deployment",
    ),
    # vLLM (docs usage/metrics): histogram vllm:e2e_request_latency_seconds and counter
    # vllm:request_success_total (label finished_reason), both labelled model_name. vLLM has
    # no failed-request counter, so error rate is null.
    "vllm": Preset(
        latency_histogram="vllm:e2e_request_latency_seconds",
        requests="vllm:request_success_total",
        errors=None,
        model_label="model_name",
    ),
    # Seldon Core v1 executor (executor/api/metric/constants.go): histogram
    # seldon_api_executor_server_requests_seconds, labels deployment_name, predictor_name,
    # model_name, ... and the HTTP code in "code".
    "seldon": Preset(
        latency_histogram="seldon_api_executor_server_requests_seconds",
        requests="seldon_api_executor_server_requests_seconds_count",
        errors='seldon_api_executor_server_requests_seconds_count{code=~"5.."}',
        model_label="deployment_name",
    ),
}
