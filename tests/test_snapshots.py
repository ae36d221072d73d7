"""SVG snapshots of every screen on recorded data with a frozen clock.

Regenerate with ``python -m pytest tests/test_snapshots.py --snapshot-update``
(the whole file, never one node id) and look at the SVGs in snapshots/ before
committing them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from textual.pilot import Pilot

from mltui.app import MltuiApp, make_app
from mltui.config import Config
from mltui.fleet import FleetSnapshot
from mltui.screens.model import ModelScreen
from tests.support.recorded import (
    StaticCollector,
    fleet_snapshot,
    frozen_clock,
    prometheus_down,
    recorded_config,
)


@pytest.fixture(autouse=True)
def _colour_and_home(monkeypatch: pytest.MonkeyPatch) -> None:
    # Snapshots are in colour whatever the environment says (Textual pops NO_COLOR
    # on the first App it builds, which would make only the first snapshot grey),
    # and the config path the empty screen names is the same on every machine.
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", "/home/ops/.config")


def fleet_app(snapshot: FleetSnapshot | None = None, config: Config | None = None) -> MltuiApp:
    collector = StaticCollector(
        snapshot or fleet_snapshot(),
        source_names=("prometheus", "mlflow", "kubernetes", "alertmanager", "drift"),
    )
    return make_app(config or recorded_config(), collector, clock=frozen_clock)


async def _until(pilot: Pilot[Any], condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "app did not reach the state to snapshot"
        await pilot.pause(0.02)


async def loaded(pilot: Pilot[Any]) -> None:
    """Wait for the recorded poll to land and the table to fill."""
    app = pilot.app
    assert isinstance(app, MltuiApp)
    # The next poll is 15 s away (config refresh), long after the screenshot.
    await _until(pilot, lambda: app.snapshot is not None and not app.polling)
    await pilot.pause()


def open_tab(tab: str, model: str = "churn") -> Callable[[Pilot[Any]], Any]:
    async def run_before(pilot: Pilot[Any]) -> None:
        await loaded(pilot)
        app = pilot.app
        assert isinstance(app, MltuiApp)
        app.open_model(model)
        # Pushed at once, composed a moment later: wait for its tabs.
        await _until(
            pilot,
            lambda: isinstance(app.screen, ModelScreen) and bool(app.screen.query("#model-tabs")),
        )
        screen = app.screen
        assert isinstance(screen, ModelScreen)
        screen.query_one("#model-tabs").active = tab  # type: ignore[attr-defined]
        await pilot.pause()
        if tab == "traffic":
            await _until(pilot, lambda: not screen.query_one("#traffic-pane").loading)  # type: ignore[attr-defined]
        await pilot.pause(0.1)

    return run_before


class TestFleet:
    def test_fleet_80x24(self, snap_compare: Any) -> None:
        """The fleet at 80x24: low-priority columns dropped; the status bar shows no age for
        fresh sources, only drift's (4 min, older than two drift polls) and its slow call."""
        assert snap_compare(fleet_app(), terminal_size=(80, 24), run_before=loaded)

    def test_fleet_160x48(self, snap_compare: Any) -> None:
        """The fleet at 160x48: every column, sparklines; fast calls show no latency."""
        assert snap_compare(fleet_app(), terminal_size=(160, 48), run_before=loaded)

    def test_fleet_sorted_and_filtered(self, snap_compare: Any) -> None:
        """Sorted by p95 descending, filtered to models not matching "pricing"."""

        async def run_before(pilot: Pilot[Any]) -> None:
            await loaded(pilot)
            screen = pilot.app.screen
            screen.set_sort("p95", reverse=True)  # type: ignore[attr-defined]
            screen.filter_text = "!pricing"  # type: ignore[attr-defined]
            screen._refresh_view()  # type: ignore[attr-defined]
            await pilot.pause()

        assert snap_compare(fleet_app(), terminal_size=(120, 24), run_before=run_before)


class TestSourceDown:
    def test_prometheus_down_is_stale(self, snap_compare: Any) -> None:
        """Prometheus down for 2 minutes: its values dimmed, the bar says stale 2m and why."""
        assert snap_compare(
            fleet_app(prometheus_down(fleet_snapshot())), terminal_size=(100, 24), run_before=loaded
        )


class TestEmptyConfig:
    def test_empty_config_explains_how_to_write_one(self, snap_compare: Any) -> None:
        """No config at all: where mltui looks and a minimal example."""
        app = make_app(
            Config(),
            StaticCollector(FleetSnapshot(generated_at=frozen_clock()), source_names=()),
            clock=frozen_clock,
        )
        assert snap_compare(app, terminal_size=(80, 24))


class TestHelp:
    def test_help_screen(self, snap_compare: Any) -> None:
        """? lists every binding with where it works and its id."""

        async def run_before(pilot: Pilot[Any]) -> None:
            await loaded(pilot)
            await pilot.press("question_mark")
            await pilot.pause()

        assert snap_compare(fleet_app(), terminal_size=(100, 36), run_before=run_before)


class TestModelScreen:
    def test_traffic_tab(self, snap_compare: Any) -> None:
        """Latency (p50/p95/p99, canary p95, SLO lines), rps and error-rate charts."""
        assert snap_compare(fleet_app(), terminal_size=(120, 48), run_before=open_tab("traffic"))

    def test_versions_tab_compare(self, snap_compare: Any) -> None:
        """Versions with aliases; v3 and v4 marked and compared, differences only."""

        async def run_before(pilot: Pilot[Any]) -> None:
            await open_tab("versions")(pilot)
            await pilot.press("m", "down", "m", "c", "d")
            await pilot.pause()

        assert snap_compare(fleet_app(), terminal_size=(120, 32), run_before=run_before)

    def test_rollout_tab(self, snap_compare: Any) -> None:
        """Deployment with a 10% canary: replicas, conditions, ReplicaSet history."""
        assert snap_compare(fleet_app(), terminal_size=(120, 32), run_before=open_tab("rollout"))

    def test_rollout_tab_argo_paused(self, snap_compare: Any) -> None:
        """An Argo Rollout paused at canary step 2 of 4."""
        assert snap_compare(
            fleet_app(), terminal_size=(100, 24), run_before=open_tab("rollout", "recsys")
        )

    def test_drift_tab(self, snap_compare: Any) -> None:
        """Per-feature drift sorted by score."""
        assert snap_compare(fleet_app(), terminal_size=(100, 24), run_before=open_tab("drift"))

    def test_drift_not_configured(self, snap_compare: Any) -> None:
        """A model without [models.drift] says so honestly."""
        assert snap_compare(
            fleet_app(), terminal_size=(100, 24), run_before=open_tab("drift", "fraud")
        )

    def test_alerts_tab(self, snap_compare: Any) -> None:
        """Firing alerts with severity and age."""
        assert snap_compare(
            fleet_app(), terminal_size=(100, 24), run_before=open_tab("alerts", "recsys")
        )


class TestDriftDistributions:
    """The Drift tab with distributions computed by the drift collector (owned by the drift issue)."""

    @staticmethod
    def _with_histograms() -> FleetSnapshot:
        from dataclasses import replace

        from mltui.fleet import FeatureDrift

        snapshot = fleet_snapshot()
        churn = snapshot.model("churn")
        assert churn is not None and churn.drift is not None
        bins = tuple(f"{x:g}" for x in range(0, 72, 6))
        ref = (0.02, 0.05, 0.09, 0.13, 0.16, 0.16, 0.14, 0.11, 0.07, 0.04, 0.02, 0.01)
        cur = (0.10, 0.16, 0.19, 0.17, 0.13, 0.09, 0.06, 0.04, 0.03, 0.02, 0.01, 0.0)
        features = (
            FeatureDrift("tenure", "wasserstein", 0.42, 0.1, True, "num", bins, ref, cur),
            FeatureDrift(
                "contract",
                "jensenshannon",
                0.02,
                0.1,
                False,
                "cat",
                ("month", "one_year", "two_year"),
                (0.55, 0.25, 0.20),
                (0.56, 0.24, 0.20),
            ),
        )
        drift = replace(churn.drift, features=features, share=0.5, drifted=("tenure",))
        models = tuple(replace(m, drift=drift) if m.name == "churn" else m for m in snapshot.models)
        return replace(snapshot, models=models)

    def test_drift_tab_with_distribution(self, snap_compare: Any) -> None:
        """The most drifted feature is highlighted; its reference vs current histogram below."""
        assert snap_compare(
            fleet_app(self._with_histograms()),
            terminal_size=(100, 32),
            run_before=open_tab("drift"),
        )


class TestActionModal:
    """The plan modal of the actions (promote / rollback / retrain), on the real stand-in."""

    def test_promote_plan_modal(
        self, snap_compare: Any, kube: Any, mlflow_store: Any, audit_log: Any
    ) -> None:
        """Promote churn: the four steps (two cluster patches, two registry writes), their
        field changes and preconditions, Cancel focused, Dry run and Confirm beside it."""
        from tests.test_actions_tui import action_app, action_config, open_modal, setup_cluster

        setup_cluster(kube)
        app = action_app(action_config(kube, mlflow_store.tracking_uri))

        async def run_before(pilot: Pilot[Any]) -> None:
            await open_modal(pilot, "P")
            await pilot.pause(0.1)

        assert snap_compare(app, terminal_size=(110, 36), run_before=run_before)
