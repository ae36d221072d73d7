"""Pilot tests: the real app driven by key presses, on recorded or scripted fleets.

The collectors under these tests are either StaticCollector (fixed snapshots: the
TUI is what is tested) or the real FleetCollector over ScriptedSources (the real
poll/merge/stale logic, with a backend a test can take down or hang).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from textual._compositor import CompositorUpdate
from textual.command import CommandPalette
from textual.content import Content
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from mltui.app import POLL_SLOW_S, MltuiApp, make_app
from mltui.collectors.collect import FleetCollector
from mltui.config import Config
from mltui.fleet import FleetSnapshot, LatencyMs
from mltui.screens.fleet import FleetScreen
from mltui.screens.help import HelpScreen
from mltui.screens.model import ModelScreen
from mltui.widgets.statusbar import StatusBar, changed_columns, content_lines
from tests.support.recorded import (
    ScriptedSource,
    StaticCollector,
    fleet_models,
    fleet_snapshot,
    frozen_clock,
    prometheus_down,
    recorded_config,
)

SIZE = (100, 30)


async def until(pilot: Pilot[Any], condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Let the app run until ``condition`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await pilot.pause(0.02)


def table(app: MltuiApp) -> DataTable[Any]:
    return app.screen.query_one("#fleet-table", DataTable)


def row_names(app: MltuiApp) -> list[str]:
    t = table(app)
    return [str(t.coordinate_to_cell_key((i, 0)).row_key.value) for i in range(t.row_count)]


def cell(app: MltuiApp, model: str, column: str) -> str:
    return str(table(app).get_cell(model, column))


def status_text(app: MltuiApp) -> str:
    return str(app.screen.query_one(StatusBar).render())


def static_app(
    snapshots: Any = None, config: Config | None = None, **kwargs: Any
) -> tuple[MltuiApp, StaticCollector]:
    collector = StaticCollector(snapshots or fleet_snapshot(), **kwargs)
    return make_app(config or recorded_config(), collector, clock=frozen_clock), collector


async def test_fleet_shows_every_model_with_its_numbers() -> None:
    app, _ = static_app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app).row_count == 5)
        assert row_names(app) == ["churn", "fraud", "pricing", "recsys", "search-ranker"]
        assert cell(app, "churn", "p95") == "207ms"
        assert cell(app, "churn", "rollout") == "progressing 10%"
        assert cell(app, "churn", "errors") == "1.00%"
        assert cell(app, "fraud", "rps") == "120.5"
        assert cell(app, "pricing", "p95") == "no traffic"
        assert cell(app, "recsys", "alerts") == "2"
        header = str(app.screen.query_one("#fleet-header", Static).render())
        assert "5/5 models" in header


async def test_filter_substring_and_inverted() -> None:
    app, _ = static_app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app).row_count == 5)
        await pilot.press("slash", *"rank")
        assert row_names(app) == ["search-ranker"]
        assert "1/5 models" in str(app.screen.query_one("#fleet-header", Static).render())
        await pilot.press(
            "home", "delete", "delete", "delete", "delete", "exclamation_mark", *"rank"
        )
        assert row_names(app) == ["churn", "fraud", "pricing", "recsys"]
        await pilot.press("enter")  # keeps the filter, back to the table
        assert app.focused is table(app)
        await pilot.press("escape")  # clears it
        assert len(row_names(app)) == 5


async def test_sort_by_p95_then_reverse_keeps_unknown_last() -> None:
    app, _ = static_app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app).row_count == 5)
        screen = app.screen
        assert isinstance(screen, FleetScreen)
        for _ in range(12):
            if screen.sort_key == "p95":
                break
            await pilot.press("s")
        assert screen.sort_key == "p95"
        assert row_names(app) == ["fraud", "search-ranker", "churn", "recsys", "pricing"]
        await pilot.press("S")
        assert row_names(app) == ["recsys", "churn", "search-ranker", "fraud", "pricing"]
        assert "p95 ↓" in str(
            table(app)
            .ordered_columns[[c.key.value for c in table(app).ordered_columns].index("p95")]
            .label
        )


async def test_enter_opens_model_screen_with_versions_and_rollout() -> None:
    app, collector = static_app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app).row_count == 5)
        await pilot.press("enter")  # cursor on the first row: churn
        await until(pilot, lambda: isinstance(app.screen, ModelScreen))
        screen = app.screen
        assert isinstance(screen, ModelScreen) and screen.model == "churn"
        versions = screen.query_one("#versions-table", DataTable)
        assert versions.row_count == 4
        assert [str(versions.get_row_at(i)[1]) for i in range(4)] == ["4", "3", "2", "1"]
        assert str(versions.get_row_at(0)[2]) == "challenger"
        assert str(versions.get_row_at(1)[2]) == "champion"
        summary = str(screen.query_one("#rollout-summary", Static).render())
        assert "state: progressing" in summary
        assert "canary: v4 at 10% of traffic" in summary
        assert "replicas: desired 9 updated 9 ready 9 available 9" in summary
        history = screen.query_one("#history-table", DataTable)
        assert history.row_count == 3
        # The charts asked Prometheus for churn's series over the config's 1h window.
        await until(pilot, lambda: collector.prometheus.calls != [])
        assert collector.prometheus.calls[0][:2] == ("churn", 3600.0)
        await pilot.press("escape")
        assert isinstance(app.screen, FleetScreen)


async def test_versions_compare_differences_only() -> None:
    app, _ = static_app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app).row_count == 5)
        app.open_model("churn")
        await until(pilot, lambda: isinstance(app.screen, ModelScreen))
        await pilot.press("right_square_bracket")  # Versions tab
        await pilot.press("m", "down", "m", "c")
        await pilot.pause()
        compare = app.screen.query_one("#compare-table", DataTable)
        assert compare.display
        rows = {
            str(compare.get_row_at(i)[0]): tuple(compare.get_row_at(i)[1:])
            for i in range(compare.row_count)
        }
        assert rows["metric auc"] == ("0.83", "0.84")
        assert rows["param n_estimators"] == ("200", "200")
        await pilot.press("d")
        keys = [str(compare.get_row_at(i)[0]) for i in range(compare.row_count)]
        assert "param n_estimators" not in keys and "metric auc" in keys


async def test_window_keys_refetch_series() -> None:
    app, collector = static_app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app).row_count == 5)
        app.open_model("churn")
        await until(pilot, lambda: collector.prometheus.calls != [])
        await pilot.press("4")
        await until(pilot, lambda: any(c[1] == 86400.0 for c in collector.prometheus.calls))


async def test_help_lists_every_binding_with_remapped_keys() -> None:
    config = recorded_config(keys={"refresh": "f5"})
    app, collector = static_app(config=config)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app).row_count == 5)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        help_table = app.screen.query_one("#help-table", DataTable)
        rows = [
            tuple(str(c) for c in help_table.get_row_at(i)) for i in range(help_table.row_count)
        ]
        ids = {r[3] for r in rows}
        assert {
            "quit",
            "help",
            "refresh",
            "pause",
            "filter",
            "sort",
            "back",
            "mark",
            "compare",
            "promote",
        } <= ids
        assert ("global", "f5", "Refresh", "refresh") in rows
        await pilot.press("escape")
        assert isinstance(app.screen, FleetScreen)
        await until(pilot, lambda: not app.polling)
        before = len(collector.calls)
        await pilot.press("f5")
        await until(pilot, lambda: len(collector.calls) > before)


async def test_read_only_hides_action_bindings() -> None:
    app, _ = static_app(config=recorded_config(read_only=True))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app).row_count == 5)
        active = {b.binding.id for b in app.active_bindings.values() if b.enabled}
        assert "refresh" in active and "promote" not in active
        await pilot.press("question_mark")
        help_table = app.screen.query_one("#help-table", DataTable)
        ids = {str(help_table.get_row_at(i)[3]) for i in range(help_table.row_count)}
        assert "promote" not in ids and "rollback" not in ids and "retrain" not in ids
    writable, _ = static_app()
    async with writable.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(writable).row_count == 5)
        active = {b.binding.id for b in writable.active_bindings.values() if b.enabled}
        assert "promote" in active


async def test_palette_jumps_to_a_model() -> None:
    app, _ = static_app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app).row_count == 5)
        await pilot.press("colon")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"model recsys")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ModelScreen))
        assert isinstance(app.screen, ModelScreen) and app.screen.model == "recsys"


async def test_input_stays_responsive_while_a_collect_hangs() -> None:
    gate = threading.Event()
    app, collector = static_app(gate=gate)
    try:
        async with app.run_test(size=SIZE) as pilot:
            # The first frame is up before the collector returned anything.
            await until(pilot, lambda: app.polling)
            assert table(app).row_count == 0
            # A poll shows "polling…" only once it is slow (past POLL_SLOW_S).
            assert "starting…" in status_text(app)
            await until(pilot, lambda: "polling…" in status_text(app), timeout=POLL_SLOW_S + 3)
            assert app.polling and app.poll_slow
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape")
            await pilot.press("slash", *"chu")
            assert app.screen.query_one("#filter").has_focus
            await pilot.press("r")  # typed into the filter, not a second poll
            assert len(collector.calls) == 1
            gate.set()
            await until(pilot, lambda: table(app).row_count == 1)  # "chur" matches churn only
            assert row_names(app) == ["churn"]
    finally:
        gate.set()


def scripted_fleet(
    refresh: float = 15.0,
) -> tuple[Config, dict[str, ScriptedSource], FleetCollector]:
    """The real FleetCollector over scripted Prometheus and MLflow backends."""
    config = recorded_config(refresh=refresh)
    models = {m.name: m for m in fleet_models()}
    sources = {
        "prometheus": ScriptedSource(
            config, "prometheus", {n: m.traffic for n, m in models.items()}
        ),
        "mlflow": ScriptedSource(config, "mlflow", {n: m.registry for n, m in models.items()}),
    }
    return config, sources, FleetCollector(config, sources=sources)


async def test_source_down_mid_session_is_stale_without_losing_rows() -> None:
    config, sources, collector = scripted_fleet()
    app = make_app(config, collector)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app).row_count == 5)
        assert cell(app, "churn", "p95") == "207ms"
        sources["prometheus"].down = True
        await pilot.press("r")
        await until(
            pilot,
            lambda: (
                app.snapshot is not None and app.snapshot.source("prometheus").status == "error"
            ),
        )
        await pilot.pause(0.05)
        assert row_names(app) == ["churn", "fraud", "pricing", "recsys", "search-ranker"]
        churn_p95 = table(app).get_cell("churn", "p95")
        assert str(churn_p95) == "207ms"  # the last good value stays…
        assert "dim" in str(churn_p95.style)  # …visibly stale
        status = str(app.screen.query_one(StatusBar).render())
        assert "✗ prom (stale <1m)" in status  # ages in minutes: seconds would tick
        assert "prometheus: connection refused" in status
        # Back up: fresh again.
        sources["prometheus"].down = False
        await pilot.press("r")
        await until(
            pilot, lambda: app.snapshot is not None and app.snapshot.source("prometheus").ok
        )
        await pilot.pause(0.05)
        assert "dim" not in str(table(app).get_cell("churn", "p95").style)


async def test_updates_in_place_keep_the_cursor() -> None:
    first = fleet_snapshot()
    faster = replace(
        first,
        models=tuple(
            replace(
                m,
                traffic=replace(
                    m.traffic, overall=replace(m.traffic.overall, latency_ms=LatencyMs(p95=150.0))
                ),
            )
            if m.name == "churn" and m.traffic
            else m
            for m in first.models
        ),
    )
    app, collector = static_app([first, faster])
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app).row_count == 5)
        await pilot.press("down", "down")
        assert table(app).cursor_row == 2
        await pilot.press("r")
        await until(pilot, lambda: cell(app, "churn", "p95") == "150ms")
        assert table(app).cursor_row == 2
        assert len(collector.calls) == 2


async def test_pause_and_resume() -> None:
    app, collector = static_app(config=recorded_config(refresh=0.05))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(collector.calls) >= 3)
        await pilot.press("space")
        assert app.paused
        assert "PAUSED" in str(app.screen.query_one(StatusBar).render())
        await pilot.pause(0.1)  # a poll in flight may still land
        paused_at = len(collector.calls)
        await pilot.pause(0.4)
        assert len(collector.calls) == paused_at
        await pilot.press("space")
        assert not app.paused
        await until(pilot, lambda: len(collector.calls) >= paused_at + 3)


class SlowCollector(StaticCollector):
    def collect(self, only: Any = None) -> FleetSnapshot:
        time.sleep(0.03)
        return super().collect(only)


async def test_refresh_loop_never_overlaps() -> None:
    collector = SlowCollector(fleet_snapshot())
    app = make_app(recorded_config(refresh=0.01), collector, clock=frozen_clock)
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(5):  # hammer refresh while the timer also fires
            await pilot.press("r")
        await until(pilot, lambda: len(collector.calls) >= 12)
        assert collector.max_active == 1
        assert app.max_concurrent_polls == 1


async def test_drift_runs_on_its_own_cadence() -> None:
    collector = StaticCollector(fleet_snapshot(), source_names=("prometheus", "mlflow", "drift"))
    app = make_app(recorded_config(refresh=0.05), collector, clock=frozen_clock)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(collector.calls) >= 4)
        assert collector.calls[0] == ["prometheus", "mlflow"]
        assert ["drift"] in collector.calls
        # Fast polls continue without waiting for drift's (much slower) next turn.
        assert collector.calls.count(["drift"]) == 1


async def test_empty_config_says_how_to_write_one() -> None:
    app = make_app(
        Config(), StaticCollector(FleetSnapshot(generated_at=frozen_clock()), source_names=())
    )
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        empty = app.screen.query_one("#empty", Static)
        assert empty.display and not table(app).display
        text = str(empty.render())
        assert "config.toml" in text and "[[models]]" in text and "[prometheus]" in text


async def test_no_color_is_respected(monkeypatch: Any) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app, _ = static_app()
    assert app.no_color
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app).row_count == 5)
        # Health reads without colour: a symbol and a word.
        assert cell(app, "recsys", "health").endswith("crit") or cell(
            app, "recsys", "health"
        ).endswith("unkn")


class FailingCollector(StaticCollector):
    """Serves one snapshot, then raises: a bug in the data layer, not a source error."""

    def collect(self, only: Any = None) -> FleetSnapshot:
        if self.calls:
            self.calls.append(None)
            raise RuntimeError("collector broke")
        return super().collect(only)


async def test_a_failing_poll_keeps_the_rows_and_says_why() -> None:
    collector = FailingCollector(fleet_snapshot())
    app = make_app(recorded_config(), collector, clock=frozen_clock)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app).row_count == 5)
        await pilot.press("r")
        await until(pilot, lambda: app.poll_error is not None)
        assert "RuntimeError: collector broke" in app.poll_error
        assert table(app).row_count == 5 and cell(app, "churn", "p95") == "207ms"
        assert not app.polling  # the loop carries on
        await pilot.press("r")
        await until(pilot, lambda: len(collector.calls) == 3)


async def test_theme_comes_from_the_config() -> None:
    app, _ = static_app(config=recorded_config(theme="nord"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.theme == "nord"
    bad, _ = static_app(config=recorded_config(theme="no-such-theme"))
    async with bad.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert bad.theme == "textual-dark"
        assert any("no-such-theme" in str(n.message) for n in bad._notifications)


def test_drift_overlay_keeps_each_polls_newest_data() -> None:
    from mltui.app import overlay_drift

    full = fleet_snapshot()
    fast = replace(full, models=tuple(replace(m, drift=None) for m in full.models))
    merged = overlay_drift(fast, full)
    churn = merged.model("churn")
    assert churn is not None and churn.drift is not None and churn.drift.share == 1 / 3
    assert merged.model("fraud") == fast.model("fraud")  # no drift there: unchanged
    assert overlay_drift(fast, None) is fast


def test_importing_the_app_loads_no_heavy_library() -> None:
    import subprocess
    import sys

    code = (
        "import sys; import mltui.app, mltui.screens.fleet; "
        "heavy = [m for m in ('mlflow', 'pandas', 'kubernetes', 'evidently', 'sklearn') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


async def test_an_unchanged_poll_sends_no_cell_updates() -> None:
    app, collector = static_app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app).row_count == 5)
        t = table(app)
        updates: list[Any] = []
        original = t.update_cell
        t.update_cell = lambda *a, **k: updates.append(a) or original(*a, **k)  # type: ignore[method-assign]
        cleared: list[bool] = []
        original_clear = t.clear
        t.clear = lambda *a, **k: cleared.append(True) or original_clear(*a, **k)  # type: ignore[method-assign]
        await pilot.press("r")
        await until(pilot, lambda: len(collector.calls) == 2 and not app.polling)
        await pilot.pause(0.05)
        assert updates == [] and cleared == []


# ------------------------------------------------------------- terminal output


class Wire:
    """What the app sends to its terminal: every screen update, rendered to the escape
    sequences the real driver writes (Pilot's headless driver writes nothing itself).
    """

    def __init__(self, app: MltuiApp) -> None:
        self.updates: list[str] = []
        display = app._display

        def tap(screen: Any, renderable: Any) -> None:
            if isinstance(renderable, CompositorUpdate):
                self.updates.append(renderable.render_segments(app.console))
            display(screen, renderable)

        app._display = tap  # type: ignore[method-assign]

    @property
    def bytes(self) -> int:
        return sum(len(u.encode()) for u in self.updates)

    @property
    def text(self) -> str:
        """The characters written, without escape sequences."""
        return ANSI.sub("", "".join(self.updates))

    def clear(self) -> None:
        self.updates.clear()


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Clock:
    """A clock a test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def test_an_idle_fleet_writes_nothing_to_the_terminal() -> None:
    """Polls with unchanged data and age ticks with fresh data send not one byte."""
    app, collector = static_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: table(app).row_count == 5 and not app.polling)
        await pilot.pause(0.1)
        wire = Wire(app)
        for polls in (2, 3, 4):
            app.poll_now()
            await until(pilot, lambda n=polls: len(collector.calls) == n and not app.polling)  # type: ignore[misc]
        screen: Any = app.screen
        screen._refresh_status()  # what the age tick does
        await pilot.pause(0.1)
        assert wire.updates == [], wire.text
        # The same TUI does write when something changes: the tap sees real output.
        screen.set_sort("p95")
        await pilot.pause(0.1)
        assert "sort p95" in wire.text


async def test_a_slow_poll_rewrites_only_the_state_cells() -> None:
    """ "polling…" appears only once a poll is slow, and the flip rewrites the state word,
    not the whole status line (sources stay put: the state has a fixed width)."""
    gate = threading.Event()
    gate.set()
    app, collector = static_app(gate=gate)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: table(app).row_count == 5 and not app.polling)
        await pilot.pause(0.1)
        line = status_text(app)
        assert line.startswith("live ") and "✓ prom" in line
        wire = Wire(app)
        gate.clear()
        app.poll_now()
        await until(pilot, lambda: app.polling)
        await pilot.pause(POLL_SLOW_S / 2)
        assert wire.updates == []  # not slow yet: nothing on screen moves
        await until(pilot, lambda: "polling…" in status_text(app), timeout=POLL_SLOW_S + 3)
        await pilot.pause(0.1)
        gate.set()
        await until(pilot, lambda: not app.polling)
        await pilot.pause(0.1)
        assert status_text(app) == line
        assert len(wire.updates) == 2, wire.updates
        # The padding cell and the state, nothing else (Textual writes a changed line
        # from the widget's left edge to the last changed cell).
        assert wire.text == " polling… live    "
        assert wire.bytes < 150  # a whole status line is ~450 bytes


async def test_ages_show_once_data_is_old_in_whole_minutes() -> None:
    """Fresh data shows no age; old data shows minutes; stale stays marked; a tick that
    changes no minute writes nothing, one that does rewrites a few cells."""
    clock = Clock(frozen_clock())
    snapshot = fleet_snapshot()  # prometheus 3 s old, drift 4 min old and slow (2.3 s)
    app = make_app(recorded_config(), StaticCollector(snapshot), clock=clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.snapshot is not None and not app.polling)
        await pilot.pause(0.1)
        status = status_text(app)
        assert "✓ prom  ✓ mlflow  ✓ k8s  ✓ am" in status  # fresh: no age, fast: no latency
        assert "✓ drift slow 4m" in status  # a slow call (2.3 s); older than two drift polls
        screen: Any = app.screen
        clock.now += timedelta(seconds=56)  # prometheus data 59 s old: still no age
        screen._refresh_status()
        assert "✓ prom  " in status_text(app)
        clock.now += timedelta(seconds=2)  # 61 s > 2 x 15 s refresh: the age shows
        screen._refresh_status()
        assert "✓ prom 1m  ✓ mlflow 1m" in status_text(app)

        # A source that fails keeps its last data, marked stale with its age.
        clock.now = frozen_clock()
        app.snapshot = prometheus_down(snapshot, minutes=2.5)
        await pilot.pause(0.1)
        assert "✗ prom (stale 2m)  ✓ mlflow  ✓ k8s" in status_text(app)
        wire = Wire(app)
        clock.now += timedelta(seconds=20)  # 2m50s: same minute, nothing to write
        screen._refresh_status()
        await pilot.pause(0.1)
        assert wire.updates == []
        clock.now += timedelta(seconds=20)  # 3m10s (the others still fresh, drift 4m40s)
        screen._refresh_status()
        await pilot.pause(0.1)
        assert "✗ prom (stale 3m)" in status_text(app)
        # Up to the changed cell, not the rest of the line.
        assert wire.text.endswith("(stale 3") and "mlflow" not in wire.text, wire.text


async def test_slow_mark_has_hysteresis() -> None:
    """A source is marked slow from 1 s and stays so until a call is under 0.5 s: a
    latency hovering around one threshold must not flip the mark on every poll."""

    def took(ms: float) -> FleetSnapshot:
        snapshot = fleet_snapshot()
        k8s = replace(snapshot.sources["kubernetes"], latency_ms=ms)
        return replace(snapshot, sources={**snapshot.sources, "kubernetes": k8s})

    app, _ = static_app(took(950))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.snapshot is not None and not app.polling)
        seen = []
        for ms in (950, 1000, 900, 1100, 600, 450, 900):
            app.snapshot = took(ms)
            await pilot.pause()
            seen.append("✓ k8s slow" in status_text(app))
        assert seen == [False, True, True, True, True, False, False]


async def test_a_changed_value_rewrites_its_row_not_the_table() -> None:
    """A poll that moves one p95 sends that row (up to the cell), not every visible row."""
    first = fleet_snapshot()
    faster = replace(
        first,
        models=tuple(
            replace(m, traffic=replace(m.traffic, overall=replace(m.traffic.overall, rps=7.5)))
            if m.name == "fraud" and m.traffic
            else m
            for m in first.models
        ),
    )
    app, collector = static_app([first, faster])
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: table(app).row_count == 5 and not app.polling)
        await pilot.pause(0.1)
        assert cell(app, "fraud", "rps") == "120.5"
        wire = Wire(app)
        app.poll_now()
        await until(pilot, lambda: cell(app, "fraud", "rps") == "7.5" and not app.polling)
        await pilot.pause(0.1)
        assert "7.5" in wire.text
        for other in ("churn", "pricing", "recsys", "model ↑"):  # other rows, the header
            assert other not in wire.text, wire.text
        assert wire.bytes < 600, wire.bytes  # the whole table is ~3 KB even with 5 rows


def test_changed_columns_are_cells_not_characters() -> None:
    """The repaint span of a status-line change, in terminal cells."""
    live = content_lines(Content("live  ✓ prom  ✓ am"))[0]
    polling = content_lines(Content("poll  ✓ prom  ✓ am"))[0]
    assert changed_columns(live, live) is None
    assert changed_columns(live, polling) == (0, 4)
    # A longer age moves what follows: repaint to the end of the longer line.
    assert changed_columns(
        content_lines(Content("✓ prom 9m  ✓ am"))[0], content_lines(Content("✓ prom 10m  ✓ am"))[0]
    ) == (7, 16)
    # A style change alone is a change too.
    bold = content_lines(Content.from_markup("[b]live[/]  ✓ am"))[0]
    assert changed_columns(live[:4] + bold[4:], bold) == (0, 4)
    # Wide characters take two cells.
    wide = content_lines(Content("表 a"))[0]
    assert changed_columns(wide, content_lines(Content("表 b"))[0]) == (3, 4)
