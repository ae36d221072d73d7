"""The Prometheus source: latency, request rate and error rate of every model.

Why httpx and not prometheus-api-client: one ``httpx.Client`` keeps its
connections alive across polls and threads, takes a per-call timeout, custom
headers (bearer tokens) and ``verify`` for TLS, and lets us send queries as a POST
*form body* — a fleet-wide query selects hundreds of models with a regex and
would not fit a URL (prometheus-api-client puts the query in the URL even with
``method="POST"``, and its range defaults are frozen at import time). Queries run
concurrently on a small thread pool, and the whole poll is bounded by the
configured timeout.

Query plan (see :mod:`mltui.collectors.promql`): per group of models that share a
preset and selector keys, one instant query per signal (latency bucket rates or
mean, requests, errors); the number of queries does not depend on the number of
models. p50/p95/p99 are computed here from the bucket rates
(:func:`~mltui.collectors.histogram.bucket_quantile`, as Prometheus does), overall
and per track. The p95 sparkline's range query is cached and refreshed once per
sparkline step in the background (:mod:`mltui.collectors.prom_sparkline`): a poll
does not wait for it.

Decisions:
* Tracks: a model gets ``tracks = {"stable", "canary"}`` when its preset has a
  ``track_label`` and the data holds canary series for it — whatever the config
  says about the target, because KServe and Argo canaries have no name in the
  config and the series tell the truth. "stable" is every non-canary series.
* No traffic: latency and error rate are None with the note "no traffic"; rps is
  the measured 0.0 when the counters exist, None when the model has no series.
* An error counter without a series for a model that has traffic means no failure
  was counted yet: error rate 0.0. A preset without an error counter: None.
* Counter-only presets give ``LatencyMs.mean`` and say so in the note.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any

import httpx

from mltui import secrets
from mltui.collectors import promql
from mltui.collectors.base import Source, SourceError
from mltui.collectors.histogram import bucket_quantile, parse_le
from mltui.collectors.http import make_client
from mltui.collectors.prom_sparkline import FIRST_WAIT, Lines, Sparklines, with_live_point
from mltui.config import Config, ModelConfig
from mltui.fleet import LatencyMs, Point, Traffic, TrafficSeries, TrafficStats, finite
from mltui.presets import Preset
from mltui.secrets import error_text

SPARK_POINTS = 30
"""Points in the fleet table's p95 sparkline (coarse on purpose: it is a few cells wide)."""

SPARK_TIMEOUT = 30.0
"""Seconds the background sparkline range query may take (or the source timeout if longer).
It runs off the poll's critical path, so it may be slower than a poll may."""

OVERALL = ""
"""Row key for the overall (all tracks) value of a model."""

Rows = dict[tuple[tuple[str, ...], str], Any]
"""(selector values, track or OVERALL) -> value (float for instant, points for range)."""


class QueryError(SourceError):
    """A query Prometheus refused or could not answer, phrased for the user."""


@dataclass(frozen=True)
class _Query:
    promql: str
    range_: tuple[float, float, float] | None = None
    """(start, end, step) for a range query; None for an instant query."""
    at: float | None = None
    """Evaluation time of an instant query (one instant for the whole poll)."""


class PrometheusSource(Source[Traffic]):
    """Reads every configured model's traffic from a Prometheus server."""

    name = "prometheus"

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        if config.prometheus is None:
            raise SourceError("no [prometheus] section in the config")
        self.settings = config.prometheus
        self._client = make_client(
            self.settings.url,
            self.settings.headers,
            verify_tls=self.settings.verify_tls,
            timeout=self.settings.timeout,
        )
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="mltui-promql")
        self._closed = threading.Event()
        self.sparklines = Sparklines(config.window, SPARK_POINTS)
        """Cached p95 history per query group (see :mod:`mltui.collectors.prom_sparkline`)."""

    @property
    def timeout(self) -> float:
        return self.settings.timeout

    # ------------------------------------------------------------------ HTTP

    def _run(
        self, query: _Query, deadline: float, limit: float | None = None, count: bool = True
    ) -> list[dict[str, Any]]:
        """POST one query (form body) and return its ``data.result``; errors raise QueryError.

        ``limit``: seconds this query may take (default: the source timeout).
        ``count``: count the request here (False when the caller counted it already).
        """
        limit = self.timeout if limit is None else limit
        remaining = max(0.05, min(limit, deadline - time.monotonic()))
        data: dict[str, str] = {"query": query.promql}
        path = "/api/v1/query"
        if query.range_ is not None:
            start, end, step = query.range_
            data.update(start=f"{start:.3f}", end=f"{end:.3f}", step=f"{step:g}")
            path = "/api/v1/query_range"
        elif query.at is not None:
            data["time"] = f"{query.at:.3f}"
        if count:
            self.count_request()
        try:
            response = self._client.post(path, data=data, timeout=remaining)
        except httpx.TimeoutException:
            raise QueryError(
                f"Prometheus at {self.settings.url} did not answer within {limit:g}s"
            ) from None
        except httpx.ConnectError as exc:
            raise QueryError(
                f"cannot connect to Prometheus at {self.settings.url}: {error_text(exc)}"
            ) from None
        except httpx.HTTPError as exc:
            raise QueryError(f"Prometheus at {self.settings.url}: {error_text(exc)}") from None
        return self._result(response, query)

    def _result(self, response: httpx.Response, query: _Query) -> list[dict[str, Any]]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code in (400, 422) and isinstance(body, dict) and body.get("error"):
            raise QueryError(
                f"Prometheus rejected the query ({body.get('errorType', 'error')}: "
                f"{secrets.redact(body['error'])}); query: {query.promql}"
            )
        if response.status_code in (401, 403):
            raise QueryError(
                f"Prometheus at {self.settings.url} answered HTTP {response.status_code} "
                f"{response.reason_phrase}: check [prometheus].headers"
            )
        if response.status_code >= 300:
            snippet = secrets.redact(response.text[:200].strip().replace("\n", " "))
            raise QueryError(
                f"Prometheus at {self.settings.url} answered HTTP {response.status_code} "
                f"{response.reason_phrase}: {snippet}"
            )
        if not isinstance(body, dict):
            raise QueryError(f"malformed response from Prometheus at {self.settings.url}: not JSON")
        data = body.get("data")
        if body.get("status") != "success" or not isinstance(data, dict):
            raise QueryError(
                f"Prometheus query failed: {secrets.redact(body.get('error', body))}; "
                f"query: {query.promql}"
            )
        result = data.get("result")
        if not isinstance(result, list):
            raise QueryError(f"malformed response from Prometheus at {self.settings.url}")
        return result

    def _run_all(self, queries: Mapping[Any, _Query]) -> dict[Any, list[dict[str, Any]] | str]:
        """Run queries concurrently; each key -> its result or its error text.

        The whole batch is bounded by the configured timeout: a query still running
        then is reported as timed out (its thread ends at its own httpx timeout).
        """
        deadline = time.monotonic() + self.timeout
        futures: dict[Any, Future[list[dict[str, Any]]]] = {
            key: self._pool.submit(self._run, query, deadline) for key, query in queries.items()
        }
        wait(futures.values(), timeout=max(0.0, deadline + 0.25 - time.monotonic()))
        out: dict[Any, list[dict[str, Any]] | str] = {}
        for key, future in futures.items():
            if not future.done():
                future.cancel()
                out[key] = (
                    f"Prometheus at {self.settings.url} did not answer within {self.timeout:g}s"
                )
                continue
            exc = future.exception()
            if exc is None:
                out[key] = future.result()
            elif isinstance(exc, SourceError):
                out[key] = str(exc)
            else:
                out[key] = error_text(exc)
        return out

    # ------------------------------------------------------------------ poll

    def fetch(self, models: Sequence[ModelConfig]) -> tuple[dict[str, Traffic], dict[str, str]]:
        started = time.monotonic()
        now = time.time()
        groups = promql.group_models(self.config, models)
        window = self.settings.rate_window
        queries: dict[tuple[int, str], _Query] = {}
        sparks: dict[int, str] = {}
        for i, group in enumerate(groups):
            for signal, text in promql.instant_queries(group, window).items():
                queries[(i, signal)] = _Query(text, at=now)
            spark = promql.p95_series_query(group, window)
            if spark is not None:
                sparks[i] = spark
        self.sparklines.keep_only(sparks.values())
        results = self._run_all(queries)
        # Sparkline range fetches start only after the instant queries, so they never
        # compete with a poll for the server (and not for a group the server just
        # failed to answer); only a group's first history is waited for, briefly, so a
        # small fleet has its sparkline on the first frame.
        failed = {g for (g, _), res in results.items() if isinstance(res, str)}
        for i, text in sparks.items():
            if i not in failed:
                self._refresh_sparkline(groups[i], text, now)
        grace = min(FIRST_WAIT, started + self.timeout - time.monotonic())
        self.sparklines.wait_first(sparks.values(), grace)

        values: dict[str, Traffic] = {}
        errors: dict[str, str] = {}
        for i, group in enumerate(groups):
            mine = {sig: res for (g, sig), res in results.items() if g == i}
            problem = next((r for r in mine.values() if isinstance(r, str)), None)
            if problem is not None:
                for name in group.models:
                    errors[name] = problem
                continue
            rows = {
                sig: _rows(res, group, sig) for sig, res in mine.items() if not isinstance(res, str)
            }
            if i in sparks:
                lines = self.sparklines.lines(sparks[i], now)
                rows["p95_series"] = {(key, OVERALL): line for key, line in lines.items()}
            for values_key, names in group.members.items():
                traffic = _traffic(group.preset, values_key, rows)
                if i in sparks:
                    live = with_live_point(traffic.p95_series, now, traffic.overall.latency_ms.p95)
                    traffic = replace(traffic, p95_series=live)
                for name in names:
                    values[name] = traffic
        if errors and not values:
            # Nothing could be read at all (server down, every query refused): the
            # source itself is in error, with the first reason.
            raise SourceError(next(iter(errors.values())))
        return values, errors

    def _refresh_sparkline(self, group: promql.Group, query: str, now: float) -> None:
        """Start the group's sparkline range fetch in the background when it is due."""
        step = self.sparklines.step_s
        spec = _Query(query, (now - self.config.window, now, step))
        limit = max(self.timeout, SPARK_TIMEOUT)

        def fetch_lines() -> Lines:
            result = self._run(spec, time.monotonic() + limit, limit=limit, count=False)
            rows = _rows(result, group, "p95_series")
            return {key: line for (key, track), line in rows.items() if track == OVERALL}

        def start() -> Future[Lines]:
            # Counted when sent, so the poll that started it reports it.
            self.count_request()
            return self._pool.submit(fetch_lines)

        if not self._closed.is_set():
            self.sparklines.refresh(query, now, start)

    def wait_sparklines(self, timeout: float) -> bool:
        """Wait for background sparkline fetches in flight; True when none is left."""
        return self.sparklines.wait_all(timeout)

    def series(self, model: ModelConfig, window_s: float, points: int = 120) -> TrafficSeries:
        """On-demand chart data for one model over the last ``window_s`` seconds.

        Keys: "p50", "p95", "p99" (ms; "mean" for counter-only presets), "rps",
        "error_rate"; per track as "canary:p95", "stable:rps"... Errors are a value
        (``TrafficSeries.error``). The step keeps every series under 11,000 points;
        each rate() covers at least one step so no request falls between points.
        """
        step = promql.range_step(window_s, points)
        try:
            preset = self.config.preset(model.metrics)
        except KeyError:
            return TrafficSeries(window_s, step, error=f'unknown preset "{model.metrics}"')
        selector = promql.selector_of(model, preset)
        rate_window = max(self.settings.rate_window, step)
        end = time.time()
        queries = {
            key: _Query(text, (end - window_s, end, step))
            for key, text in promql.series_queries(preset, selector, rate_window).items()
        }
        results = self._run_all(queries)
        series: dict[str, tuple[Point, ...]] = {}
        problems: list[str] = []
        factor = promql.TO_MS[preset.latency_unit]
        for key, result in results.items():
            if isinstance(result, str):
                problems.append(result)
                continue
            scale = factor if key in (*promql.QUANTILES, "mean") else 1.0
            for row in result:
                track = _track_of(row.get("metric", {}), preset)
                name = f"{track}:{key}" if track != OVERALL else key
                series[name] = _points(row.get("values", []), scale)
        return TrafficSeries(
            window_s=window_s, step_s=step, series=series, error=problems[0] if problems else None
        )

    def close(self) -> None:
        if not self._closed.is_set():
            self._closed.set()
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._client.close()


# ------------------------------------------------------------------ assembling


def _track_of(labels: Mapping[str, str], preset: Preset) -> str:
    """OVERALL, "canary" or "stable" for a result row (see promql's ``or`` parts)."""
    label = preset.track_label
    if not label or label not in labels:
        return OVERALL
    return "canary" if labels[label] == preset.canary_value else "stable"


def _value(raw: Any) -> float | None:
    try:
        return finite(float(raw[1]))
    except (TypeError, ValueError, IndexError):
        return None


def _points(values: Sequence[Any], scale: float) -> tuple[Point, ...]:
    out: list[Point] = []
    for t, v in values:
        f = finite(v)
        # Scaling a huge sample (1e308 s -> ms) overflows to inf: no value, like NaN.
        scaled = finite(f * scale) if f is not None else None
        if scaled is not None:
            out.append((float(t), scaled))
    return tuple(out)


def _bucket_rows(result: list[dict[str, Any]], group: promql.Group) -> Rows:
    """Bucket rates (``promql.bucket_rates_query``) -> (key, track) -> cumulative buckets.

    Rows come per model, track label value and ``le``; they are summed here into
    OVERALL (every series), "canary" (track = the canary value) and "stable" (every
    other series, with or without a track label) — the same three parts the
    server-side ``or`` queries used. A row without a usable ``le`` or value is skipped.
    """
    sums: dict[tuple[tuple[str, ...], str], dict[float, float]] = {}
    label = group.preset.track_label
    for row in result:
        labels = row.get("metric") or {}
        try:
            le = parse_le(labels["le"])
        except (KeyError, TypeError, ValueError):
            continue
        rate = _value(row.get("value"))
        if rate is None:
            continue
        key = tuple(labels.get(k, "") for k in group.keys)
        parts = [OVERALL]
        if label:
            parts.append("canary" if labels.get(label) == group.preset.canary_value else "stable")
        for track in parts:
            buckets = sums.setdefault((key, track), {})
            buckets[le] = buckets.get(le, 0.0) + rate
    return {where: sorted(buckets.items()) for where, buckets in sums.items()}


def _rows(result: list[dict[str, Any]], group: promql.Group, signal: str) -> Rows:
    if signal == "buckets":
        return _bucket_rows(result, group)
    rows: Rows = {}
    for row in result:
        labels = row.get("metric") or {}
        key = tuple(labels.get(k, "") for k in group.keys)
        track = _track_of(labels, group.preset)
        if signal == "p95_series":
            rows[(key, track)] = _points(
                row.get("values", []), promql.TO_MS[group.preset.latency_unit]
            )
        else:
            rows[(key, track)] = _value(row.get("value"))
    return rows


def _stats(
    preset: Preset, key: tuple[str, ...], track: str, rows: Mapping[str, Rows]
) -> TrafficStats:
    def get(signal: str) -> float | None:
        value = rows.get(signal, {}).get((key, track))
        return value if isinstance(value, float) else None

    def quantile(name: str) -> float | None:
        """p50/p95/p99 from the bucket rates (NaN — no traffic — is None)."""
        buckets = rows.get("buckets", {}).get((key, track))
        return finite(bucket_quantile(promql.QUANTILES[name], buckets)) if buckets else None

    has_series = any((key, track) in r for s, r in rows.items() if s != "p95_series")
    requests = get("requests")
    errors = get("errors")
    if preset.errors and requests is not None and errors is None:
        errors = 0.0  # no error series yet: nothing failed
    if preset.requests_exclude_errors and requests is None and errors is not None:
        requests = 0.0  # every request failed: no success series yet
    rps = requests
    if requests is not None and preset.requests_exclude_errors and errors is not None:
        rps = finite(requests + errors)  # all requests = successes + failures (never inf)
    notes: list[str] = []
    if not has_series or not rps:
        return TrafficStats(rps=rps if has_series else None, note="no traffic")
    factor = promql.TO_MS[preset.latency_unit]
    if preset.latency_histogram:
        latency = LatencyMs(
            **{
                n: (finite(v * factor) if (v := quantile(n)) is not None else None)
                for n in promql.QUANTILES
            }
        )
    else:
        mean = get("mean")
        latency = LatencyMs(mean=finite(mean * factor) if mean is not None else None)
        notes.append("mean latency only (counter-only server)")
    error_rate = finite(errors / rps) if preset.errors and errors is not None else None
    if not preset.errors:
        notes.append("no error counter")
    return TrafficStats(
        latency_ms=latency, rps=rps, error_rate=error_rate, note="; ".join(notes) or None
    )


def _traffic(preset: Preset, key: tuple[str, ...], rows: Mapping[str, Rows]) -> Traffic:
    overall = _stats(preset, key, OVERALL, rows)
    tracks: dict[str, TrafficStats] = {}
    has_canary = any((key, "canary") in r for r in rows.values())
    if preset.track_label and has_canary:
        tracks = {t: _stats(preset, key, t, rows) for t in ("stable", "canary")}
    spark = rows.get("p95_series", {}).get((key, OVERALL), ())
    return Traffic(overall=overall, tracks=tracks, p95_series=tuple(spark))
