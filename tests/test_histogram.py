"""histogram_quantile as Prometheus computes it (promql/quantile.go), on known buckets.

The comparison with a real Prometheus server on the same buckets lives in
tests/test_scrape.py (it needs the scrape fixtures)."""

from __future__ import annotations

import math

import pytest

from mltui.collectors.histogram import bucket_quantile, parse_le, sum_buckets

INF = math.inf
# 50 observations ≤ 0.1 s, 50 more in (0.1, 0.2], none above.
TWO_BUCKETS = [(0.1, 50.0), (0.2, 100.0), (INF, 100.0)]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        (0.5, 0.1),  # rank 50 hits the first bucket's upper bound exactly
        (0.25, 0.05),  # lowest bucket starts at 0: 0 + 0.1 × 25/50
        (0.75, 0.15),  # 0.1 + 0.1 × 25/50
        (0.95, 0.19),  # 0.1 + 0.1 × 45/50
        (1.0, 0.2),
        (0.0, 0.0),
    ],
)
def test_linear_interpolation_inside_the_bucket(q: float, expected: float) -> None:
    assert bucket_quantile(q, TWO_BUCKETS) == pytest.approx(expected)


def test_a_quantile_in_the_inf_bucket_is_the_second_highest_bound() -> None:
    assert bucket_quantile(0.9, [(0.1, 10.0), (0.5, 12.0), (INF, 20.0)]) == 0.5


def test_without_an_inf_bucket_the_result_is_nan() -> None:
    assert math.isnan(bucket_quantile(0.5, [(0.1, 10.0), (0.2, 20.0)]))


@pytest.mark.parametrize(
    "buckets",
    [[], [(INF, 5.0)], [(0.1, 0.0), (INF, 0.0)]],
    ids=["no buckets", "only +Inf", "no observations"],
)
def test_nan_when_there_is_nothing_to_interpolate(buckets: list[tuple[float, float]]) -> None:
    assert math.isnan(bucket_quantile(0.5, buckets))


def test_out_of_range_quantiles() -> None:
    assert bucket_quantile(-0.1, TWO_BUCKETS) == -INF
    assert bucket_quantile(1.1, TWO_BUCKETS) == INF
    assert math.isnan(bucket_quantile(math.nan, TWO_BUCKETS))


def test_unsorted_buckets_are_sorted_first() -> None:
    assert bucket_quantile(0.75, list(reversed(TWO_BUCKETS))) == pytest.approx(0.15)


def test_buckets_with_the_same_bound_are_merged() -> None:
    # Two series' buckets "0.1" and "0.10" summed: 10 observations ≤ 0.1 of 10.
    assert bucket_quantile(0.5, [(0.1, 5.0), (0.1, 5.0), (INF, 10.0)]) == pytest.approx(0.05)


def test_counts_that_go_down_are_forced_monotonic() -> None:
    # The 0.2 bucket (8) is raised to 10, so every observation is ≤ 0.1.
    assert bucket_quantile(0.5, [(0.1, 10.0), (0.2, 8.0), (INF, 10.0)]) == pytest.approx(0.05)


def test_a_lowest_bound_at_or_below_zero_is_returned_as_is() -> None:
    assert bucket_quantile(0.3, [(0.0, 5.0), (1.0, 10.0), (INF, 10.0)]) == 0.0
    assert bucket_quantile(0.3, [(-1.0, 5.0), (1.0, 10.0), (INF, 10.0)]) == -1.0


def test_le_labels_and_sum_by_le() -> None:
    assert parse_le("+Inf") == INF
    assert parse_le("0.25") == 0.25
    # Two series' buckets, unsorted and interleaved, as the scrape source yields them.
    summed = sum_buckets([(INF, 2.0), (0.1, 1.0), (0.1, 3.0), (INF, 5.0)])
    assert summed == [(0.1, 4.0), (INF, 7.0)]
