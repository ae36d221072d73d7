"""PrometheusSource against the harness' real Prometheus (standard fleet, exact values)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from mltui.collectors.base import SourceResult
from mltui.collectors.prometheus import PrometheusSource
from mltui.config import Config, parse_config
from mltui.fleet import Traffic
from tests.harness.prometheus import PrometheusServer
from tests.support.http_stubs import CannedServer, CountingProxy
from tests.support.procs import free_port
from tests.support.prom_fleet import MODELS_TOML, Expected

REL = 1e-6


def config_for(url: str, models: str = MODELS_TOML, extra: str = "", timeout: str = "5s") -> Config:
    return parse_config(f'[prometheus]\nurl = "{url}"\ntimeout = "{timeout}"\n{extra}\n{models}')


@pytest.fixture(scope="module")
def fleet_poll(prometheus_fleet: PrometheusServer) -> SourceResult[Traffic]:
    config = config_for(prometheus_fleet.url)
    source = PrometheusSource(config)
    try:
        return source.poll(config.models)
    finally:
        source.close()


def assert_matches(stats, want: Expected) -> None:  # type: ignore[no-untyped-def]
    latency = stats.latency_ms
    for got, exp in (
        (latency.p50, want.p50_ms),
        (latency.p95, want.p95_ms),
        (latency.p99, want.p99_ms),
        (latency.mean, want.mean_ms),
        (stats.rps, want.rps),
        (stats.error_rate, want.error_rate),
    ):
        if exp is None:
            assert got is None
        else:
            assert got == pytest.approx(exp, rel=REL)


def test_poll_is_ok(fleet_poll: SourceResult[Traffic]) -> None:
    assert fleet_poll.status.status == "ok", fleet_poll.status.error
    assert fleet_poll.errors == {}


@pytest.mark.parametrize("model", ["churn", "fraud", "ranker", "pricing", "llm"])
def test_histogram_presets_give_exact_quantiles_rps_errors(
    fleet_poll: SourceResult[Traffic], prometheus_fleet: PrometheusServer, model: str
) -> None:
    """kserve (with error counter) and vllm (no error counter -> error_rate None)."""
    assert_matches(fleet_poll.values[model].overall, prometheus_fleet.expected[model])


def test_vllm_has_no_error_rate_and_says_why(fleet_poll: SourceResult[Traffic]) -> None:
    llm = fleet_poll.values["llm"].overall
    assert llm.error_rate is None and llm.rps == pytest.approx(10 / 15, rel=REL)
    assert llm.note == "no error counter"


def test_canary_split(
    fleet_poll: SourceResult[Traffic], prometheus_fleet: PrometheusServer
) -> None:
    churn = fleet_poll.values["churn"]
    assert set(churn.tracks) == {"stable", "canary"}
    assert_matches(churn.tracks["stable"], prometheus_fleet.expected["churn:stable"])
    assert_matches(churn.tracks["canary"], prometheus_fleet.expected["churn:canary"])
    assert churn.tracks["canary"].latency_ms.p95 == pytest.approx(375.0, rel=REL)
    # Models without canary series get no split.
    assert fleet_poll.values["fraud"].tracks == {}


def test_counter_only_presets_give_mean_latency(
    fleet_poll: SourceResult[Traffic], prometheus_fleet: PrometheusServer
) -> None:
    sentiment = fleet_poll.values["sentiment"].overall  # triton: success + failure counters
    assert_matches(sentiment, prometheus_fleet.expected["sentiment"])
    assert sentiment.latency_ms.mean == pytest.approx(35.0, rel=REL)
    assert sentiment.error_rate == pytest.approx(2 / 42, rel=REL)
    assert "mean latency only" in (sentiment.note or "")
    detector = fleet_poll.values["detector"].overall  # torchserve: no error counter
    assert_matches(detector, prometheus_fleet.expected["detector"])
    assert detector.latency_ms.p95 is None and detector.error_rate is None


def test_no_traffic_is_none_with_a_note(fleet_poll: SourceResult[Traffic]) -> None:
    idle = fleet_poll.values["idle"].overall
    assert idle.latency_ms.p95 is None and idle.error_rate is None
    assert idle.rps == 0.0  # the counters exist and measured zero
    assert idle.note == "no traffic"
    ghost = fleet_poll.values["ghost"].overall  # no series at all
    assert ghost.rps is None and ghost.latency_ms.p50 is None and ghost.note == "no traffic"


def test_p95_sparkline_covers_the_window(fleet_poll: SourceResult[Traffic]) -> None:
    spark = fleet_poll.values["fraud"].p95_series
    assert 25 <= len(spark) <= 31
    assert all(v == pytest.approx(375.0, rel=REL) for _, v in spark)
    assert spark[-1][0] - spark[0][0] == pytest.approx(3600, abs=130)
    assert fleet_poll.values["idle"].p95_series == ()


def test_series_for_charts(prometheus_fleet: PrometheusServer) -> None:
    config = config_for(prometheus_fleet.url)
    source = PrometheusSource(config)
    try:
        churn = source.series(config.model("churn"), 1800, points=60)  # type: ignore[arg-type]
        assert churn.error is None
        assert churn.step_s == pytest.approx(1800 / 59, abs=0.001)
        exp = prometheus_fleet.expected
        for key, want in (
            ("p95", exp["churn"].p95_ms),
            ("canary:p95", exp["churn:canary"].p95_ms),
            ("stable:p50", exp["churn:stable"].p50_ms),
            ("rps", exp["churn"].rps),
            ("error_rate", exp["churn"].error_rate),
            ("canary:error_rate", 0.05),
            ("stable:error_rate", 0.0),
        ):
            points = churn.series[key]
            assert 55 <= len(points) <= 60, key
            assert all(v == pytest.approx(want, rel=REL) for _, v in points), key
        sentiment = source.series(config.model("sentiment"), 600)  # type: ignore[arg-type]
        assert sentiment.series["mean"][-1][1] == pytest.approx(35.0, rel=REL)
        assert sentiment.series["rps"][-1][1] == pytest.approx(2.8, rel=REL)
        # A week at 1 s resolution would be 604,800 points: the step keeps it <= 11,000.
        week = source.series(config.model("ranker"), 7 * 86400, points=10**6)  # type: ignore[arg-type]
        assert week.error is None
        assert week.step_s >= 7 * 86400 / 10_999
    finally:
        source.close()


def _models(n: int) -> str:
    names = ["churn", "fraud", "ranker", "sentiment", "detector", "llm"]
    presets = {"sentiment": "triton", "detector": "torchserve", "llm": "vllm"}
    out = []
    for i in range(n):
        name = names[i] if i < len(names) else f"m{i:03d}"
        out.append(f'[[models]]\nname = "{name}"\nmetrics = "{presets.get(name, "kserve")}"\n')
    return "\n".join(out)


def test_request_count_is_independent_of_fleet_size(prometheus_fleet: PrometheusServer) -> None:
    """Counted on the wire by a proxy, not by the source."""
    counts = {}
    with CountingProxy(prometheus_fleet.url) as proxy:
        for n in (10, 500):
            config = config_for(proxy.url, _models(n))
            source = PrometheusSource(config)
            proxy.reset()
            result = source.poll(config.models)
            source.close()
            assert result.status.status == "ok", result.status.error
            assert len(result.values) == n
            assert result.values["fraud"].overall.latency_ms.p95 == pytest.approx(375.0, rel=REL)
            counts[n] = proxy.count
            assert result.status.requests == proxy.count
    # kserve: 3 quantiles + requests + errors + sparkline; triton, torchserve: mean +
    # requests (+ errors); vllm: 3 quantiles + requests + sparkline.
    assert counts[10] == counts[500] == 6 + 3 + 2 + 5


def test_bad_custom_preset_shows_query_and_prometheus_error(
    prometheus_fleet: PrometheusServer,
) -> None:
    extra = '[presets.broken]\nlatency_histogram = "my_seconds"\nrequests = "my_total{code=~\\"5..\\""\n'
    models = MODELS_TOML + '\n[[models]]\nname = "bad"\nmetrics = "broken"\n'
    config = config_for(prometheus_fleet.url, models, extra)
    source = PrometheusSource(config)
    try:
        result = source.poll(config.models)
    finally:
        source.close()
    assert result.status.status == "ok"  # the other models still arrive
    assert result.values["fraud"].overall.latency_ms.p95 == pytest.approx(375.0, rel=REL)
    error = result.errors["bad"]
    assert "Prometheus rejected the query (bad_data" in error
    assert "query: " in error and "my_total{" in error


def test_only_a_bad_preset_makes_the_source_error(prometheus_fleet: PrometheusServer) -> None:
    extra = (
        '[presets.broken]\nlatency_sum = "x_sum"\nlatency_count = "x_count"\nrequests = "rate(("\n'
    )
    config = config_for(
        prometheus_fleet.url, '[[models]]\nname = "bad"\nmetrics = "broken"\n', extra
    )
    source = PrometheusSource(config)
    try:
        result = source.poll(config.models)
    finally:
        source.close()
    assert result.status.status == "error"
    assert "query: " in (result.status.error or "")


@pytest.fixture
def stoppable(prometheus_factory: Callable[..., PrometheusServer]) -> Iterator[PrometheusServer]:
    server = prometheus_factory()
    yield server
    server.stop()


def test_prometheus_stopped_mid_session(stoppable: PrometheusServer) -> None:
    config = config_for(stoppable.url, timeout="2s")
    source = PrometheusSource(config)
    try:
        assert source.poll(config.models).status.status == "ok"
        stoppable.kill()
        started = time.monotonic()
        result = source.poll(config.models)
        elapsed = time.monotonic() - started
    finally:
        source.close()
    assert result.status.status == "error"
    assert "cannot connect to Prometheus" in (result.status.error or "")
    assert elapsed < 2 + 1.0
    assert result.values == {}


def test_connection_refused() -> None:
    config = config_for(f"http://127.0.0.1:{free_port()}", timeout="1s")
    source = PrometheusSource(config)
    try:
        result = source.poll(config.models)
    finally:
        source.close()
    assert result.status.status == "error"
    assert "cannot connect" in (result.status.error or "")


@pytest.mark.parametrize(
    ("status", "body", "expect"),
    [
        (503, "upstream overloaded", "HTTP 503"),
        (200, "{not json", "malformed response"),
        (200, '{"status": "success", "data": {"result": 7}}', "malformed response"),
        (401, "nope", "HTTP 401"),
    ],
)
def test_bad_answers_are_errors(status: int, body: str, expect: str) -> None:
    with CannedServer(status, body) as server:
        config = config_for(
            server.url,
            extra='headers = { Authorization = "Bearer sekrit-token-123" }',
            timeout="1s",
        )
        source = PrometheusSource(config)
        try:
            result = source.poll(config.models)
        finally:
            source.close()
    assert result.status.status == "error"
    assert expect in (result.status.error or "")
    assert "sekrit-token-123" not in (result.status.error or "")


def test_slow_server_times_out_within_the_timeout() -> None:
    with CannedServer(200, "{}", delay=5) as server:
        config = config_for(server.url, timeout="1s")
        source = PrometheusSource(config)
        started = time.monotonic()
        try:
            result = source.poll(config.models)
        finally:
            source.close()
        elapsed = time.monotonic() - started
    assert result.status.status == "error"
    assert "did not answer within 1s" in (result.status.error or "")
    assert elapsed < 1 + 1.0
