"""The benchmark fleet: N kserve models whose every number is known in advance.

Model ``i`` is called ``model-0000``…; every tenth model also has a canary track
(a ``<name>-canary`` Deployment and ``track="canary"`` series). Per 60 s sample each
model's histogram grows by fixed per-bucket increments (see :func:`increments`), so
its request rate is exactly ``sum(counts) / STEP`` — the benchmark checks every
collected value against that, so a run that silently reads nothing cannot pass as fast.

The series are written with the test harness' :class:`OpenMetricsWriter`
(``tests/support/openmetrics.py``) and backfilled with promtool like the tests do.
"""

from __future__ import annotations

import time

from tests.support.openmetrics import DEFAULT_BUCKETS, OpenMetricsWriter

STEP = 60
"""Seconds between samples: coarse, so 1,000 models stay a small backfill."""
WINDOW_S = 15 * 60
"""The config's chart ``window`` (the sparkline range query covers it)."""
RATE_WINDOW_S = 300
HISTORY_BEFORE = WINDOW_S + RATE_WINDOW_S + 5 * 60
CANARY_EVERY = 10
NAMESPACE = "ml"


def model_name(i: int) -> str:
    return f"model-{i:04d}"


def has_canary(i: int) -> bool:
    return i % CANARY_EVERY == 0


def increments(i: int, track: str = "stable") -> tuple[tuple[int, ...], int]:
    """(per-bucket observations per step incl. +Inf, errors per step) of model ``i``."""
    counts = [0] * (len(DEFAULT_BUCKETS) + 1)
    if track == "canary":
        counts[4], counts[6] = 3, 2
        return tuple(counts), 1
    # Shift the bulk of the traffic by model so models differ: buckets 2..5.
    base = 2 + i % 4
    counts[base], counts[base + 1], counts[base + 2] = 10 + i % 7, 20, 5
    return tuple(counts), i % 3


def expected_rps(i: int) -> float:
    """Requests per second of model ``i`` over all its tracks (exact)."""
    total = sum(increments(i)[0])
    if has_canary(i):
        total += sum(increments(i, "canary")[0])
    return total / STEP


def openmetrics(n: int, future_s: int, now: float | None = None) -> str:
    """OpenMetrics history for models 0..n-1 from ``HISTORY_BEFORE`` ago to ``future_s`` ahead.

    Data runs past "now" so rate() windows ending now are exact (STYLE.md).
    """
    now = time.time() if now is None else now
    start = (int(now) // STEP) * STEP - HISTORY_BEFORE
    writer = OpenMetricsWriter(start, start + HISTORY_BEFORE + future_s, STEP)
    for i in range(n):
        tracks = ["stable", "canary"] if has_canary(i) else ["stable"]
        for track in tracks:
            counts, errors = increments(i, track)
            labels = {"model_name": model_name(i), "track": track, "namespace": NAMESPACE}
            latency_sum = sum(c * b for c, b in zip(counts, [*DEFAULT_BUCKETS, 10.0], strict=True))
            writer.histogram(
                "request_predict_seconds", labels, DEFAULT_BUCKETS, counts, latency_sum
            )
            writer.counter("request_predict_errors_total", labels, errors)
    return writer.text()


def models_toml(n: int) -> str:
    """``[[models]]`` for the first ``n`` models: kserve metrics, Deployment targets."""
    parts = []
    for i in range(n):
        name = model_name(i)
        canary = f', canary = "{name}-canary"' if has_canary(i) else ""
        parts.append(
            f'[[models]]\nname = "{name}"\nmetrics = "kserve"\n'
            f'target = {{ kind = "Deployment", namespace = "{NAMESPACE}", name = "{name}"{canary} }}\n'
        )
    return "\n".join(parts)
