"""The standard Prometheus dataset: a small fleet whose every number is known.

Per 15 s step each series grows by fixed increments (see :mod:`tests.support.openmetrics`),
so over any 5 m window:

========= ========== ================================ ========== ======= ==========
model     preset     shape                            p95 (ms)   rps     error rate
========= ========== ================================ ========== ======= ==========
churn     kserve     stable + canary tracks; healthy  183.33     8.0     1/120
                     (stable p95 97.9, canary 375.0;  (tracks)   6.67 /  0 / 0.05
                     canary error rate 5 %)                      1.33
fraud     kserve     p95 above the 200 ms warn level  375.0      6.667   0.0
ranker    kserve     2 % errors (warn), fast          79.17      6.667   0.02
pricing   kserve     p95 > 400 ms, 10 % errors: crit  791.67     3.333   0.10
idle      kserve     series exist, no traffic         None       0.0     None
sentiment triton     counter-only: mean 35 ms         None       2.8     2/42
detector  torchserve counter-only mean 120 ms, no     None       2.0     None
                     error counter
llm       vllm       histogram, no error counter      4375.0     0.667   None
========= ========== ================================ ========== ======= ==========

Exact expected values come from :func:`expected` (formulas over the increments),
never from Prometheus. ``ghost`` (kserve) is a configured model with no series.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from tests.support.openmetrics import (
    DEFAULT_BUCKETS,
    OpenMetricsWriter,
    histogram_quantile,
    rank_is_safe,
)

STEP = 15
"""Seconds between samples (a typical scrape interval)."""
HISTORY_BEFORE = 2 * 3600
"""Seconds of history before "now" (covers a 1 h chart window plus its rate windows)."""
HISTORY_AFTER = 3600
"""Seconds of data written past "now", so rate() windows ending now are exact."""

VLLM_BUCKETS: tuple[float, ...] = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0)


def _buckets(bounds: tuple[float, ...], **by_bound: int) -> tuple[int, ...]:
    """Per-bucket counts from {"b0_05": 40, "inf": 1} style keywords."""
    counts = [0] * (len(bounds) + 1)
    for key, count in by_bound.items():
        if key == "inf":
            counts[-1] = count
            continue
        bound = float(key[1:].replace("_", "."))
        counts[bounds.index(bound)] = count
    return tuple(counts)


@dataclass(frozen=True)
class HistTrack:
    """One histogram series (a model, or one track of it): increments per step."""

    counts: tuple[int, ...]
    errors: int = 0
    sum_s: float = 0.0
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Expected:
    """What a correct collector reports for one model (or track) over any 5 m window."""

    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    mean_ms: float | None = None
    rps: float | None = None
    error_rate: float | None = None


def hist_expected(
    tracks: list[HistTrack], bounds: tuple[float, ...], with_errors: bool
) -> Expected:
    counts = [sum(t.counts[i] for t in tracks) for i in range(len(bounds) + 1)]
    total = sum(counts)
    errors = sum(t.errors for t in tracks)
    for q in (0.5, 0.95, 0.99):
        assert total == 0 or rank_is_safe(q, counts), f"q={q} rank on a bucket edge"

    def ms(q: float) -> float | None:
        v = histogram_quantile(q, bounds, counts)
        return None if v is None else v * 1000

    return Expected(
        p50_ms=ms(0.5),
        p95_ms=ms(0.95),
        p99_ms=ms(0.99),
        rps=total / STEP,
        error_rate=(errors / total if total else None) if with_errors else None,
    )


B = DEFAULT_BUCKETS
KSERVE: dict[str, dict[str, HistTrack]] = {
    # model -> track -> increments per step
    "churn": {
        "stable": HistTrack(_buckets(B, b0_025=20, b0_05=40, b0_075=24, b0_1=12, b0_25=4), 0),
        "canary": HistTrack(_buckets(B, b0_05=6, b0_1=7, b0_25=5, b0_5=2), 1),
    },
    "fraud": {"stable": HistTrack(_buckets(B, b0_075=48, b0_1=22, b0_25=20, b0_5=10), 0)},
    "ranker": {"stable": HistTrack(_buckets(B, b0_01=30, b0_025=40, b0_05=24, b0_1=6), 2)},
    "pricing": {"stable": HistTrack(_buckets(B, b0_1=10, b0_25=10, b0_5=20, b0_75=7, b1_0=3), 5)},
    "idle": {"stable": HistTrack(_buckets(B), 0)},
}
"""kserve models: request_predict_seconds{model_name, track} + request_predict_errors_total."""

LLM_TRACK = HistTrack(_buckets(VLLM_BUCKETS, b1_0=2, b2_0=4, b2_5=2, b5_0=2))
LLM_FINISHED = {"stop": 8, "length": 2}
"""vllm:request_success_total per finished_reason per step (sums to the histogram count)."""

TRITON = {"success": 40, "failure": 2, "duration_us": 40 * 35_000}
TORCHSERVE = {"requests": 30, "latency_us": 30 * 120_000}


def _kserve_sum(track: HistTrack) -> float:
    # A plausible latency sum: each observation at its bucket's upper bound.
    return sum(c * b for c, b in zip(track.counts, [*B, 10.0], strict=True))


def expected() -> dict[str, Expected]:
    """Model name -> expected overall values; "<model>:<track>" for churn's tracks."""
    out: dict[str, Expected] = {}
    for model, tracks in KSERVE.items():
        out[model] = hist_expected(list(tracks.values()), B, with_errors=True)
        if len(tracks) > 1:
            for track, t in tracks.items():
                out[f"{model}:{track}"] = hist_expected([t], B, with_errors=True)
    out["llm"] = hist_expected([LLM_TRACK], VLLM_BUCKETS, with_errors=False)
    requests = TRITON["success"] + TRITON["failure"]
    out["sentiment"] = Expected(
        mean_ms=TRITON["duration_us"] / TRITON["success"] / 1000,
        rps=requests / STEP,
        error_rate=TRITON["failure"] / requests,
    )
    out["detector"] = Expected(
        mean_ms=TORCHSERVE["latency_us"] / TORCHSERVE["requests"] / 1000,
        rps=TORCHSERVE["requests"] / STEP,
        error_rate=None,
    )
    return out


def write_fleet(writer: OpenMetricsWriter) -> None:
    """Add every series of the standard fleet to ``writer``."""
    for model, tracks in KSERVE.items():
        for track, t in tracks.items():
            labels = {"model_name": model, "track": track, "namespace": "ml"}
            writer.histogram("request_predict_seconds", labels, B, t.counts, _kserve_sum(t))
            writer.counter("request_predict_errors_total", labels, t.errors)
    writer.histogram(
        "vllm:e2e_request_latency_seconds",
        {"model_name": "llm"},
        VLLM_BUCKETS,
        LLM_TRACK.counts,
        sum(c * b for c, b in zip(LLM_TRACK.counts, [*VLLM_BUCKETS, 15.0], strict=True)),
    )
    for reason, n in LLM_FINISHED.items():
        writer.counter(
            "vllm:request_success_total", {"model_name": "llm", "finished_reason": reason}, n
        )
    triton = {"model": "sentiment", "version": "3"}
    writer.counter("nv_inference_request_success", triton, TRITON["success"])
    writer.counter(
        "nv_inference_request_failure", {**triton, "reason": "BACKEND"}, TRITON["failure"]
    )
    writer.counter("nv_inference_request_duration_us", triton, TRITON["duration_us"])
    writer.counter("nv_inference_exec_count", triton, TRITON["success"])
    ts = {"model_name": "detector", "model_version": "1.0", "hostname": "ts-0"}
    writer.counter("ts_inference_requests_total", ts, TORCHSERVE["requests"])
    writer.counter("ts_inference_latency_microseconds", ts, TORCHSERVE["latency_us"])


def fleet_openmetrics(now: float | None = None) -> tuple[str, int, int]:
    """(OpenMetrics text, first sample time, last sample time) for the standard fleet."""
    now = time.time() if now is None else now
    start = (int(now) // STEP) * STEP - HISTORY_BEFORE
    writer = OpenMetricsWriter(start, start + HISTORY_BEFORE + HISTORY_AFTER, STEP)
    write_fleet(writer)
    return writer.text(), writer.start, writer.end


MODELS_TOML = """
[[models]]
name = "churn"
metrics = "kserve"
target = { kind = "Deployment", namespace = "ml", name = "churn", canary = "churn-canary" }

[[models]]
name = "fraud"
metrics = "kserve"

[[models]]
name = "ranker"
metrics = "kserve"

[[models]]
name = "pricing"
metrics = "kserve"

[[models]]
name = "idle"
metrics = "kserve"

[[models]]
name = "sentiment"
metrics = "triton"

[[models]]
name = "detector"
metrics = "torchserve"

[[models]]
name = "llm"
metrics = "vllm"

[[models]]
name = "ghost"
metrics = "kserve"
"""
"""The ``[[models]]`` of a config that covers the standard fleet (append to a
``[prometheus]`` section); ghost has no series at all."""
