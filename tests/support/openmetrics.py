"""Write OpenMetrics history for ``promtool tsdb create-blocks-from openmetrics``.

Every series is a counter that grows by the *same* increment at every sample, so
over any window fully covered by samples ``rate()`` is exactly
``increment / step``: no scrape jitter, no partial windows. The data is written to
run past "now" (promtool accepts future samples and Prometheus 2.42 serves them),
because a ``rate()`` window that ends after the last sample is only partly
extrapolated and comes out a few percent low (STYLE.md).

The expected values (rps, error rate, histogram quantiles, mean latency) are
computed here from the increments by formula, independently of Prometheus:
:func:`histogram_quantile` re-implements the interpolation Prometheus documents
for ``histogram_quantile`` so tests can compare the server's answer with it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

INF = math.inf

# prometheus_client's default buckets (seconds) — also what KServe's histograms use.
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip


def format_le(bound: float) -> str:
    """A bucket bound as the ``le`` label value exporters write ("0.25", "+Inf")."""
    return "+Inf" if bound == INF else repr(float(bound))


def _labels(labels: Mapping[str, str]) -> str:
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return ",".join(f'{k}="{esc(v)}"' for k, v in labels.items())


# --------------------------------------------------------------------- formulas


def histogram_quantile(q: float, bounds: Sequence[float], counts: Sequence[float]) -> float | None:
    """The q-quantile Prometheus' ``histogram_quantile`` gives for these bucket rates.

    ``bounds`` are the finite upper bounds (ascending); ``counts`` the per-bucket
    (non-cumulative) counts, one more than ``bounds`` (the last is the +Inf bucket).
    Linear interpolation inside the bucket holding rank ``q * total``; the first
    bucket starts at 0; a rank in the +Inf bucket gives the highest finite bound.
    None when there are no observations (Prometheus answers NaN).
    """
    assert len(counts) == len(bounds) + 1, "one count per bound plus the +Inf bucket"
    total = float(sum(counts))
    if total <= 0:
        return None
    rank = q * total
    cumulative = 0.0
    for i, count in enumerate(counts):
        if cumulative + count >= rank and count > 0:
            if i == len(bounds):  # the +Inf bucket
                return float(bounds[-1])
            start = 0.0 if i == 0 else float(bounds[i - 1])
            return start + (float(bounds[i]) - start) * ((rank - cumulative) / count)
        cumulative += count
    return float(bounds[-1])


def rank_is_safe(q: float, counts: Sequence[float]) -> bool:
    """False when rank q*total lands exactly on a bucket edge, where float rounding of
    the server's rates could tip the answer into the neighbouring bucket."""
    total = float(sum(counts))
    rank = q * total
    cumulative = 0.0
    for count in counts:
        cumulative += count
        if math.isclose(cumulative, rank, rel_tol=1e-9, abs_tol=1e-12):
            return False
    return True


# --------------------------------------------------------------------- writer


@dataclass
class _Family:
    type: str
    lines: list[str] = field(default_factory=list)


class OpenMetricsWriter:
    """Collects counter and histogram series and renders one OpenMetrics text.

    Samples are at ``start, start+step, ... <= end`` (unix seconds, integers). A
    series sampled at k steps after ``start`` has the value ``k * increment``
    (plus ``offset``), i.e. it grows linearly.
    """

    def __init__(self, start: int, end: int, step: int = 15) -> None:
        assert end > start and step > 0
        self.start, self.end, self.step = int(start), int(end), int(step)
        self._families: dict[str, _Family] = {}

    @property
    def times(self) -> range:
        return range(self.start, self.end + 1, self.step)

    def _family(self, name: str, kind: str) -> _Family:
        family = self._families.get(name)
        if family is None:
            family = self._families[name] = _Family(kind)
        return family

    def _series(
        self, family: _Family, sample: str, labels: Mapping[str, str], increment: float
    ) -> None:
        # Integers stay integers so cumulative values are exact; floats use repr
        # (shortest round-trip form), so Prometheus parses back the same double.
        lab = _labels(labels)
        head = f"{sample}{{{lab}}}" if lab else sample
        for k, t in enumerate(self.times):
            value = k * increment
            text = str(value) if isinstance(value, int) else repr(float(value))
            family.lines.append(f"{head} {text} {t}")

    def counter(self, name: str, labels: Mapping[str, str], per_step: float) -> None:
        """A counter named exactly ``name`` (with or without ``_total``) growing by
        ``per_step`` per sample. Declared "unknown" so any name is accepted;
        Prometheus 2.42 stores no type anyway and rate() does not care."""
        self._series(self._family(name, "unknown"), name, labels, per_step)

    def histogram(
        self,
        name: str,
        labels: Mapping[str, str],
        bounds: Sequence[float],
        counts_per_step: Sequence[int],
        sum_per_step: float,
    ) -> None:
        """A classic histogram ``name_bucket{le}``, ``name_count``, ``name_sum``.

        ``counts_per_step``: observations per step in each bucket (non-cumulative,
        len(bounds) + 1 with the +Inf bucket last).
        """
        assert len(counts_per_step) == len(bounds) + 1
        family = self._family(name, "histogram")
        cumulative = 0
        for bound, count in zip([*bounds, INF], counts_per_step, strict=True):
            cumulative += int(count)
            self._series(family, f"{name}_bucket", {**labels, "le": format_le(bound)}, cumulative)
        self._series(family, f"{name}_count", labels, cumulative)
        self._series(family, f"{name}_sum", labels, float(sum_per_step))

    def text(self) -> str:
        out: list[str] = []
        for name, family in self._families.items():
            out.append(f"# TYPE {name} {family.type}")
            out.extend(family.lines)
        out.append("# EOF")
        return "\n".join(out) + "\n"
