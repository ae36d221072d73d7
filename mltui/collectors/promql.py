"""PromQL building for the Prometheus collector: pure functions, no I/O.

The fleet is cut into *groups*: models read with the same preset and the same
selector label keys. Each group costs one query per signal (latency buckets or mean
latency, requests, errors) whatever its size, because every query selects all the
group's models at once (``key=~"a|b|c"``) and aggregates ``sum by (<keys>)``.

Latency quantiles of the poll are *not* three ``histogram_quantile`` queries: one
query returns the bucket rates ``sum by (<keys>, <track>, le)`` and the collector
computes p50/p95/p99 (overall and per track) with
:func:`mltui.collectors.histogram.bucket_quantile`, which matches Prometheus. That
is one rate() pass over the buckets instead of nine (three quantiles ×
overall/canary/stable parts); see ``bucket_rates_query`` for the measurement.

Tracks ride in the same query: for presets with a ``track_label`` each signal is
``overall or canary or stable``, where the three parts differ by their labels:
no track label (overall), ``track="canary"``, and ``track="stable"`` (every
non-canary series, relabelled). One query per signal, however many tracks.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from mltui.config import Config, ModelConfig
from mltui.durations import format_duration
from mltui.presets import Preset

TO_MS = {"s": 1000.0, "ms": 1.0, "us": 0.001}
"""Factor from a preset's latency unit to milliseconds."""

MAX_POINTS = 11_000
"""Prometheus refuses range queries with more points per series than this."""

QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}

_SELECTOR = re.compile(r"^\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*(?:\{(.*)\})?\s*$", re.S)


@dataclass(frozen=True)
class Group:
    """Models sharing a preset and selector keys: queried together."""

    preset_name: str
    preset: Preset
    keys: tuple[str, ...]
    """Selector label keys, sorted."""
    members: Mapping[tuple[str, ...], tuple[str, ...]]
    """Selector values (in ``keys`` order) -> model names with that selector."""

    @property
    def models(self) -> list[str]:
        return [name for names in self.members.values() for name in names]


def selector_of(model: ModelConfig, preset: Preset) -> dict[str, str]:
    """The labels that pick ``model``'s series: its own selector or {model_label: name}."""
    return dict(model.selector) if model.selector else {preset.model_label: model.registry_name}


def group_models(config: Config, models: Sequence[ModelConfig]) -> list[Group]:
    """Cut the fleet into query groups (count independent of fleet size)."""
    groups: dict[tuple[str, tuple[str, ...]], dict[tuple[str, ...], list[str]]] = {}
    for model in models:
        preset = config.preset(model.metrics)
        selector = selector_of(model, preset)
        keys = tuple(sorted(selector))
        values = tuple(selector[k] for k in keys)
        groups.setdefault((model.metrics, keys), {}).setdefault(values, []).append(model.name)
    return [
        Group(
            preset_name=name,
            preset=config.preset(name),
            keys=keys,
            members={v: tuple(n) for v, n in members.items()},
        )
        for (name, keys), members in groups.items()
    ]


# ------------------------------------------------------------------ selectors


def quote(value: str) -> str:
    """A PromQL double-quoted string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def regex_alternation(values: Sequence[str]) -> str:
    """An RE2 pattern matching exactly these values (PromQL anchors regexes)."""
    return "|".join(re.escape(v) for v in sorted(set(values)))


def split_metric(metric: str) -> tuple[str, str]:
    """``name{matchers}`` -> (name, "matchers"); a bare name has no matchers."""
    match = _SELECTOR.match(metric)
    if not match:
        # Not ours to judge: send it as written and let Prometheus name the problem
        # (the user then sees the query and Prometheus' own parse error).
        return metric, ""
    return match.group(1), (match.group(2) or "").strip().rstrip(",")


def vector(metric: str, *matchers: str) -> str:
    """``metric`` (a name or selector) with extra matchers merged into its braces."""
    name, own = split_metric(metric)
    parts = [m for m in (own, *matchers) if m]
    return f"{name}{{{', '.join(parts)}}}" if parts else name


def group_matchers(group: Group) -> list[str]:
    """``key=~"v1|v2"`` per selector key: selects every model of the group at once."""
    out = []
    for i, key in enumerate(group.keys):
        values = [v[i] for v in group.members]
        if len(set(values)) == 1:
            out.append(f"{key}={quote(values[0])}")
        else:
            out.append(f"{key}=~{quote(regex_alternation(values))}")
    return out


def model_matchers(selector: Mapping[str, str]) -> list[str]:
    return [f"{k}={quote(v)}" for k, v in sorted(selector.items())]


# ------------------------------------------------------------------ signals


Maker = Callable[[list[str], list[str]], str]
"""Builds one aggregation from a ``by`` label list and extra matchers."""


def _split_by_track(preset: Preset, by: Sequence[str], make: Maker, split: bool) -> str:
    """``overall`` or, when the preset has a track label, ``overall or canary or stable``."""
    overall = make(list(by), [])
    label = preset.track_label
    if not split or not label:
        return overall
    canary = make([*by, label], [f"{label}={quote(preset.canary_value)}"])
    stable = make(list(by), [f"{label}!={quote(preset.canary_value)}"])
    stable = f'label_replace({stable}, "{label}", "stable", "", "")'
    return f"{overall} or {canary} or {stable}"


def _by(labels: Sequence[str]) -> str:
    return ", ".join(labels)


def rate_sum(metric: str, matchers: Sequence[str], by: Sequence[str], window: str) -> str:
    """``sum by (<by>) (rate(<metric>{<matchers>}[<window>]))``"""
    return f"sum by ({_by(by)}) (rate({vector(metric, *matchers)}[{window}]))"


def quantile_query(
    q: float,
    preset: Preset,
    matchers: Sequence[str],
    by: Sequence[str],
    window: str,
    split: bool = True,
) -> str:
    """histogram_quantile over the preset's histogram, per ``by`` (and per track)."""
    assert preset.latency_histogram
    bucket = preset.latency_histogram + "_bucket"

    def make(group_by: list[str], extra: list[str]) -> str:
        inner = rate_sum(bucket, [*matchers, *extra], [*group_by, "le"], window)
        return f"histogram_quantile({q:g}, {inner})"

    return _split_by_track(preset, by, make, split)


def counter_query(
    metric: str,
    preset: Preset,
    matchers: Sequence[str],
    by: Sequence[str],
    window: str,
    split: bool = True,
) -> str:
    """Per-second rate of a counter, summed per ``by`` (and per track)."""

    def make(group_by: list[str], extra: list[str]) -> str:
        return rate_sum(metric, [*matchers, *extra], group_by, window)

    return _split_by_track(preset, by, make, split)


def mean_query(
    preset: Preset, matchers: Sequence[str], by: Sequence[str], window: str, split: bool = True
) -> str:
    """Mean latency (preset unit) = rate(latency sum) / rate(latency count)."""
    assert preset.latency_sum and preset.latency_count
    total, count = preset.latency_sum, preset.latency_count

    def make(group_by: list[str], extra: list[str]) -> str:
        num = rate_sum(total, [*matchers, *extra], group_by, window)
        den = rate_sum(count, [*matchers, *extra], group_by, window)
        return f"({num} / {den})"

    return _split_by_track(preset, by, make, split)


def requests_metric(preset: Preset) -> str | None:
    """The preset's request counter (its histogram's _count when it names none)."""
    if preset.requests:
        return preset.requests
    if preset.latency_histogram:
        return preset.latency_histogram + "_count"
    return preset.latency_count


def bucket_rates_query(group: Group, window_s: float) -> str | None:
    """Per-bucket request rates of every model of the group, split by track label.

    ``sum by (<keys>, <track label>, le) (rate(<histogram>_bucket{...}[w]))``: one
    row per model, track value and bucket. The collector sums tracks into overall /
    canary / stable itself and takes the quantiles client-side, so one query (one
    rate() pass) replaces ``histogram_quantile`` × 3 quantiles × 3 track parts.
    Measured on the benchmark fleet at 1,000 models (16,500 result rows, 1.8 MB):
    0.19 s for this query against 1.43 s for the three quantile queries (idle
    server; ~7× less evaluation time under load too); the client-side sums and
    quantiles cost ~0.15 s of CPU. None for counter-only presets.
    """
    preset = group.preset
    if not preset.latency_histogram:
        return None
    by = list(group.keys)
    if preset.track_label and preset.track_label not in by:
        by.append(preset.track_label)
    if "le" not in by:
        by.append("le")
    bucket = preset.latency_histogram + "_bucket"
    return rate_sum(bucket, group_matchers(group), by, format_duration(window_s))


def instant_queries(group: Group, window_s: float) -> dict[str, str]:
    """Signal -> PromQL for one group's instant poll ("buckets" or "mean",
    "requests", "errors")."""
    preset = group.preset
    window = format_duration(window_s)
    matchers = group_matchers(group)
    by = list(group.keys)
    out: dict[str, str] = {}
    buckets = bucket_rates_query(group, window_s)
    if buckets is not None:
        out["buckets"] = buckets
    elif preset.latency_sum and preset.latency_count:
        out["mean"] = mean_query(preset, matchers, by, window)
    requests = requests_metric(preset)
    if requests:
        out["requests"] = counter_query(requests, preset, matchers, by, window)
    if preset.errors:
        out["errors"] = counter_query(preset.errors, preset, matchers, by, window)
    return out


def p95_series_query(group: Group, window_s: float) -> str | None:
    """Overall p95 per model of the group, for the fleet sparkline (histograms only)."""
    if not group.preset.latency_histogram:
        return None
    return quantile_query(
        0.95,
        group.preset,
        group_matchers(group),
        list(group.keys),
        format_duration(window_s),
        split=False,
    )


def series_queries(
    preset: Preset, selector: Mapping[str, str], rate_window_s: float
) -> dict[str, str]:
    """Signal -> PromQL for one model's charts; each per track as well (``or``).

    Keys: "p50", "p95", "p99" (histograms) or "mean" (counter-only), "rps",
    "error_rate" (when the preset has an error counter).
    """
    window = format_duration(rate_window_s)
    matchers = model_matchers(selector)
    out: dict[str, str] = {}
    if preset.latency_histogram:
        for name, q in QUANTILES.items():
            out[name] = quantile_query(q, preset, matchers, [], window)
    elif preset.latency_sum and preset.latency_count:
        out["mean"] = mean_query(preset, matchers, [], window)
    requests = requests_metric(preset)
    if requests is None:
        return out

    def total(by: list[str], extra: list[str]) -> str:
        req = rate_sum(requests, [*matchers, *extra], by, window)
        if not preset.errors:
            return req
        err = rate_sum(preset.errors, [*matchers, *extra], by, window)
        # A model with no failure yet has no error series: count it as 0 errors.
        err_or_zero = f"({err} or {req} * 0)"
        return f"({req} + {err_or_zero})" if preset.requests_exclude_errors else req

    out["rps"] = _split_by_track(preset, [], total, True)
    if preset.errors:
        errors = preset.errors

        def ratio(by: list[str], extra: list[str]) -> str:
            err = rate_sum(errors, [*matchers, *extra], by, window)
            req = rate_sum(requests, [*matchers, *extra], by, window)
            return f"(({err} or {req} * 0) / {total(by, extra)})"

        out["error_rate"] = _split_by_track(preset, [], ratio, True)
    return out


def range_step(window_s: float, points: int) -> float:
    """Step (s) giving about ``points`` points over ``window_s``, never over 11,000."""
    points = max(2, min(points, MAX_POINTS))
    step = window_s / (points - 1)
    # Round up to whole milliseconds so the server's point count cannot exceed ours.
    return max(0.001, math.ceil(step * 1000 - 1e-6) / 1000)
