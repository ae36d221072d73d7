"""The scrape source against a real /metrics endpoint (prometheus_client's server),
and its quantiles against a real Prometheus' histogram_quantile on the same buckets."""

from __future__ import annotations

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
from mltui.config import parse_config
from mltui.demo.processes import wait_for
from mltui.demo.prometheus import prometheus_binary, start_prometheus
from tests.harness.metrics_endpoint import MetricsEndpoint


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
