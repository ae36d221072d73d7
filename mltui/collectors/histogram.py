"""Histogram quantiles computed exactly as Prometheus' ``histogram_quantile`` does.

Pure math, no I/O: the ``scrape`` source feeds it bucket *deltas* between two
scrapes (the same numbers ``rate(x_bucket[w])`` gives Prometheus, up to the common
factor 1/w, which cancels out of a quantile). The algorithm follows
``promql/quantile.go`` (``bucketQuantile``) of Prometheus 2.x:

* buckets are sorted by upper bound (``le``) and buckets with the same bound merged;
* the highest bucket must be ``+Inf``, else the result is NaN;
* cumulative counts that go down (a scrape racing an observation) are forced
  monotonic;
* fewer than two buckets, or no observations, give NaN;
* rank = q × total; the first bucket whose cumulative count ≥ rank holds the
  quantile, linearly interpolated inside it; the lowest bucket starts at 0
  (unless its bound is ≤ 0, then that bound is returned); a quantile that falls
  into the ``+Inf`` bucket is the second-highest bound.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

Bucket = tuple[float, float]
"""(upper bound ``le``, cumulative count)"""


def parse_le(value: str) -> float:
    """The ``le`` label as a float ("+Inf", "0.25"…); ValueError when it is not a number."""
    return float(value)  # float() accepts "+Inf", "Inf", "inf"


def _coalesce(buckets: list[Bucket]) -> list[Bucket]:
    """Merge buckets that share an upper bound (e.g. "1" and "1.0" from two series)."""
    merged: list[Bucket] = []
    for le, count in buckets:
        if merged and merged[-1][0] == le:
            merged[-1] = (le, merged[-1][1] + count)
        else:
            merged.append((le, count))
    return merged


def _monotonic(buckets: list[Bucket]) -> list[Bucket]:
    """Cumulative counts never decrease; a lower count is raised to the maximum so far."""
    out: list[Bucket] = []
    highest = -math.inf
    for le, count in buckets:
        highest = max(highest, count)
        out.append((le, highest))
    return out


def bucket_quantile(q: float, buckets: Iterable[Bucket]) -> float:
    """The ``q``-quantile of cumulative ``buckets``, as Prometheus computes it (may be NaN)."""
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = sorted(buckets, key=lambda b: b[0])
    if not ordered or not math.isinf(ordered[-1][0]) or ordered[-1][0] < 0:
        return math.nan
    ordered = _monotonic(_coalesce(ordered))
    if len(ordered) < 2:
        return math.nan
    observations = ordered[-1][1]
    if observations == 0 or math.isnan(observations):
        return math.nan
    rank = q * observations
    # Index of the first bucket whose cumulative count reaches the rank (the +Inf
    # bucket is excluded from the search, as in sort.Search(len(buckets)-1, ...)).
    b = next((i for i in range(len(ordered) - 1) if ordered[i][1] >= rank), len(ordered) - 1)
    if b == len(ordered) - 1:
        return ordered[-2][0]
    if b == 0 and ordered[0][0] <= 0:
        return ordered[0][0]
    start = 0.0
    end, count = ordered[b]
    if b > 0:
        start = ordered[b - 1][0]
        count -= ordered[b - 1][1]
        rank -= ordered[b - 1][1]
    return start + (end - start) * (rank / count)


def sum_buckets(buckets: Iterable[Bucket]) -> list[Bucket]:
    """``sum by (le)``: the (le, count) buckets of several series added per bound, sorted."""
    totals: dict[float, float] = {}
    for le, count in buckets:
        totals[le] = totals.get(le, 0.0) + count
    return sorted(totals.items())


__all__ = ["Bucket", "bucket_quantile", "parse_le", "sum_buckets"]
