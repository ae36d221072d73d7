"""The scrape source against a real /metrics endpoint (prometheus_client's server),
and its quantiles against a real Prometheus' histogram_quantile on the same buckets."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from mltui.collectors.collect import FleetCollector
from mltui.collectors.histogram import bucket_quantile, parse_le
from mltui.collectors.scrape import (
    Scrape,
    ScrapeSource,
    _History,
    _series_rates,
    parse_exposition,
    parse_selector,
)
from mltui.collectors.traffic_math import request_rates
from mltui.config import parse_config
from mltui.demo.processes import wait_for
from mltui.demo.prometheus import prometheus_binary, start_prometheus
from tests.harness.metrics_endpoint import MetricsEndpoint
from tests.support.http_stubs import CannedServer


def _config(url: str, *models: str) -> str:
    text = f'[scrape]\nurls = ["{url}"]\ntimeout = "2s"\n'
    for name in models:
        text += f'[[models]]\nname = "{name}"\nmetrics = "kserve"\n'
    return text


def _source(url: str, *models: str) -> ScrapeSource:
    return ScrapeSource(parse_config(_config(url, *models)), history=_History())


def test_rates_and_quantiles_come_from_the_deltas_between_two_scrapes(
    metrics_endpoint: MetricsEndpoint,
) -> None:
    """Observations before the first scrape are subtracted; only the window counts."""
    ep = metrics_endpoint
    ep.observe("a", 5.0, n=1000)  # before the baseline: must not show in any number
    ep.error("a", n=50)
    ep.observe("b", 0.01, n=10)
    source = _source(ep.url, "a", "b", "missing")
    source.scrape(ep.url)  # the baseline

    ep.observe("a", 0.03, n=80)  # ≤ 0.05 bucket
    ep.observe("a", 0.3, n=20)  # (0.25, 0.5] bucket
    ep.observe("a", 0.6, n=10, track="canary", version="2")  # (0.5, 0.75] bucket
    ep.error("a", n=5)
    ep.error("a", n=0, track="canary", version="2")
    result = source.poll(source.config.models)

    assert result.status.status == "ok"
    assert result.status.requests == 1  # a baseline existed: one scrape this poll
    a = result.values["a"].overall
    # 110 new observations: p50 at rank 55 in (0.025, 0.05] holding 80 → 25 + 25×55/80 ms.
    assert a.latency_ms.p50 == pytest.approx(42.1875)
    # p95 at rank 104.5 in (0.5, 0.75] holding 10 after 100 → 500 + 250×4.5/10 ms.
    assert a.latency_ms.p95 == pytest.approx(612.5)
    assert a.latency_ms.p99 == pytest.approx(722.5)
    assert a.error_rate == pytest.approx(5 / 110)
    scrapes = list(source.history._by_url[ep.url])
    dt = scrapes[-1].at - scrapes[0].at
    assert a.rps == pytest.approx(110 / dt)

    tracks = result.values["a"].tracks
    assert set(tracks) == {"stable", "canary"}
    assert tracks["canary"].latency_ms.p50 == pytest.approx(625.0)
    assert tracks["canary"].error_rate == 0.0
    assert tracks["stable"].error_rate == pytest.approx(5 / 100)
    assert tracks["stable"].latency_ms.p95 == pytest.approx(250 + 250 * 15 / 20)

    b = result.values["b"].overall
    assert b.rps == 0.0 and b.note == "no traffic"
    assert b.latency_ms.p95 is None and b.error_rate is None  # null, never a made-up 0

    assert "missing" not in result.values
    assert 'model_name="missing"' in result.errors["missing"]


def test_first_poll_scrapes_twice_and_later_polls_once(metrics_endpoint: MetricsEndpoint) -> None:
    metrics_endpoint.observe("a", 0.02, n=3)
    source = _source(metrics_endpoint.url, "a")
    first = source.poll(source.config.models)
    assert first.status.requests == 2
    assert first.values["a"].overall.rps == 0.0  # nothing happened between the two scrapes
    metrics_endpoint.observe("a", 0.02, n=4)
    second = source.poll(source.config.models)
    assert second.status.requests == 1
    assert second.values["a"].overall.rps is not None and second.values["a"].overall.rps > 0
    # The sparkline keeps one p95 point per poll with traffic.
    assert len(second.values["a"].p95_series) == 1
    # 4 new observations in (10, 25] ms: rank 3.8 → 10 + 15 × 3.8/4.
    assert second.values["a"].p95_series[0][1] == pytest.approx(24.25)


def test_counter_resets_and_new_series_count_from_zero() -> None:
    before = parse_exposition('x_total{m="a"} 100\n', "u", at=0.0)
    after = parse_exposition('x_total{m="a"} 30\nx_total{m="b"} 8\n', "u", at=2.0)
    rates = _series_rates(after, before)
    assert rates[("u", "x_total", frozenset({("m", "a")}))] == 15.0  # reset: 30 since restart
    assert rates[("u", "x_total", frozenset({("m", "b")}))] == 4.0  # appeared: 8 since 0


def test_preset_selectors_with_regex_matchers() -> None:
    sel = parse_selector('bentoml_service_request_total{http_response_code=~"5..", x!="y"}')
    assert sel.name == "bentoml_service_request_total"
    assert sel.matches({"http_response_code": "503"})
    assert not sel.matches({"http_response_code": "200"})
    assert not sel.matches({"http_response_code": "503", "x": "y"})
    assert parse_selector("request_predict_seconds_count").matchers == ()


def test_an_unreachable_server_is_an_error_value_without_secrets() -> None:
    source = _source("http://demo:hunter2secret@127.0.0.1:9/metrics", "a")
    started = time.monotonic()
    result = source.poll(source.config.models)
    assert time.monotonic() - started < source.deadline
    assert result.status.status == "error"
    assert result.status.error and "127.0.0.1:9" in result.status.error
    assert "hunter2secret" not in result.status.error


def test_the_fleet_reports_scrape_as_prometheus(metrics_endpoint: MetricsEndpoint) -> None:
    metrics_endpoint.observe("a", 0.02, n=3)
    config = parse_config(_config(metrics_endpoint.url, "a"))
    collector = FleetCollector(config)
    try:
        snapshot = collector.collect()
    finally:
        collector.close()
    assert snapshot.sources["prometheus"].status == "ok"
    model = snapshot.model("a")
    assert model is not None and model.traffic is not None
    assert model.traffic.overall.rps == 0.0


def test_quantiles_match_a_real_prometheus_histogram_quantile(
    metrics_endpoint: MetricsEndpoint, tmp_path: Path
) -> None:
    """Same buckets, two implementations: ours and Prometheus 2.x's promql."""
    assert prometheus_binary(), (
        "prometheus not on PATH: apt install prometheus (brew install prometheus)"
    )
    ep = metrics_endpoint
    for seconds, n in (
        (0.004, 7),
        (0.02, 13),
        (0.06, 29),
        (0.2, 41),
        (0.4, 5),
        (3.0, 2),
        (20.0, 1),
    ):
        ep.observe("a", seconds, n=n)
    ep.observe("a", 0.07, n=9, track="canary", version="2")
    host = ep.url.split("//")[1].split("/")[0]
    prom = start_prometheus(tmp_path / "prom", [host], interval=1)
    try:
        api = f"{prom.url}/api/v1/query"

        def query(expr: str) -> list[dict[str, object]]:
            body = httpx.get(api, params={"query": expr}, timeout=5).json()
            return body["data"]["result"]  # type: ignore[no-any-return]

        assert wait_for(lambda: query("request_predict_seconds_count"), 30), "no scrape arrived"
        scrape: Scrape = parse_exposition(httpx.get(ep.url, timeout=5).text, ep.url, 0.0)
        buckets: dict[float, float] = {}
        for (name, labels), value in scrape.samples.items():
            if name == "request_predict_seconds_bucket":
                le = parse_le(dict(labels)["le"])
                buckets[le] = buckets.get(le, 0.0) + value
        for q in (0.1, 0.5, 0.9, 0.95, 0.99, 0.999):
            expr = f"histogram_quantile({q}, sum by (le) (request_predict_seconds_bucket))"
            result = query(expr)
            theirs = float(result[0]["value"][1])  # type: ignore[index]
            ours = bucket_quantile(q, sorted(buckets.items()))
            assert ours == pytest.approx(theirs, rel=1e-12), f"q={q}"
    finally:
        prom.stop()


# ---------------------------------------------------------------- success-only request counters


def _triton(success: dict[str, int], failure: dict[str, int], duration_us: dict[str, int]) -> str:
    """Triton's exposition (counters without _total, as Triton writes them)."""
    lines = ["# HELP nv_inference_request_success Number of successful inference requests"]
    lines.append("# TYPE nv_inference_request_success counter")
    lines += [
        f'nv_inference_request_success{{model="{m}",version="1"}} {n}' for m, n in success.items()
    ]
    lines.append("# TYPE nv_inference_request_failure counter")
    lines += [
        f'nv_inference_request_failure{{model="{m}",reason="BACKEND",version="1"}} {n}'
        for m, n in failure.items()
    ]
    lines.append("# TYPE nv_inference_request_duration_us counter")
    lines += [
        f'nv_inference_request_duration_us{{model="{m}",version="1"}} {n}'
        for m, n in duration_us.items()
    ]
    return "\n".join(lines) + "\n"


def _preset_source(url: str, preset: str, *models: str) -> ScrapeSource:
    text = f'[scrape]\nurls = ["{url}"]\ntimeout = "2s"\n'
    for name in models:
        text += f'[[models]]\nname = "{name}"\nmetrics = "{preset}"\n'
    return ScrapeSource(parse_config(text), history=_History())


def _window(source: ScrapeSource, url: str) -> float:
    scrapes = list(source.history._by_url[url])
    return scrapes[-1].at - scrapes[0].at


def test_triton_counts_successes_and_failures_as_requests() -> None:
    """Triton's success counter excludes failures: rps = successes + failures."""
    with CannedServer(content_type="text/plain; version=0.0.4") as server:
        url = server.url + "/metrics"
        # "mixed": 10 successes, 30 failures; "broken": only failures, no success series.
        server.body = _triton({"mixed": 100}, {"mixed": 7, "broken": 2}, {"mixed": 4_000_000})
        source = _preset_source(url, "triton", "mixed", "broken")
        source.scrape(url)  # the baseline
        server.body = _triton({"mixed": 110}, {"mixed": 37, "broken": 7}, {"mixed": 4_500_000})
        result = source.poll(source.config.models)
        dt = _window(source, url)

    assert result.status.status == "ok", result
    mixed = result.values["mixed"].overall
    assert mixed.rps == pytest.approx(40 / dt)
    assert mixed.error_rate == pytest.approx(0.75)  # 30 of 40, not 30/10 = 3.0
    assert mixed.latency_ms.mean == pytest.approx(50.0)  # 500,000 µs over 10 successes
    broken = result.values["broken"].overall
    assert broken.rps == pytest.approx(5 / dt)  # not "no traffic"
    assert broken.error_rate == 1.0
    assert broken.note != "no traffic"


def test_mlserver_counts_successes_and_failures_as_requests() -> None:
    """MLServer's own prometheus_client counters (…_success_total / …_failure_total)."""
    from prometheus_client import CollectorRegistry, Counter, Summary, start_http_server

    registry = CollectorRegistry()
    labels = ["model", "version"]
    success = Counter("model_infer_request_success", "ok", labels, registry=registry)
    failure = Counter("model_infer_request_failure", "failed", labels, registry=registry)
    duration = Summary("model_infer_request_duration", "s", labels, registry=registry)
    httpd, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    url = f"http://127.0.0.1:{httpd.server_port}/metrics"
    try:
        success.labels("mixed", "1").inc(3)
        duration.labels("mixed", "1").observe(1.0)
        source = _preset_source(url, "mlserver", "mixed", "broken")
        source.scrape(url)  # the baseline
        success.labels("mixed", "1").inc(1)
        duration.labels("mixed", "1").observe(0.2)
        failure.labels("mixed", "1").inc(3)
        failure.labels("broken", "1").inc(5)  # never succeeded: no success series at all
        result = source.poll(source.config.models)
        dt = _window(source, url)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)

    mixed = result.values["mixed"].overall
    assert mixed.rps == pytest.approx(4 / dt)  # 1 success + 3 failures, not 1
    assert mixed.error_rate == pytest.approx(0.75)  # not 3.0
    assert mixed.latency_ms.mean == pytest.approx(200.0)
    broken = result.values["broken"].overall
    assert broken.rps == pytest.approx(5 / dt)
    assert broken.error_rate == 1.0 and broken.note != "no traffic"


@pytest.mark.parametrize(
    ("requests", "errors", "exclude", "rps", "error_rate"),
    [
        (1.0, 3.0, True, 4.0, 0.75),  # success-only counter: total = successes + failures
        (None, 5.0, True, 5.0, 1.0),  # no success series yet, only failures
        (0.0, 0.0, True, 0.0, None),  # idle: no traffic, error rate unknown (not 0)
        (4.0, None, True, 4.0, None),  # no error counter: successes are all we know
        (4.0, 1.0, False, 4.0, 0.25),  # counter of all requests: errors are inside it
        (None, 1.0, False, None, None),  # no request counter: nothing to divide by
        (2.0, 3.0, False, 2.0, 1.0),  # a scrape racing a failure never exceeds 1
    ],
)
def test_request_rates(
    requests: float | None,
    errors: float | None,
    exclude: bool,
    rps: float | None,
    error_rate: float | None,
) -> None:
    got = request_rates(requests, errors, requests_exclude_errors=exclude)
    assert (got.rps, got.error_rate) == (rps, error_rate)


def test_counter_names_stay_as_the_server_wrote_them() -> None:
    """prometheus_client's parser appends _total to bare counters; Prometheus does not."""
    scrape = parse_exposition(
        "# TYPE bare counter\nbare 1\n# TYPE done_total counter\ndone_total 2\n", "u", 0.0
    )
    assert set(scrape.samples) == {("bare", frozenset()), ("done_total", frozenset())}


# ---------------------------------------------------------------- concurrency


def test_urls_are_scraped_concurrently_each_within_the_timeout(
    metrics_endpoint: MetricsEndpoint,
) -> None:
    """Four servers answering after 1.2 s, one that hangs: the first poll (two rounds and
    the pause) still ends within the source's deadline, which does not grow with the URLs."""
    metrics_endpoint.observe("a", 0.02, n=3)
    body = httpx.get(metrics_endpoint.url, timeout=5).text
    slow = [CannedServer(body=body, content_type="text/plain", delay=1.2) for _ in range(4)]
    hung = CannedServer(body=body, content_type="text/plain", delay=30)
    try:
        urls = [s.url for s in slow] + [hung.url]
        text = f'[scrape]\nurls = {json.dumps(urls)}\ntimeout = "2s"\n'
        text += '[[models]]\nname = "a"\nmetrics = "kserve"\n'
        source = ScrapeSource(parse_config(text), history=_History())
        started = time.monotonic()
        result = source.poll(source.config.models)
        took = time.monotonic() - started
    finally:
        for server in [*slow, hung]:
            server.close()
    # One after another: 2 rounds × (4 × 1.2 s + 2 s) + 1 s ≈ 14.6 s.
    assert took < source.deadline == 6.0, took
    assert took < 2 * 2.0 + 1.0 + 1.0
    assert result.status.status == "ok"
    assert all(s.count == 2 for s in slow)  # two rounds, each server once per round
    assert result.values["a"].overall.rps == 0.0  # the canned body never changes
