"""PrometheusSource against the harness' real Prometheus (standard fleet, exact values)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from mltui.collectors import promql
from mltui.collectors.base import SourceResult
from mltui.collectors.prom_sparkline import Lines, Sparklines, with_live_point
from mltui.collectors.prometheus import PrometheusSource
from mltui.config import Config, parse_config
from mltui.fleet import Traffic
from tests.harness.prometheus import PrometheusServer
from tests.support.http_stubs import CannedServer, CountingProxy
from tests.support.openmetrics import DEFAULT_BUCKETS, format_le
from tests.support.procs import free_port
from tests.support.prom_fleet import MODELS_TOML, Expected

REL = 1e-6


def config_for(
    url: str, models: str = MODELS_TOML, extra: str = "", timeout: str = "5s", top: str = ""
) -> Config:
    """Config text: ``top`` (top-level keys), [prometheus] with ``extra``, then ``models``."""
    return parse_config(
        f'{top}\n[prometheus]\nurl = "{url}"\ntimeout = "{timeout}"\n{extra}\n{models}'
    )


@pytest.fixture(scope="module")
def fleet_polls(
    prometheus_fleet: PrometheusServer,
) -> tuple[SourceResult[Traffic], SourceResult[Traffic]]:
    """The first poll of a fresh source, and one more once its sparkline fetch is done."""
    config = config_for(prometheus_fleet.url)
    source = PrometheusSource(config)
    try:
        first = source.poll(config.models)
        assert source.wait_sparklines(30)
        time.sleep(0.05)  # the second poll's "now" is strictly later than the range's end
        return first, source.poll(config.models)
    finally:
        source.close()


@pytest.fixture(scope="module")
def fleet_poll(
    fleet_polls: tuple[SourceResult[Traffic], SourceResult[Traffic]],
) -> SourceResult[Traffic]:
    return fleet_polls[0]


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


def test_p95_sparkline_covers_the_window(
    fleet_polls: tuple[SourceResult[Traffic], SourceResult[Traffic]],
) -> None:
    """The cached range (30 steps of 120 s over the 1 h window) plus the poll's own p95."""
    first, second = fleet_polls
    assert second.status.status == "ok" and second.status.requests == 10  # no range again
    spark = second.values["fraud"].p95_series
    assert 30 <= len(spark) <= 32
    assert all(v == pytest.approx(375.0, rel=REL) for _, v in spark)
    assert spark[-1][0] - spark[0][0] == pytest.approx(3600, abs=130)
    assert [t for t, _ in spark] == sorted({t for t, _ in spark})
    # The newest point is this poll's own p95, later than the range's last point.
    assert spark[-1][0] > first.values["fraud"].p95_series[-1][0] - 1e-6
    assert spark[-1][0] == pytest.approx(time.time(), abs=60)
    assert spark[-2][0] < spark[-1][0]
    llm = second.values["llm"].p95_series  # vllm: its own query group
    assert len(llm) >= 30 and all(v == pytest.approx(4375.0, rel=REL) for _, v in llm)
    assert second.values["idle"].p95_series == ()  # no traffic: no point at all
    assert second.values["sentiment"].p95_series == ()  # counter-only: no sparkline


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
    """Counted on the wire by a proxy, not by the source.

    Instant queries per poll: kserve buckets + requests + errors; triton mean +
    requests + errors; torchserve mean + requests; vllm buckets + requests = 10. The
    sparkline range query (kserve and vllm groups: 2) rides with the first poll and
    then once per sparkline step (window 60 s / 30 points = 2 s here), never more.
    """
    counts: dict[int, list[int]] = {}
    ranges: dict[int, list[int]] = {}
    with CountingProxy(prometheus_fleet.url) as proxy:
        for n in (10, 500):
            config = config_for(proxy.url, _models(n), top='window = "60s"')
            source = PrometheusSource(config)
            assert source.sparklines.step_s == 2.0
            counts[n], ranges[n] = [], []
            try:
                for pause in (0.0, 0.0, 2.2):
                    time.sleep(pause)
                    proxy.reset()
                    result = source.poll(config.models)
                    assert source.wait_sparklines(30)
                    assert result.status.status == "ok", result.status.error
                    assert len(result.values) == n
                    fraud = result.values["fraud"].overall.latency_ms.p95
                    assert fraud == pytest.approx(375.0, rel=REL)
                    assert result.status.requests == proxy.count
                    counts[n].append(proxy.count)
                    ranges[n].append(sum("query_range" in path for path in proxy.paths))
            finally:
                source.close()
    assert counts[10] == counts[500] == [12, 10, 12]
    assert ranges[10] == ranges[500] == [2, 0, 2]


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


# ------------------------------------------------------------------ sparkline history


STEP = 15
SHIFT_AGO = 1800
"""The "shift" model's latency jumps this many seconds before the data's "now"."""
BEFORE_MS = 98.75  # 20 requests per step in (0.075, 0.1] s: 75 + 25 * 19/20 ms
AFTER_MS = 487.5  # 20 requests per step in (0.25, 0.5] s: 250 + 250 * 0.95 ms


def shift_openmetrics(now: float) -> tuple[str, int]:
    """A kserve model whose p95 is 98.75 ms until ``shift_at``, 487.5 ms after it.

    Cumulative histogram buckets sampled every 15 s from 2 h before ``now`` to 1 h
    after; the increment of the step *ending* at t is the old one while t <= shift_at.
    Returns (OpenMetrics text, shift_at).
    """
    start = int(now) // STEP * STEP - 2 * 3600
    shift_at = int(now) // STEP * STEP - SHIFT_AGO
    bounds = [*DEFAULT_BUCKETS, float("inf")]
    before = {b: (20 if b >= 0.1 else 0) for b in bounds}  # cumulative per step
    after = {b: (20 if b >= 0.5 else 0) for b in bounds}
    lines = ["# TYPE request_predict_seconds histogram"]
    labels = 'model_name="shift"'
    for bound in bounds:
        value = 0
        for t in range(start, int(now) + 3600 + 1, STEP):
            if t > start:
                value += (before if t <= shift_at else after)[bound]
            lines.append(
                f'request_predict_seconds_bucket{{{labels},le="{format_le(bound)}"}} {value} {t}'
            )
    value = 0
    for t in range(start, int(now) + 3600 + 1, STEP):
        value += 20 if t > start else 0
        lines.append(f"request_predict_seconds_count{{{labels}}} {value} {t}")
    return "\n".join([*lines, "# EOF"]) + "\n", shift_at


@pytest.fixture(scope="module")
def shift_server(
    prometheus_factory: Callable[..., PrometheusServer],
) -> tuple[PrometheusServer, int]:
    text, shift_at = shift_openmetrics(time.time())
    return prometheus_factory(text), shift_at


def test_sparkline_shows_the_windows_history(shift_server: tuple[PrometheusServer, int]) -> None:
    """Known history: p95 98.75 ms until 30 min ago, 487.5 ms since (after a 5 min ramp)."""
    server, shift_at = shift_server
    config = config_for(server.url, '[[models]]\nname = "shift"\nmetrics = "kserve"\n')
    source = PrometheusSource(config)
    try:
        source.poll(config.models)
        assert source.wait_sparklines(30)
        time.sleep(0.05)
        result = source.poll(config.models)
    finally:
        source.close()
    shift = result.values["shift"]
    assert shift.overall.latency_ms.p95 == pytest.approx(AFTER_MS, rel=REL)
    spark = shift.p95_series
    old = [v for t, v in spark if t <= shift_at]
    new = [v for t, v in spark if t >= shift_at + 300 + STEP]
    ramp = [v for t, v in spark if shift_at < t < shift_at + 300 + STEP]
    # 30 min before the shift and ~25 min after its ramp, at one point per 120 s.
    assert 14 <= len(old) <= 16 and all(v == pytest.approx(BEFORE_MS, rel=REL) for v in old)
    assert 12 <= len(new) <= 14 and all(v == pytest.approx(AFTER_MS, rel=REL) for v in new)
    assert len(ramp) <= 3 and all(BEFORE_MS - 1e-6 <= v <= AFTER_MS + 1e-6 for v in ramp)
    values = [v for _, v in spark]
    # The mix only moves towards the new latency (float noise aside).
    assert all(b >= a - 1e-6 for a, b in zip(values, values[1:], strict=False))
    assert spark[-1] == (pytest.approx(time.time(), abs=60), pytest.approx(AFTER_MS, rel=REL))


# ------------------------------------------------------------------ slow or failing range


class RangeFaultProxy:
    """Forwards to a real Prometheus; ``query_range`` can be delayed or answered 503."""

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.delay = 0.0
        self.fail = False
        self.client = httpx.Client(timeout=30)
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 (stdlib name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if "query_range" in self.path:
                    time.sleep(owner.delay)
                    if owner.fail:
                        self.send_response(503)
                        self.send_header("Content-Length", "10")
                        self.end_headers()
                        self.wfile.write(b"overloaded")
                        return
                response = owner.client.post(
                    owner.target + self.path,
                    content=body,
                    headers={"Content-Type": self.headers.get("Content-Type", "")},
                )
                self.send_response(response.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(response.content)))
                self.end_headers()
                self.wfile.write(response.content)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.client.close()


@pytest.fixture
def range_proxy(prometheus_fleet: PrometheusServer) -> Iterator[RangeFaultProxy]:
    proxy = RangeFaultProxy(prometheus_fleet.url)
    yield proxy
    proxy.close()


def test_a_slow_sparkline_query_does_not_hold_up_the_poll(range_proxy: RangeFaultProxy) -> None:
    """The range answers after 3 s: the poll returns after the instant queries and a
    0.5 s grace, with the live p95 only; the history arrives with a later poll."""
    range_proxy.delay = 3.0
    config = config_for(range_proxy.url)
    source = PrometheusSource(config)
    try:
        started = time.monotonic()
        first = source.poll(config.models)
        elapsed = time.monotonic() - started
        assert first.status.status == "ok" and first.errors == {}
        assert elapsed < 2.5  # not 3 s + the instant queries
        fraud = first.values["fraud"]
        assert fraud.overall.latency_ms.p95 == pytest.approx(375.0, rel=REL)
        assert len(fraud.p95_series) == 1 and fraud.p95_series[0][1] == pytest.approx(375.0)
        started = time.monotonic()
        assert source.wait_sparklines(30)
        assert time.monotonic() - started > 0.5  # it really was still running
        later = source.poll(config.models)
        assert len(later.values["fraud"].p95_series) >= 30
    finally:
        source.close()


def test_a_failing_sparkline_query_is_no_models_error(range_proxy: RangeFaultProxy) -> None:
    range_proxy.fail = True
    config = config_for(range_proxy.url)
    source = PrometheusSource(config)
    try:
        result = source.poll(config.models)
        assert source.wait_sparklines(30)
        again = source.poll(config.models)
        kserve = next(
            g for g in promql.group_models(config, config.models) if g.preset_name == "kserve"
        )
        query = promql.p95_series_query(kserve, config.prometheus.rate_window)  # type: ignore[union-attr]
        assert query is not None
        history = source.sparklines.history(query)
    finally:
        source.close()
    assert result.status.status == "ok" and result.errors == {}
    fraud = again.values["fraud"]
    assert fraud.overall.latency_ms.p95 == pytest.approx(375.0, rel=REL)
    assert [v for _, v in fraud.p95_series] == [pytest.approx(375.0, rel=REL)]  # live only
    assert "HTTP 503" in (history.error or "") and not history.filled
    # Not retried on every poll: the next try waits a sparkline step (120 s here).
    assert again.status.requests == 10


# ------------------------------------------------------------------ the cache's rules


def test_sparkline_cache_refreshes_once_per_step_and_keeps_history_on_failure() -> None:
    """Pure logic (futures completed by hand): cadence, one fetch at a time, trimming."""
    cache = Sparklines(window_s=300.0, points=30)
    assert cache.step_s == 10.0
    started: list[Future[Lines]] = []

    def start() -> Future[Lines]:
        started.append(Future())
        return started[-1]

    assert cache.refresh("q", 1000.0, start)
    assert not cache.refresh("q", 1020.0, start)  # one in flight already
    started[-1].set_result({("a",): ((700.0, 1.0), (990.0, 2.0), (1000.0, 3.0))})
    assert not cache.refresh("q", 1009.0, start)  # within a step of the last try
    assert cache.lines("q", 1000.0) == {("a",): ((700.0, 1.0), (990.0, 2.0), (1000.0, 3.0))}
    assert cache.lines("q", 1001.0) == {("a",): ((990.0, 2.0), (1000.0, 3.0))}  # window only
    assert cache.refresh("q", 1010.0, start)
    started[-1].set_exception(RuntimeError("boom"))
    assert cache.lines("q", 1010.0)[("a",)][-1] == (1000.0, 3.0)  # old history kept
    assert cache.history("q").error == "boom" and cache.history("q").filled
    assert len(started) == 2
    cache.keep_only(["other"])
    assert cache.lines("q", 1010.0) == {}  # a group no longer polled is forgotten


def test_live_point_is_appended_only_when_newer() -> None:
    line = ((10.0, 1.0), (20.0, 2.0))
    assert with_live_point(line, 25.0, 5.0) == (*line, (25.0, 5.0))
    assert with_live_point(line, 20.0, 5.0) == line  # the range already ends now
    assert with_live_point(line, 25.0, None) == line  # no traffic now: no point
    assert with_live_point((), 25.0, 5.0) == ((25.0, 5.0),)


def test_bucket_quantiles_match_prometheus_histogram_quantile(
    prometheus_fleet: PrometheusServer,
) -> None:
    """Client-side quantiles from one bucket query equal the server's own answer."""
    config = config_for(prometheus_fleet.url)
    source = PrometheusSource(config)
    try:
        result = source.poll(config.models)
    finally:
        source.close()
    for model in ("churn", "fraud", "ranker", "pricing"):
        for q, name in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
            server = prometheus_fleet.scalar(
                f"histogram_quantile({q}, sum by (le) "
                f'(rate(request_predict_seconds_bucket{{model_name="{model}"}}[5m])))',
            )
            got = getattr(result.values[model].overall.latency_ms, name)
            assert got == pytest.approx(server * 1000, rel=1e-9), (model, name)


def test_bucket_rates_query_is_one_aggregation_by_track_and_le() -> None:
    config = config_for("http://x", '[[models]]\nname = "a"\n[[models]]\nname = "b"\n')
    (group,) = promql.group_models(config, config.models)
    query = promql.bucket_rates_query(group, 300)
    assert query == (
        "sum by (model_name, track, le) "
        '(rate(request_predict_seconds_bucket{model_name=~"a|b"}[5m]))'
    )
