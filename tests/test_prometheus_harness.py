"""The harness' real Prometheus answers PromQL with exactly what the generated series imply."""

from __future__ import annotations

import math
import time

import pytest

from tests.harness.prometheus import PrometheusServer
from tests.support.openmetrics import OpenMetricsWriter, histogram_quantile


def test_formula_matches_hand_computation() -> None:
    """fraud: 70 requests <= 100 ms, 20 in (100, 250], 10 in (250, 500] per step.
    Rank 95 lies in the (250, 500] bucket, 5 of its 10 in: 250 + 250 * 5/10 = 375 ms."""
    bounds = (0.1, 0.25, 0.5)
    assert histogram_quantile(0.95, bounds, (70, 20, 10, 0)) == pytest.approx(0.375)
    assert histogram_quantile(0.5, bounds, (0, 0, 0, 0)) is None
    # A rank in the +Inf bucket gives the highest finite bound, as Prometheus does.
    assert histogram_quantile(0.99, bounds, (50, 0, 0, 50)) == 0.5


def test_fleet_quantile_rps_and_error_rate_are_exact(prometheus_fleet: PrometheusServer) -> None:
    server = prometheus_fleet
    p95 = server.scalar(
        "histogram_quantile(0.95, sum by (le) "
        '(rate(request_predict_seconds_bucket{model_name="fraud"}[5m])))'
    )
    assert p95 * 1000 == pytest.approx(375.0, rel=1e-9)
    assert p95 * 1000 == pytest.approx(server.expected["fraud"].p95_ms, rel=1e-9)

    rps = server.scalar('sum(rate(request_predict_seconds_count{model_name="fraud"}[5m]))')
    assert rps == pytest.approx(100 / 15, rel=1e-9)

    errors = server.scalar('sum(rate(request_predict_errors_total{model_name="ranker"}[5m]))')
    requests = server.scalar('sum(rate(request_predict_seconds_count{model_name="ranker"}[5m]))')
    assert errors / requests == pytest.approx(0.02, rel=1e-9)

    churn = server.scalar(
        "histogram_quantile(0.95, sum by (le) "
        '(rate(request_predict_seconds_bucket{model_name="churn"}[5m])))'
    )
    assert churn * 1000 == pytest.approx(server.expected["churn"].p95_ms, rel=1e-9)


def test_rates_are_exact_across_the_chart_window(prometheus_fleet: PrometheusServer) -> None:
    """Data runs from 2 h before to 1 h after the session start, so a rate at any
    point of the last hour is exact (no partial-window extrapolation)."""
    now = time.time()
    for back in (0, 600, 3000):
        rps = prometheus_fleet.scalar(
            'sum(rate(request_predict_seconds_count{model_name="ranker"}[5m]))', time=now - back
        )
        assert rps == pytest.approx(100 / 15, rel=1e-9)
    assert prometheus_fleet.data_end is not None and prometheus_fleet.data_end > now + 1800


def test_no_traffic_quantile_is_nan(prometheus_fleet: PrometheusServer) -> None:
    value = prometheus_fleet.scalar(
        "histogram_quantile(0.95, sum by (le) "
        '(rate(request_predict_seconds_bucket{model_name="idle"}[5m])))'
    )
    assert math.isnan(value)


def test_factory_backfills_a_custom_dataset_and_restarts(prometheus_factory) -> None:  # type: ignore[no-untyped-def]
    now = int(time.time())
    writer = OpenMetricsWriter(now - 1800, now + 1800, 10)
    writer.counter("widgets_total", {"shop": "a"}, 3)
    server = prometheus_factory(writer.text())
    assert server.scalar("rate(widgets_total[2m])") == pytest.approx(0.3, rel=1e-9)
    server.stop()
    assert not server.running
    server.start()
    assert server.scalar("rate(widgets_total[2m])") == pytest.approx(0.3, rel=1e-9)
