"""Request and error rates from a preset's counters: pure math, shared by the sources.

Presets differ in what their ``requests`` counter counts. Most count every request
(failures included); Triton and MLServer count successes only and failures apart
(``Preset.requests_exclude_errors``). :func:`request_rates` turns the two per-second
rates a source read into the numbers the fleet shows, the same way for every source:

* all requests = requests + errors when the counter counts successes only, so
  1 success/s + 3 failures/s is 4 rps at an error rate of 0.75 (not 1 rps at 3.0);
* a model whose every request failed has no success series yet: with errors
  present, the missing success counter is 0 (5 failures/s is 5 rps, not "no traffic");
* the error rate is errors / all requests, and None (unknown, never a made-up 0)
  when either is unknown or nothing was requested.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestRates:
    """What a model (or track) served, per second."""

    rps: float | None
    """All requests per second; None when no request counter was found."""
    error_rate: float | None
    """Failed / all requests, in [0, 1]; None when unknown or when rps is 0."""


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def request_rates(
    requests: float | None, errors: float | None, *, requests_exclude_errors: bool
) -> RequestRates:
    """Combine the ``requests`` and ``errors`` rates of one selector (see the module doc).

    ``requests``: the preset's request counter's rate (None: no such series).
    ``errors``: the error counter's rate; pass 0.0 when the counter exists but has no
    series for this selector yet (nothing failed), None when there is none at all.
    """
    if requests_exclude_errors and requests is None and errors is not None:
        requests = 0.0  # every request failed: no success series yet
    total = requests
    if requests_exclude_errors and requests is not None and errors is not None:
        total = requests + errors
    total = _finite(total)
    error_rate = None
    if errors is not None and total:
        # At most 1: with a counter of all requests, a scrape racing a failure could
        # otherwise read one more failure than requests (and --check's schema caps it).
        error_rate = _finite(min(1.0, errors / total))
    return RequestRates(rps=total, error_rate=error_rate)


__all__ = ["RequestRates", "request_rates"]
