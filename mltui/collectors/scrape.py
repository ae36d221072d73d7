"""The ``scrape`` source: traffic numbers straight from model servers' ``/metrics``.

For setups without a Prometheus server — a port-forwarded pod, a model server on a
laptop, the demo without a ``prometheus`` binary — mltui can read the servers'
Prometheus exposition itself (``[scrape] urls = [...]``). One scrape is a set of
counter values; rates need two. The source therefore keeps the scrapes of the last
``rate_window`` per URL (for the whole process, so a new source — e.g. ``--check``
after the demo's warm-up — reuses them) and compares the newest with the oldest.
When there is no earlier scrape yet it takes a second one after a short pause.

From the two scrapes it computes what the Prometheus collector asks PromQL for, with
the same preset (metric names, selector, track label):

* ``rps``: Δrequests / Δt (successes + failures for presets whose request counter
  counts successes only, :mod:`mltui.collectors.traffic_math`);
* ``error_rate``: Δerrors / Δ(all requests);
* latency quantiles: ``histogram_quantile`` over the bucket deltas, exactly as
  Prometheus does (:mod:`mltui.collectors.histogram`); counter-only servers give
  the mean Δsum / Δcount.

Counter resets (a restarted server) and series that appeared between the two
scrapes count from zero, as Prometheus' ``rate`` treats resets.

The URLs are scraped concurrently, each bounded by the source's timeout, so a poll
takes as long as the slowest server (at most the timeout), not the sum of them.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from mltui.collectors.base import Source, SourceError
from mltui.collectors.histogram import Bucket, bucket_quantile, parse_le, sum_buckets
from mltui.collectors.traffic_math import request_rates
from mltui.config import Config, ModelConfig, ScrapeConfig
from mltui.fleet import LatencyMs, Point, Traffic, TrafficStats, finite
from mltui.presets import Preset
from mltui.secrets import error_text, redact

SeriesKey = tuple[str, str, frozenset[tuple[str, str]]]
"""(url, sample name, labels) — one time series of one server."""

# Unit of the preset's latency metrics -> factor to milliseconds.
_TO_MS = {"s": 1000.0, "ms": 1.0, "us": 0.001}

# Pause before the second scrape when there is no earlier one to compare with.
FIRST_GAP_S = 1.0

# Most points kept per model for the fleet table's p95 sparkline.
_SPARK_POINTS = 120


# ------------------------------------------------------------------ selectors

_SELECTOR = re.compile(r"^\s*([A-Za-z_:][A-Za-z0-9_:]*)?\s*(?:\{(.*)\})?\s*$", re.S)
_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?')


@dataclass(frozen=True)
class Matcher:
    """One label matcher of a PromQL selector: ``label op "value"``."""

    label: str
    op: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.label, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        # PromQL regex matchers are fully anchored.
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op == "=~" else not found


@dataclass(frozen=True)
class Selector:
    """A metric name with label matchers, e.g. ``x_total{code=~"5.."}``."""

    name: str
    matchers: tuple[Matcher, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)


def parse_selector(text: str) -> Selector:
    """Parse a preset's counter (a metric name or a simple PromQL selector)."""
    match = _SELECTOR.match(text)
    if not match or not match.group(1):
        raise SourceError(f"cannot read metric selector {text!r}")
    matchers: list[Matcher] = []
    body = match.group(2) or ""
    pos = 0
    while pos < len(body.strip()):
        m = _MATCHER.match(body, pos)
        if not m:
            raise SourceError(f"cannot read label matchers in {text!r}")
        value = m.group(3).encode().decode("unicode_escape")
        matchers.append(Matcher(m.group(1), m.group(2), value))
        pos = m.end()
    return Selector(match.group(1), tuple(matchers))


# ------------------------------------------------------------------ scrapes


@dataclass(frozen=True)
class Scrape:
    """All samples of one server at one moment."""

    url: str
    at: float
    """time.monotonic() when the response arrived."""
    samples: Mapping[tuple[str, frozenset[tuple[str, str]]], float]
    names: frozenset[str]


def metrics_url(url: str) -> str:
    """``url`` itself when it names a path, else ``url`` + ``/metrics``."""
    parts = urlsplit(url)
    if parts.path in ("", "/"):
        parts = parts._replace(path="/metrics")
    return urlunsplit(parts)


_COUNTER_TYPE = re.compile(r"^[ \t]*#[ \t]*TYPE[ \t]+(\S+)[ \t]+counter[ \t]*$", re.M)


def parse_exposition(text: str, url: str, at: float) -> Scrape:
    """Prometheus text exposition -> :class:`Scrape` (sample name + labels -> value).

    Sample names are kept as the server wrote them, as Prometheus stores them.
    prometheus_client's parser renames the samples of a counter declared without
    ``_total`` (Triton's ``nv_inference_request_success``) to ``<name>_total``; that
    is undone here, or the preset's counter name would never match.
    """
    from prometheus_client.parser import text_string_to_metric_families

    bare_counters = {n for n in _COUNTER_TYPE.findall(text) if not n.endswith("_total")}
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        renamed = family.type == "counter" and family.name in bare_counters
        for sample in family.samples:
            name = sample.name
            if renamed and name == family.name + "_total":
                name = family.name
            samples[(name, frozenset(sample.labels.items()))] = float(sample.value)
    return Scrape(url=url, at=at, samples=samples, names=frozenset(n for n, _ in samples))


class _History:
    """Recent scrapes per URL, shared by every ScrapeSource of the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_url: dict[str, deque[Scrape]] = {}

    def add(self, scrape: Scrape, keep_s: float) -> None:
        with self._lock:
            queue = self._by_url.setdefault(scrape.url, deque())
            queue.append(scrape)
            # Keep one scrape older than the window so a full window is always covered.
            while len(queue) > 2 and scrape.at - queue[1].at >= keep_s:
                queue.popleft()

    def baseline(self, url: str, newest: Scrape, window_s: float) -> Scrape | None:
        """The oldest scrape of ``url`` within ``window_s`` before ``newest`` (not itself)."""
        with self._lock:
            queue = list(self._by_url.get(url, ()))
        candidates = [s for s in queue if s is not newest and s.at < newest.at]
        inside = [s for s in candidates if newest.at - s.at <= window_s]
        if inside:
            return inside[0]
        return candidates[-1] if candidates else None

    def clear(self) -> None:
        with self._lock:
            self._by_url.clear()


HISTORY = _History()


# ------------------------------------------------------------------ rates


@dataclass(frozen=True)
class _Rates:
    """Per-series per-second rates between two scrapes, for all servers."""

    rates: Mapping[SeriesKey, float]
    names: frozenset[str]
    """Every sample name any server exported (tells "no errors" from "no error counter")."""


def _series_rates(newest: Scrape, base: Scrape) -> dict[SeriesKey, float]:
    dt = newest.at - base.at
    out: dict[SeriesKey, float] = {}
    if dt <= 0:
        return out
    for (name, labels), value in newest.samples.items():
        old = base.samples.get((name, labels))
        # A series absent before, or a counter that went down (a restart), counts from 0.
        delta = value if old is None or value < old else value - old
        out[(newest.url, name, labels)] = delta / dt
    return out


def _sum(
    rates: _Rates, selector: Selector, extra: Selector | None, name: str | None = None
) -> float | None:
    """Sum of the rates of ``selector``'s series that also match ``extra``; None if none exist."""
    wanted = name or selector.name
    total, found = 0.0, False
    for (_, sample, labels), rate in rates.rates.items():
        if sample != wanted:
            continue
        as_dict = dict(labels)
        if selector.matches(as_dict) and (extra is None or extra.matches(as_dict)):
            total += rate
            found = True
    return total if found else None


def _bucket_rates(rates: _Rates, base_name: str, extra: Selector) -> Iterator[Bucket]:
    """(le, rate) of every ``<base>_bucket`` series matching ``extra`` (bad ``le`` skipped)."""
    for (_, sample, labels), rate in rates.rates.items():
        if sample != base_name + "_bucket":
            continue
        as_dict = dict(labels)
        if "le" not in as_dict or not extra.matches(as_dict):
            continue
        try:
            yield parse_le(as_dict["le"]), rate
        except ValueError:
            continue


def traffic_stats(rates: _Rates, preset: Preset, extra: Selector) -> TrafficStats:
    """One model's (or one track's) serving signals from per-second rates."""
    factor = _TO_MS[preset.latency_unit]
    requests = _sum(rates, parse_selector(preset.requests), extra) if preset.requests else None
    if requests is None and preset.latency_histogram:
        requests = _sum(rates, Selector(preset.latency_histogram + "_count"), extra)
    errors: float | None = None
    if preset.errors:
        errors_sel = parse_selector(preset.errors)
        errors = _sum(rates, errors_sel, extra)
        if errors is None and errors_sel.name in rates.names:
            errors = 0.0  # the server has the counter, just no failed request of this model yet
    counted = request_rates(
        requests, errors, requests_exclude_errors=preset.requests_exclude_errors
    )
    rps, error_rate = counted.rps, counted.error_rate

    latency = LatencyMs()
    if preset.latency_histogram and rps:
        # sum by (le) (rate(<base>_bucket{extra})), then histogram_quantile.
        buckets = sum_buckets(_bucket_rates(rates, preset.latency_histogram, extra))
        q = {p: finite(bucket_quantile(p, buckets) * factor) for p in (0.5, 0.95, 0.99)}
        latency = LatencyMs(p50=q[0.5], p95=q[0.95], p99=q[0.99])
    elif preset.latency_sum and preset.latency_count:
        total = _sum(rates, parse_selector(preset.latency_sum), extra)
        count = _sum(rates, parse_selector(preset.latency_count), extra)
        if total is not None and count:
            latency = LatencyMs(mean=finite(total / count * factor))

    note = "no traffic" if rps == 0 else None
    if latency.mean is not None:
        note = "mean latency only (counter-only server)"
    return TrafficStats(latency_ms=latency, rps=rps, error_rate=error_rate, note=note)


def _model_selector(model: ModelConfig, preset: Preset) -> Selector:
    wanted = model.selector or {preset.model_label: model.registry_name}
    return Selector("", tuple(Matcher(k, "=", v) for k, v in wanted.items()))


def _has_series(rates: _Rates, extra: Selector, names: Iterable[str]) -> bool:
    wanted = set(names)
    return any(s in wanted and extra.matches(dict(lab)) for (_, s, lab) in rates.rates)


def _preset_names(preset: Preset) -> list[str]:
    names: list[str] = []
    if preset.latency_histogram:
        names += [preset.latency_histogram + "_count", preset.latency_histogram + "_bucket"]
    # The error counter too: a model whose every request failed has only that series.
    for counter in (preset.requests, preset.latency_count, preset.errors):
        if counter:
            names.append(parse_selector(counter).name)
    return names


# ------------------------------------------------------------------ the source


class ScrapeSource(Source[Traffic]):
    """Traffic from the servers' own /metrics (reported as "prometheus")."""

    name: ClassVar[str] = "scrape"

    def __init__(self, config: Config, history: _History | None = None) -> None:
        super().__init__(config)
        self.scrape_config: ScrapeConfig = config.scrape or ScrapeConfig(urls=[])
        self.history = history or HISTORY
        self._spark: dict[str, deque[Point]] = {}
        self._client: Any = None

    @property
    def timeout(self) -> float:
        return self.scrape_config.timeout

    @property
    def deadline(self) -> float:
        # Up to two rounds of scrapes (the first poll needs a second one) plus the pause
        # between. A round scrapes every URL at once and waits at most ``timeout``, so
        # this holds for any number of URLs.
        return 2 * self.timeout + FIRST_GAP_S + 1.0

    def _http(self) -> Any:
        if self._client is None:
            import httpx

            self._client = httpx.Client(timeout=self.timeout, follow_redirects=True)
        return self._client

    def scrape(self, url: str) -> Scrape:
        """GET one server's exposition; SourceError (scrubbed) when it fails."""
        target = metrics_url(url)
        self.count_request()
        try:
            response = self._http().get(target)
            response.raise_for_status()
        except Exception as exc:
            raise SourceError(f"{redact(target)}: {error_text(exc)}") from None
        at = time.monotonic()
        try:
            scrape = parse_exposition(response.text, url, at)
        except Exception as exc:
            raise SourceError(
                f"{redact(target)}: not a Prometheus exposition ({error_text(exc)})"
            ) from None
        self.history.add(scrape, keep_s=self.scrape_config.rate_window)
        return scrape

    def _scrape_all(self) -> tuple[list[Scrape], list[str]]:
        """Scrape every URL concurrently; (scrapes in URL order, failure messages).

        httpx's timeout bounds each phase of a request (connect, each read), not the
        whole of it, so a server dribbling bytes could hold a scrape longer: the round
        stops waiting after ``timeout`` and reports such a URL as timed out. Its thread
        ends on its own when httpx gives up (the pool is not waited for).
        """
        urls = list(self.scrape_config.urls)
        pool = ThreadPoolExecutor(max_workers=min(len(urls), 16), thread_name_prefix="scrape")
        try:
            futures: list[Future[Scrape]] = [pool.submit(self.scrape, url) for url in urls]
            wait_futures(futures, timeout=self.timeout)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        scrapes: list[Scrape] = []
        failures: list[str] = []
        for url, future in zip(urls, futures, strict=True):
            if not future.done():
                failures.append(f"{redact(metrics_url(url))}: timed out after {self.timeout:g}s")
                continue
            exc = future.exception()
            if exc is None:
                scrapes.append(future.result())
            elif isinstance(exc, SourceError):
                failures.append(str(exc))
            else:  # scrape() turns every failure into a SourceError; belt and braces
                failures.append(f"{redact(metrics_url(url))}: {error_text(exc)}")
        return scrapes, failures

    def rates(self) -> tuple[_Rates, list[str]]:
        """Scrape every URL (twice when there is no earlier scrape) and compute rates."""
        if not self.scrape_config.urls:
            raise SourceError("[scrape] lists no urls")
        window = self.scrape_config.rate_window
        scrapes, failures = self._scrape_all()
        if not scrapes:
            raise SourceError("; ".join(failures))
        if any(self.history.baseline(s.url, s, window) is None for s in scrapes):
            time.sleep(FIRST_GAP_S)
            scrapes, failures = self._scrape_all()
            if not scrapes:
                raise SourceError("; ".join(failures))
        rates: dict[SeriesKey, float] = {}
        names: set[str] = set()
        for scrape in scrapes:
            names |= scrape.names
            base = self.history.baseline(scrape.url, scrape, window)
            if base is not None:
                rates.update(_series_rates(scrape, base))
        return _Rates(rates=rates, names=frozenset(names)), failures

    def fetch(self, models: Sequence[ModelConfig]) -> tuple[dict[str, Traffic], dict[str, str]]:
        rates, failures = self.rates()
        values: dict[str, Traffic] = {}
        errors: dict[str, str] = {}
        now = time.time()
        for model in models:
            try:
                preset = self.config.preset(model.metrics)
                selector = _model_selector(model, preset)
                if not _has_series(rates, selector, _preset_names(preset)):
                    wanted = ", ".join(f'{m.label}="{m.value}"' for m in selector.matchers)
                    why = f"no {model.metrics} series with {{{wanted}}} at the scraped urls"
                    errors[model.name] = "; ".join([why, *failures])
                    continue
                overall = traffic_stats(rates, preset, selector)
                tracks = self._tracks(rates, preset, selector)
                spark = self._spark.setdefault(model.name, deque(maxlen=_SPARK_POINTS))
                if overall.latency_ms.p95 is not None:
                    spark.append((now, overall.latency_ms.p95))
                values[model.name] = Traffic(
                    overall=overall, tracks=tracks, p95_series=tuple(spark)
                )
            except SourceError as exc:
                errors[model.name] = str(exc)
        return values, errors

    def _tracks(self, rates: _Rates, preset: Preset, selector: Selector) -> dict[str, TrafficStats]:
        """Per track ("stable", "canary") when the preset names a track label the series carry."""
        label = preset.track_label
        if not label:
            return {}
        seen = {
            dict(lab).get(label)
            for (_, _, lab) in rates.rates
            if label in dict(lab) and selector.matches(dict(lab))
        }
        if not seen:
            return {}
        out: dict[str, TrafficStats] = {}
        canary = Matcher(label, "=", preset.canary_value)
        if preset.canary_value in seen:
            out["canary"] = traffic_stats(rates, preset, Selector("", (*selector.matchers, canary)))
        if seen - {preset.canary_value}:
            stable = Matcher(label, "!=", preset.canary_value)
            out["stable"] = traffic_stats(rates, preset, Selector("", (*selector.matchers, stable)))
        return out

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


__all__ = [
    "HISTORY",
    "Matcher",
    "Scrape",
    "ScrapeSource",
    "Selector",
    "metrics_url",
    "parse_selector",
]
