"""Regression tests for the TUI code review (issue 5 follow-up).

Each test fails on the code before its fix: a crash exiting 0, health evaluated on
the UI thread (and in O(n²)), a chart window key lost during a fetch, quitting
blocked by a hanging poll, and an action that failed silently.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Static

import mltui.app as app_module
from mltui import secrets
from mltui.app import MltuiApp, make_app, overlay_drift, run_app
from mltui.config import Config, ModelConfig
from mltui.fleet import FleetSnapshot, TrafficSeries
from mltui.health import evaluate
from mltui.screens.confirm import start_action_flow
from mltui.screens.model import ModelScreen
from mltui.screens.model_traffic import TrafficPane
from tests.support.recorded import (
    RecordedPrometheus,
    StaticCollector,
    fleet_snapshot,
    frozen_clock,
    recorded_config,
)

SIZE = (100, 30)


async def until(pilot: Pilot[Any], condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Let the app run until ``condition`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await pilot.pause(0.02)


def big_fleet(n: int, *, drift: bool = True) -> tuple[Config, FleetSnapshot]:
    """``n`` models (the recorded five, renamed and repeated) and a config naming each."""
    base_config = recorded_config()
    base = fleet_snapshot()
    templates = base.models
    models = tuple(
        replace(
            templates[i % len(templates)],
            name=f"m{i:05d}",
            drift=templates[i % len(templates)].drift if drift else None,
        )
        for i in range(n)
    )
    configs: list[ModelConfig] = [
        base_config.models[i % len(base_config.models)].model_copy(update={"name": f"m{i:05d}"})
        for i in range(n)
    ]
    return base_config.model_copy(update={"models": configs}), replace(base, models=models)


# ------------------------------------------------------------------ 1. exit code


class CrashingCollector(StaticCollector):
    """A collector that breaks the app while it mounts (as a bug in a screen would)."""

    @property
    def source_names(self) -> list[str]:
        raise RuntimeError("boom while mounting")


def test_a_crash_exits_non_zero() -> None:
    """Textual's run() returns None after an unhandled exception: that is exit 1, not 0."""
    config = recorded_config()
    app = make_app(config, CrashingCollector(fleet_snapshot()), clock=frozen_clock)
    assert run_app(config, app, headless=True) == 1
    assert app.return_code == 1


# ------------------------------------------------------- 2. no heavy work on the UI thread


class SplitCollector(StaticCollector):
    """Fast polls answer without drift; the drift poll answers with it (as the real ones do)."""

    def __init__(self, fast: FleetSnapshot, drift: FleetSnapshot) -> None:
        super().__init__(fast, source_names=("prometheus", "mlflow", "drift"))
        self.drift = drift

    def collect(self, only: Iterable[str] | None = None) -> FleetSnapshot:
        fast = super().collect(only)
        return self.drift if only is not None and list(only) == ["drift"] else fast


async def test_the_ui_thread_evaluates_nothing_per_poll(monkeypatch: Any) -> None:
    config, with_drift = big_fleet(1000)
    fast = replace(with_drift, models=tuple(replace(m, drift=None) for m in with_drift.models))
    config = config.model_copy(update={"refresh": 0.1})
    threads: list[str] = []

    def spy(function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any) -> Any:
            threads.append(threading.current_thread().name)
            return function(*args)

        return wrapper

    monkeypatch.setattr(app_module, "evaluate", spy(evaluate))
    monkeypatch.setattr(app_module, "overlay_drift", spy(overlay_drift))
    collector = SplitCollector(fast, with_drift)
    app = make_app(config, collector, clock=frozen_clock)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: ["drift"] in collector.calls, timeout=20)
        fast_polls = len(collector.calls)
        await until(pilot, lambda: len(collector.calls) >= fast_polls + 3, timeout=20)
        await pilot.pause(0.1)
        snapshot, health = app.snapshot, app.health
    assert snapshot is not None and health is not None
    # The fast polls carry no drift: what is shown was merged with the drift poll's.
    model = snapshot.model("m00000")
    assert model is not None and model.drift is not None and model.drift.share == 1 / 3
    assert any(c.name == "drift_share" for c in health.models["m00000"].checks)
    assert len(threads) >= 2 * 4  # evaluate + overlay for each poll that landed
    assert threading.main_thread().name not in threads


class CountingTuple(tuple):  # type: ignore[type-arg]
    """A tuple that counts how often it is walked."""

    walks = 0

    def __iter__(self) -> Any:
        type(self).walks += 1
        return super().__iter__()


class CountingList(list):  # type: ignore[type-arg]
    walks = 0

    def __iter__(self) -> Any:
        type(self).walks += 1
        return super().__iter__()


def test_evaluate_and_overlay_look_models_up_by_index_not_by_scan() -> None:
    """Per-model lookups use an index built once: the model lists are walked a fixed
    number of times whatever the fleet size (a scan per model walked them N times)."""
    walks = {}
    for n in (100, 1000):
        config, snapshot = big_fleet(n)
        CountingTuple.walks = CountingList.walks = 0
        counted_config = config.model_copy(update={"models": CountingList(config.models)})
        counted = replace(snapshot, models=CountingTuple(snapshot.models))
        fast = replace(
            counted, models=CountingTuple(replace(m, drift=None) for m in snapshot.models)
        )
        evaluate(counted_config, counted)
        overlay_drift(fast, counted)
        walks[n] = (CountingList.walks, CountingTuple.walks)
    assert walks[100] == walks[1000], walks
    assert max(walks[1000]) < 20, walks


def test_the_name_index_follows_copies() -> None:
    """model_copy() copies the cached index along: a copy with new models must not use it."""
    config = recorded_config()
    assert config.model("fraud") is not None  # builds the index
    only_churn = config.model_copy(update={"models": config.models[:1]})
    assert only_churn.model("fraud") is None
    assert only_churn.model("churn") == config.model("churn")
    assert recorded_config() == config  # the cache is not part of equality
    snapshot = fleet_snapshot()
    assert snapshot.model("fraud") is not None
    assert replace(snapshot, models=snapshot.models[:1]).model("fraud") is None


# ------------------------------------------------------- 3. window key during a fetch


class GatedPrometheus(RecordedPrometheus):
    """Series fetches block until ``gate`` is set (a slow Prometheus)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def series(self, model: ModelConfig, window_s: float, points: int) -> TrafficSeries:
        self.calls.append((model.name, window_s, points))
        self.gate.wait(10)
        return TrafficSeries(window_s, window_s / points, {"p95": ((0.0, 1.0),)})


async def test_a_window_key_during_a_fetch_is_not_lost() -> None:
    collector = StaticCollector(fleet_snapshot())
    collector.prometheus = prometheus = GatedPrometheus()
    app = make_app(recorded_config(), collector, clock=frozen_clock)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.snapshot is not None)
        await pilot.press("space")  # paused: no poll will re-load the charts
        app.open_model("churn")
        await until(pilot, lambda: len(prometheus.calls) == 1)
        assert prometheus.calls[0][1] == 3600.0
        await pilot.press("4")  # 24h, while the 1h fetch is still in flight
        prometheus.gate.set()
        await until(pilot, lambda: any(c[1] == 86400.0 for c in prometheus.calls))
        pane = app.screen.query_one(TrafficPane)
        note = pane.query_one("#traffic-note", Static)
        await until(pilot, lambda: not pane.loading and "window 1d" in str(note.render()))
        assert isinstance(app.screen, ModelScreen)


# ------------------------------------------------------- 4. quit during a hanging poll

QUIT_SCRIPT = textwrap.dedent(
    """
    import threading, time
    from mltui.app import make_app, run_app
    from tests.support.recorded import StaticCollector, fleet_snapshot, frozen_clock
    from tests.support.recorded import recorded_config

    hang = threading.Event()  # never set: collect() blocks for 30 s
    config = recorded_config()
    app = make_app(config, StaticCollector(fleet_snapshot(), gate=hang), clock=frozen_clock)
    quit_at = []

    def press_q_once_polling():
        while not app.polling:
            time.sleep(0.02)
        time.sleep(0.2)  # well into the hanging poll
        quit_at.append(time.monotonic())
        app.call_from_thread(app.action_quit)  # what q does

    threading.Thread(target=press_q_once_polling, daemon=True).start()
    code = run_app(config, app, headless=True)
    print("exit", code, "after", round(time.monotonic() - quit_at[0], 3), flush=True)
    """
)


def test_quit_while_a_poll_hangs_exits_at_once(tmp_path: Path) -> None:
    script = tmp_path / "quit_while_polling.py"
    script.write_text(QUIT_SCRIPT)
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=25, env=env
    )
    wall = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-2000:]
    words = done.stdout.split()
    assert words[:2] == ["exit", "0"], done.stdout
    assert float(words[3]) < 1.0, done.stdout  # run() returned at once…
    assert wall < 15, wall  # …and the process ended without waiting for the 30 s hang


# ------------------------------------------------------- 5. action errors are shown

SECRET = "s3cr3t-review-token"


class BrokenEngine:
    """An action engine whose planning fails (e.g. a bug, or a server answering garbage)."""

    closed = False

    def __init__(self, config: Config) -> None:
        self.config = config

    def plan(self, action: str, model: str, state: Any = None) -> Any:
        raise RuntimeError(f"registry answered garbage (token={SECRET})")

    def close(self) -> None:
        BrokenEngine.closed = True


async def test_an_action_that_raises_is_a_visible_error() -> None:
    secrets.register(SECRET)
    collector = StaticCollector(fleet_snapshot())
    app: MltuiApp = make_app(recorded_config(), collector, clock=frozen_clock)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.snapshot is not None)
        start_action_flow(app, "promote", "churn", engine_factory=BrokenEngine)
        await until(pilot, lambda: any(n.severity == "error" for n in app._notifications))
        errors = [n for n in app._notifications if n.severity == "error"]
        assert len(errors) == 1
        assert errors[0].title == "promote churn failed"
        # (Only this part: other tests in the session may have registered common words.)
        assert "answered garbage" in str(errors[0].message)
        assert SECRET not in str(errors[0].message)
        assert BrokenEngine.closed
