"""Faults injected against the real servers: mltui keeps working while its sources fail.

For every fault: the FleetCollector marks the affected values stale with the error
(the last good values stay), recovers on the next poll once the source is back, and
``mltui --check`` (the real command, a subprocess) exits 3 within its timeouts. A
representative subset also drives the TUI with key presses while the fault is on.

Where the faults come from:

* Prometheus: the shared standard-fleet server behind a :class:`FaultProxy`
  (refused, closed, hung, reset mid-body, truncated), and a private server that is
  SIGKILLed mid-session and restarted on the same port;
* MLflow: a private ``mlflow server`` SIGKILLed mid-session; a new server comes
  back behind the same address (the proxy's upstream is switched to it);
* Kubernetes: the API stand-in's own fault injection (500, 403, 409, 429 with
  Retry-After, slow answers, truncated JSON, a reset mid-body);
* DNS: host names under ``.invalid`` (RFC 2606: never resolvable).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable

from mltui.app import make_app
from mltui.collectors.collect import FleetCollector
from mltui.config import Config, parse_config
from mltui.fleet import FleetSnapshot
from mltui.widgets.statusbar import StatusBar
from tests.support import manifests as m
from tests.support.fault_proxy import FaultProxy
from tests.support.kube_standin import Fault, kubeconfig

TIMEOUT_S = 1.0
"""Every source's timeout in these configs: faults must cost about this, not minutes."""
POLL_BOUND_S = 4.0
"""A whole poll under a fault: the source's deadline (timeout + 1 s) plus slack for a busy box."""
CHECK_BOUND_S = 12.0
"""`mltui --check` under a fault: interpreter start, lazy imports (mlflow, kubernetes) and
one bounded poll, on a loaded 2-core machine."""
HANG_S = 4.0
"""How long a "slow" fault holds an answer: well beyond TIMEOUT_S."""

PROM_MODELS = """
[[models]]
name = "churn"
metrics = "kserve"

[[models]]
name = "fraud"
metrics = "kserve"
"""


# ---------------------------------------------------------------- helpers


def config_of(text: str, tmp_path: Path | None = None) -> Config:
    return parse_config(text, str(tmp_path / "config.toml") if tmp_path else "faults.toml")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def timed_collect(collector: FleetCollector) -> tuple[FleetSnapshot, float]:
    started = time.monotonic()
    snapshot = collector.collect()
    return snapshot, time.monotonic() - started


def run_check(config_path: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mltui",
            "--check",
            "--format",
            "json",
            "--config",
            str(config_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done, time.monotonic() - started


def assert_check_unknown(config_path: Path, source: str) -> dict[str, Any]:
    """--check exits 3 (UNKNOWN) in bounded time and names the failing source."""
    done, elapsed = run_check(config_path)
    assert done.returncode == 3, done.stdout + done.stderr
    assert elapsed < CHECK_BOUND_S, f"--check took {elapsed:.1f}s"
    report = json.loads(done.stdout)
    assert report["status"] == "unknown"
    assert report["sources"][source]["status"] == "error"
    assert report["sources"][source]["error"]
    return report


def assert_stale(snapshot: FleetSnapshot, before: FleetSnapshot, source: str, field: str) -> None:
    """``source`` is in error; every model keeps its last good ``field``, marked stale."""
    status = snapshot.source(source)
    assert status.status == "error" and status.error, status
    assert status.fetched_at == before.source(source).fetched_at  # the age of what is shown
    for model in snapshot.models:
        old = before.model(model.name)
        assert old is not None
        assert getattr(model, field) == getattr(old, field) is not None
        assert source in model.stale
        assert model.errors[source]


def assert_fresh(snapshot: FleetSnapshot, source: str) -> None:
    assert snapshot.source(source).ok, snapshot.source(source)
    for model in snapshot.models:
        assert source not in model.stale and source not in model.errors, model


# ---------------------------------------------------------------- Prometheus


@pytest.fixture(scope="module")
def prom_proxy(prometheus_fleet: Any) -> Iterator[FaultProxy]:
    """A fault proxy in front of the shared standard-fleet Prometheus."""
    proxy = FaultProxy("127.0.0.1", prometheus_fleet.port).start()
    try:
        yield proxy
    finally:
        proxy.stop()


def prom_config_text(url: str) -> str:
    return f'[prometheus]\nurl = "{url}"\ntimeout = "{TIMEOUT_S:g}s"\n' + PROM_MODELS


PROM_FAULTS = {
    "refused": ("refuse", {}),
    "closed on accept": ("close", {}),
    "hung beyond the timeout": ("delay", {"delay": HANG_S}),
    "reset mid-body": ("reset", {"after": 200}),
    "truncated body": ("truncate", {"after": 200}),
}


@pytest.mark.parametrize("fault", list(PROM_FAULTS))
def test_prometheus_fault_is_stale_with_the_error_then_recovers(
    fault: str, prom_proxy: FaultProxy, prometheus_fleet: Any, tmp_path: Path
) -> None:
    mode, kw = PROM_FAULTS[fault]
    config = config_of(prom_config_text(prom_proxy.url))
    collector = FleetCollector(config)
    try:
        good, _ = timed_collect(collector)
        assert_fresh(good, "prometheus")
        churn = good.model("churn")
        assert churn is not None and churn.traffic is not None
        assert churn.traffic.overall.latency_ms.p95 == pytest.approx(
            prometheus_fleet.expected["churn"].p95_ms, rel=1e-6
        )

        with prom_proxy.fault(mode, **kw):
            bad, elapsed = timed_collect(collector)
            assert elapsed < POLL_BOUND_S, f"a poll took {elapsed:.1f}s under {fault}"
            assert_stale(bad, good, "prometheus", "traffic")
            assert "Prometheus" in (bad.source("prometheus").error or "")
            # --check against the same fault: UNKNOWN, in seconds.
            report = assert_check_unknown(
                write(tmp_path, prom_config_text(prom_proxy.url)), "prometheus"
            )
            assert all(m["latency_ms"]["p95"] is None for m in report["models"])

        again, _ = timed_collect(collector)  # no restart, no reconnect call: the next poll
        assert_fresh(again, "prometheus")
        churn = again.model("churn")
        assert churn is not None and churn.traffic is not None
        assert churn.traffic.overall == good.model("churn").traffic.overall  # type: ignore[union-attr]
    finally:
        collector.close()


SMALL_HISTORY = """\
# TYPE request_predict_seconds histogram
{series}
# EOF
"""


def _small_openmetrics() -> tuple[str, float]:
    """One kserve model, 30 requests/min at 50 ms for an hour around now: p95 < 100 ms."""
    now = int(time.time())
    lines = []
    bounds = ("0.05", "0.1", "+Inf")
    for i, t in enumerate(range(now - 3600, now + 600, 15)):
        n = 10 * (i + 1)  # 10 requests every 15 s
        for le in bounds:
            lines.append(f'request_predict_seconds_bucket{{model_name="solo",le="{le}"}} {n} {t}')
        lines.append(f'request_predict_seconds_count{{model_name="solo"}} {n} {t}')
        lines.append(f'request_predict_seconds_sum{{model_name="solo"}} {n * 0.05} {t}')
    return SMALL_HISTORY.format(series="\n".join(lines)), 10 / 15


def test_prometheus_killed_mid_session_and_restarted_recovers_on_the_next_poll(
    prometheus_factory: Callable[..., Any], tmp_path: Path
) -> None:
    text, rps = _small_openmetrics()
    server = prometheus_factory(text)
    config_text = (
        f'[prometheus]\nurl = "{server.url}"\ntimeout = "{TIMEOUT_S:g}s"\n'
        '[[models]]\nname = "solo"\nmetrics = "kserve"\n'
    )
    collector = FleetCollector(config_of(config_text))
    try:
        good, _ = timed_collect(collector)
        assert_fresh(good, "prometheus")
        solo = good.model("solo")
        assert solo is not None and solo.traffic is not None
        assert solo.traffic.overall.rps == pytest.approx(rps, rel=1e-6)

        server.kill()  # SIGKILL, as a crash
        bad, elapsed = timed_collect(collector)
        assert elapsed < POLL_BOUND_S
        assert_stale(bad, good, "prometheus", "traffic")
        assert "cannot connect to Prometheus" in (bad.source("prometheus").error or "")
        assert_check_unknown(write(tmp_path, config_text), "prometheus")

        server.start()  # same port, same data dir
        again, _ = timed_collect(collector)
        assert_fresh(again, "prometheus")
        assert again.model("solo").traffic.overall.rps == pytest.approx(rps, rel=1e-6)  # type: ignore[union-attr]
    finally:
        collector.close()
        server.stop()


# ---------------------------------------------------------------- MLflow


def test_mlflow_server_killed_is_stale_then_a_new_server_is_picked_up(
    mlflow_server_factory: Callable[[], Any], mlflow_server: Any, tmp_path: Path
) -> None:
    first = mlflow_server_factory()
    proxy = FaultProxy("127.0.0.1", first.port).start()
    config_text = (
        f'[mlflow]\ntracking_uri = "{proxy.url}"\ntimeout = "{TIMEOUT_S:g}s"\n'
        '[[models]]\nname = "churn"\nregistered_model = "churn-classifier"\n'
        'target = { kind = "alias" }\n'
    )
    collector = FleetCollector(config_of(config_text))
    try:
        good, _ = timed_collect(collector)
        assert_fresh(good, "mlflow")
        churn = good.model("churn")
        assert churn is not None and churn.registry is not None
        assert churn.registry.champion == "3" and churn.serving_version == "3"

        first.kill()
        bad, elapsed = timed_collect(collector)
        assert elapsed < 2 * TIMEOUT_S + 2.0 + 1.0  # the MLflow source's deadline, plus slack
        assert_stale(bad, good, "mlflow", "registry")
        assert "MLflow at" in (bad.source("mlflow").error or "")
        assert bad.model("churn").serving_version == "3"  # type: ignore[union-attr]
        assert_check_unknown(write(tmp_path, config_text), "mlflow")

        # The server comes back behind the same address: the session's shared server
        # (the same registry data, already running: no second start to wait for).
        proxy.upstream = ("127.0.0.1", mlflow_server.port)
        again, _ = timed_collect(collector)
        assert_fresh(again, "mlflow")
        assert again.model("churn").registry.champion == "3"  # type: ignore[union-attr]
    finally:
        collector.close()
        proxy.stop()


# ---------------------------------------------------------------- Kubernetes


KUBE_MODELS = """
[[models]]
name = "churn"
registered_model = "churn-classifier"
target = { kind = "Deployment", namespace = "ml", name = "churn" }
"""

KUBE_FAULTS: dict[str, tuple[Fault, str]] = {
    "500": (Fault("status", status=500, times=None), "HTTP 500"),
    "403": (Fault("status", status=403, times=None), "forbidden"),
    "409": (Fault("status", status=409, times=None), "HTTP 409"),
    "429 with Retry-After": (
        Fault("status", status=429, retry_after=30, times=None),
        "HTTP 429",
    ),
    "slow beyond the timeout": (Fault("slow", delay=HANG_S, times=None), "timed out"),
    "truncated JSON": (Fault("truncate", times=None), "malformed JSON"),
    "reset mid-body": (Fault("reset", times=None), "cannot list"),
}


def kube_config_text(kubeconfig_path: Path) -> str:
    return (
        f'[kubernetes]\nkubeconfig = "{kubeconfig_path}"\ntimeout = "{TIMEOUT_S:g}s"\n'
        + KUBE_MODELS
    )


@pytest.mark.parametrize("fault", list(KUBE_FAULTS))
def test_kubernetes_fault_is_stale_with_the_error_then_recovers(
    fault: str, kube: Any, tmp_path: Path
) -> None:
    injected, expected_error = KUBE_FAULTS[fault]
    kube.put(m.deployment("churn", model="churn-classifier", version="3"))
    config_text = kube_config_text(kube.kubeconfig)
    collector = FleetCollector(config_of(config_text))
    try:
        good, _ = timed_collect(collector)
        assert_fresh(good, "kubernetes")
        assert good.model("churn").rollout.serving_version == "3"  # type: ignore[union-attr]

        kube.inject(injected)
        bad, elapsed = timed_collect(collector)
        # 429: the client must not sleep the 30 s Retry-After inside a poll.
        assert elapsed < POLL_BOUND_S, f"a poll took {elapsed:.1f}s under {fault}"
        assert_stale(bad, good, "kubernetes", "rollout")
        churn = bad.model("churn")
        assert churn is not None
        assert expected_error in churn.errors["kubernetes"], churn.errors
        assert churn.rollout.serving_version == "3"  # type: ignore[union-attr]
        assert_check_unknown(write(tmp_path, config_text), "kubernetes")

        kube.clear_faults()
        again, _ = timed_collect(collector)
        assert_fresh(again, "kubernetes")
        assert again.model("churn").rollout.serving_version == "3"  # type: ignore[union-attr]
    finally:
        kube.clear_faults()
        collector.close()


# ---------------------------------------------------------------- DNS


def test_unresolvable_hosts_fail_every_source_fast(tmp_path: Path) -> None:
    host = "mltui-nonexistent.invalid"
    kubeconfig_path = tmp_path / "kubeconfig"
    kubeconfig_path.write_text(json.dumps(kubeconfig({"nowhere": f"https://{host}:6443"})))
    config_text = (
        f'[prometheus]\nurl = "http://{host}:9090"\ntimeout = "{TIMEOUT_S:g}s"\n'
        f'[alertmanager]\nurl = "http://{host}:9093"\ntimeout = "{TIMEOUT_S:g}s"\n'
        f'[mlflow]\ntracking_uri = "http://{host}:5000"\ntimeout = "{TIMEOUT_S:g}s"\n'
        f'[kubernetes]\nkubeconfig = "{kubeconfig_path}"\ntimeout = "{TIMEOUT_S:g}s"\n'
        + KUBE_MODELS
    )
    collector = FleetCollector(config_of(config_text))
    try:
        snapshot, elapsed = timed_collect(collector)
    finally:
        collector.close()
    assert elapsed < 2 * TIMEOUT_S + 2.0 + 1.0  # the slowest deadline (MLflow's), plus slack
    for source in ("prometheus", "alertmanager", "mlflow", "kubernetes"):
        status = snapshot.source(source)
        assert status.status == "error" and status.error, status
    churn = snapshot.model("churn")
    assert churn is not None and set(churn.errors) >= {"prometheus", "mlflow", "kubernetes"}
    assert churn.traffic is None and churn.registry is None and churn.rollout is None
    report = assert_check_unknown(write(tmp_path, config_text), "prometheus")
    assert all(report["sources"][s]["status"] == "error" for s in ("mlflow", "kubernetes"))


# ---------------------------------------------------------------- the TUI under faults


async def _until(pilot: Any, condition: Callable[[], bool], timeout: float = 8.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await pilot.pause(0.05)


async def _keys_are_handled(pilot: Any, app: Any) -> None:
    """Press navigation and sort keys; each must take effect now, not after the poll."""
    table = app.screen.query_one("#fleet-table", DataTable)
    screen = app.screen
    before_sort = screen.sort_key
    started = time.monotonic()
    await pilot.press("s")
    await pilot.pause()
    assert screen.sort_key != before_sort
    await pilot.press("S")
    await pilot.press("down")
    row = table.cursor_row
    await pilot.press("up")
    await pilot.pause()
    assert table.cursor_row == max(0, row - 1)
    await pilot.press("question_mark")
    await pilot.pause()
    assert type(app.screen).__name__ == "HelpScreen"
    await pilot.press("escape")
    await pilot.pause()
    assert app.screen is screen
    # Below HANG_S: keys that waited for a hung source would take at least that long.
    assert time.monotonic() - started < HANG_S - 0.5, "keys waited for the network"


def _status_text(app: Any) -> str:
    return str(app.screen.query_one(StatusBar).render())


@pytest.mark.parametrize("source", ["prometheus", "kubernetes"])
async def test_the_tui_stays_interactive_and_shows_the_source_stale(
    source: str, request: pytest.FixtureRequest
) -> None:
    if source == "prometheus":
        proxy: FaultProxy = request.getfixturevalue("prom_proxy")
        config = config_of(
            prom_config_text(proxy.url).replace("[prometheus]", 'refresh = "1s"\n[prometheus]')
        )

        def break_it() -> None:
            proxy.set("delay", delay=HANG_S)  # every poll now hangs to its timeout

        def mend() -> None:
            proxy.set("pass")

        short = "prom"
    else:
        kube = request.getfixturevalue("kube")
        kube.put(m.deployment("churn", model="churn-classifier", version="3"))
        config = config_of('refresh = "1s"\n' + kube_config_text(kube.kubeconfig))

        def break_it() -> None:
            kube.inject(Fault("status", status=500, times=None))

        def mend() -> None:
            kube.clear_faults()

        short = "k8s"

    app = make_app(config, FleetCollector(config))
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await _until(pilot, lambda: app.snapshot is not None and app.snapshot.source(source).ok)
            break_it()
            # Keep pressing keys while the polls fail (and, for the proxy, hang).
            deadline = time.monotonic() + 8.0
            while not (app.snapshot.source(source).status == "error"):
                await _keys_are_handled(pilot, app)
                assert time.monotonic() < deadline, "the fault never showed"
            await _keys_are_handled(pilot, app)
            await pilot.pause(0.1)
            status = _status_text(app)
            assert f"✗ {short}" in status and "(stale" in status, status
            assert f"{source}: " in status  # the error itself, on the second line
            model = app.snapshot.models[0]
            assert source in model.stale
            mend()
            await _until(pilot, lambda: app.snapshot.source(source).ok)
            await _keys_are_handled(pilot, app)
            await pilot.pause(0.1)
            assert f"✓ {short}" in _status_text(app)
    finally:
        if source == "prometheus":
            proxy.set("pass")
