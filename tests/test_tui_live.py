"""The real app on the harness' real servers: Prometheus (promtool-backfilled, exact
numbers), MLflow (sqlite store) and the Kubernetes API stand-in, through the real
FleetCollector. A TCP fault proxy in front of Prometheus takes it down or makes it hang.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from mltui.app import MltuiApp, make_app
from mltui.config import parse_config
from mltui.screens.help import HelpScreen
from mltui.screens.model import ModelScreen
from mltui.widgets.format import ms, num, pct
from mltui.widgets.statusbar import StatusBar
from tests.support.fault_proxy import FaultProxy
from tests.support.prom_fleet import MODELS_TOML

FLEET = ["churn", "detector", "fraud", "ghost", "idle", "llm", "pricing", "ranker", "sentiment"]


async def until(pilot: Pilot[Any], condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await pilot.pause(0.05)


def table(app: MltuiApp) -> DataTable[Any]:
    return app.screen.query_one("#fleet-table", DataTable)


def rows(app: MltuiApp) -> list[str]:
    t = table(app)
    return [str(t.coordinate_to_cell_key((i, 0)).row_key.value) for i in range(t.row_count)]


def cell(app: MltuiApp, model: str, column: str) -> str:
    return str(table(app).get_cell(model, column))


def prometheus_config(url: str, timeout: str = "5s", extra: str = "") -> str:
    return (
        f'refresh = "1h"\n[prometheus]\nurl = "{url}"\ntimeout = "{timeout}"\n'
        + extra
        + MODELS_TOML
    )


@pytest.fixture
def proxy(prometheus_fleet: Any) -> Iterator[FaultProxy]:
    host, port = prometheus_fleet.url.removeprefix("http://").split(":")
    fault = FaultProxy(host, int(port)).start()
    yield fault
    fault.stop()


async def test_live_fleet_shows_the_expected_models_and_numbers(prometheus_fleet: Any) -> None:
    app = make_app(parse_config(prometheus_config(prometheus_fleet.url), "live.toml"))
    expected = prometheus_fleet.expected
    async with app.run_test(size=(160, 40)) as pilot:
        await until(pilot, lambda: table(app).row_count == 9)
        assert rows(app) == FLEET
        for name in ("churn", "fraud", "ranker", "pricing", "llm"):
            assert cell(app, name, "p95") == ms(expected[name].p95_ms), name
            assert cell(app, name, "rps") == num(expected[name].rps, 1), name
        assert cell(app, "churn", "errors") == pct(expected["churn"].error_rate)
        assert cell(app, "pricing", "errors") == "10.00%"
        assert cell(app, "llm", "errors") == "-"  # vllm exports no error counter: null, not 0
        assert cell(app, "idle", "p95") == "no traffic"
        assert cell(app, "sentiment", "p95") == f"{ms(expected['sentiment'].mean_ms)} avg"
        assert cell(app, "ghost", "p95") == "-"
        assert cell(app, "pricing", "health") == "✖ crit"
        assert "9/9 models" in str(app.screen.query_one("#fleet-header", Static).render())
        assert "✓ prom" in str(app.screen.query_one(StatusBar).render())

        # Sorting by p95, slowest first: known values in order, unknown ones last by name.
        screen: Any = app.screen
        for _ in range(12):
            if screen.sort_key == "p95":
                break
            await pilot.press("s")
        await pilot.press("S")
        assert rows(app) == [
            "llm",
            "pricing",
            "fraud",
            "churn",
            "ranker",
            "detector",
            "ghost",
            "idle",
            "sentiment",
        ]
        # Filtering: substring, and "!" inverts.
        await pilot.press("slash", *"ra")
        assert rows(app) == ["fraud", "ranker"]  # still sorted by p95, slowest first
        await pilot.press("home", "exclamation_mark")
        assert set(rows(app)) == set(FLEET) - {"fraud", "ranker"}


async def test_live_enter_opens_versions_and_rollout(
    prometheus_fleet: Any, kube: Any, mlflow_store: Any
) -> None:
    from tests.support.manifests import deployment

    kube.put(deployment("churn", model="churn-classifier", version="3"))
    text = (
        f'refresh = "1h"\n[prometheus]\nurl = "{prometheus_fleet.url}"\n'
        f'[kubernetes]\nkubeconfig = "{kube.kubeconfig}"\ncontext = "{kube.context}"\nnamespace = "ml"\n'
        f'[mlflow]\ntracking_uri = "{mlflow_store.tracking_uri}"\n'
        '[[models]]\nname = "churn"\nregistered_model = "churn-classifier"\nmetrics = "kserve"\n'
        'selector = { model_name = "churn" }\n'
        'target = { kind = "Deployment", namespace = "ml", name = "churn" }\n'
    )
    app = make_app(parse_config(text, "live.toml"))
    spec = mlflow_store.model("churn-classifier")
    async with app.run_test(size=(140, 40)) as pilot:
        await until(
            pilot,
            lambda: table(app).row_count == 1 and cell(app, "churn", "serving") == "3",
            timeout=60,  # a fresh MLflow store migrates its schema on first use
        )
        assert cell(app, "churn", "versions") == "3/4"
        assert cell(app, "churn", "p95") == ms(prometheus_fleet.expected["churn"].p95_ms)
        await pilot.press("enter")
        await until(
            pilot,
            lambda: (
                isinstance(app.screen, ModelScreen) and bool(app.screen.query("#versions-table"))
            ),
        )
        screen = app.screen
        versions = screen.query_one("#versions-table", DataTable)
        shown = [str(versions.get_row_at(i)[1]) for i in range(versions.row_count)]
        assert shown == [v.version for v in reversed(spec.versions)]
        aliases = {
            str(versions.get_row_at(i)[1]): str(versions.get_row_at(i)[2])
            for i in range(versions.row_count)
        }
        assert aliases["3"] == "champion" and aliases["4"] == "challenger"
        summary = str(screen.query_one("#rollout-summary", Static).render())
        assert "Deployment ml/churn" in summary
        assert "state: healthy" in summary
        assert "serving version: 3" in summary
        # The Traffic tab drew real series from Prometheus.
        pane: Any = screen.query_one("#traffic-pane")
        await until(pilot, lambda: not pane.loading)
        chart: Any = screen.query_one("#chart-latency")
        assert {label for label, _ in chart.lines} >= {"p50", "p95", "p99"}


async def test_live_prometheus_down_mid_session_marks_stale_and_keeps_rows(
    prometheus_fleet: Any, proxy: FaultProxy
) -> None:
    app = make_app(parse_config(prometheus_config(proxy.url, "2s"), "live.toml"))
    async with app.run_test(size=(160, 40)) as pilot:
        await until(pilot, lambda: table(app).row_count == 9)
        p95 = ms(prometheus_fleet.expected["churn"].p95_ms)
        assert cell(app, "churn", "p95") == p95
        proxy.set("refuse")
        await pilot.press("r")
        await until(
            pilot, lambda: app.snapshot is not None and not app.snapshot.source("prometheus").ok
        )
        await pilot.pause(0.1)
        assert rows(app) == FLEET  # no row lost
        stale = table(app).get_cell("churn", "p95")
        assert str(stale) == p95 and "dim" in str(stale.style)
        status = str(app.screen.query_one(StatusBar).render())
        assert "✗ prom (stale" in status
        proxy.set("pass")
        await pilot.press("r")
        await until(
            pilot, lambda: app.snapshot is not None and app.snapshot.source("prometheus").ok
        )
        await pilot.pause(0.1)
        assert "dim" not in str(table(app).get_cell("churn", "p95").style)


async def test_live_input_stays_responsive_while_prometheus_hangs(proxy: FaultProxy) -> None:
    proxy.set("delay", delay=30)  # accepts, never answers within the 2 s timeout
    app = make_app(parse_config(prometheus_config(proxy.url, "2s"), "live.toml"))
    async with app.run_test(size=(160, 40)) as pilot:
        await until(pilot, lambda: app.polling, timeout=5)
        started = time.monotonic()
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape", "slash", *"ch")
        assert app.polling, "the poll should still hang while keys were handled"
        assert time.monotonic() - started < 2.0
        # The poll ends within the source's deadline, as an error value: rows stay.
        await until(pilot, lambda: not app.polling, timeout=10)
        assert app.snapshot is not None and app.snapshot.source("prometheus").status == "error"
        assert rows(app) == ["churn"]  # the typed filter applied meanwhile
        assert cell(app, "churn", "p95") == "-"
