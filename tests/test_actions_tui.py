"""Actions through the TUI: keys → plan modal → confirm / dry run / cancel → outcome.

The app runs on the recorded fleet (frozen snapshot) while the actions go to the
real Kubernetes stand-in and a real MLflow sqlite store.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Button

from mltui.app import MltuiApp, make_app
from mltui.config import Config, KubernetesConfig, MlflowConfig
from mltui.screens.confirm import ConfirmActionScreen
from mltui.screens.model import ModelScreen
from tests.support import manifests as m
from tests.support.recorded import StaticCollector, fleet_snapshot, frozen_clock, recorded_config

MODEL = "churn-classifier"


def action_config(
    kube: Any, mlflow_uri: str, *, protected: bool = False, read_only: bool = False
) -> Config:
    """The recorded fleet's config, its cluster and registry pointed at the test servers."""
    config = recorded_config(
        kubernetes=KubernetesConfig(kubeconfig=str(kube.kubeconfig), namespace="ml", timeout="3s"),
        mlflow=MlflowConfig(tracking_uri=mlflow_uri, timeout="2s"),
        read_only=read_only,
    )
    if protected:
        models = [
            mc.model_copy(update={"target": mc.target.model_copy(update={"protected": True})})
            if mc.name == "churn" and mc.target is not None
            else mc
            for mc in config.models
        ]
        config = config.model_copy(update={"models": models})
    return config


def setup_cluster(kube: Any) -> None:
    kube.put(m.deployment("churn", model=MODEL, version="3"))
    kube.put(m.canary_deployment("churn", model=MODEL, version="4"))


def action_app(config: Config) -> MltuiApp:
    return make_app(config, StaticCollector(fleet_snapshot()), clock=frozen_clock)


async def until(pilot: Pilot[Any], condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, (
            f"timed out waiting for the app: {pilot.app.screen!r} {notes(pilot.app)}"
        )
        await pilot.pause(0.05)


async def open_modal(pilot: Pilot[Any], key: str = "P") -> ConfirmActionScreen:
    """From the model screen of churn, press the action key and wait for the plan modal."""
    app = pilot.app
    assert isinstance(app, MltuiApp)
    await until(pilot, lambda: app.snapshot is not None)
    app.open_model("churn")
    await until(
        pilot, lambda: isinstance(app.screen, ModelScreen) and bool(app.screen.query("#model-tabs"))
    )
    await pilot.press(key)
    await until(pilot, lambda: isinstance(app.screen, ConfirmActionScreen))
    screen = app.screen
    assert isinstance(screen, ConfirmActionScreen)
    # Clicks land where the buttons are once the modal has been laid out.
    await until(
        pilot,
        lambda: bool(screen.query("#confirm")) and screen.query_one("#confirm").region.area > 0,
    )
    await pilot.pause()
    return screen


def notes(app: Any) -> str:
    return "\n".join(str(n.message) for n in app._notifications)


async def test_confirm_in_the_modal_promotes(kube: Any, mlflow_store: Any, audit_log: Any) -> None:
    setup_cluster(kube)
    app = action_app(action_config(kube, mlflow_store.tracking_uri))
    async with app.run_test(size=(120, 40)) as pilot:
        modal = await open_modal(pilot, "P")
        assert modal.plan.action == "promote" and modal.plan.model == "churn"
        assert len(modal.plan.steps) == 4
        await pilot.click("#confirm")
        await until(pilot, lambda: "promote churn: done" in notes(app))
        assert not isinstance(app.screen, ConfirmActionScreen)
    assert kube.get("Deployment", "ml", "churn-canary")["spec"]["replicas"] == 0
    assert [r["status"] for r in audit_log.read() if r["phase"] == "result"] == ["applied"]


async def test_cancel_in_the_modal_writes_nothing(
    kube: Any, mlflow_store: Any, audit_log: Any
) -> None:
    setup_cluster(kube)
    app = action_app(action_config(kube, mlflow_store.tracking_uri))
    async with app.run_test(size=(120, 40)) as pilot:
        await open_modal(pilot, "B")
        await pilot.press("escape")
        await until(pilot, lambda: "cancelled" in notes(app))
    assert kube.request_count(method="PATCH") == 0
    assert audit_log.read() == []


async def test_dry_run_shows_the_outcome_then_cancel(
    kube: Any, mlflow_store: Any, audit_log: Any
) -> None:
    setup_cluster(kube)
    app = action_app(action_config(kube, mlflow_store.tracking_uri))
    async with app.run_test(size=(120, 40)) as pilot:
        first = await open_modal(pilot, "P")
        await pilot.click("#dry-run")
        # The modal comes back, now with the dry run's outcome.
        await until(
            pilot, lambda: isinstance(app.screen, ConfirmActionScreen) and app.screen is not first
        )
        again = app.screen
        assert isinstance(again, ConfirmActionScreen) and again.outcome is not None
        assert again.outcome.status == "dry_run"
        await pilot.click("#cancel")
        await until(pilot, lambda: "cancelled" in notes(app))
    patches = [r for r in kube.requests if r.method == "PATCH"]
    assert patches and all(r.query.get("dryRun") == "All" for r in patches)
    assert kube.get("Deployment", "ml", "churn-canary")["spec"]["replicas"] == 1


async def test_protected_target_needs_the_model_name_typed(
    kube: Any, mlflow_store: Any, audit_log: Any
) -> None:
    setup_cluster(kube)
    app = action_app(action_config(kube, mlflow_store.tracking_uri, protected=True))
    async with app.run_test(size=(120, 40)) as pilot:
        modal = await open_modal(pilot, "P")
        confirm = modal.query_one("#confirm", Button)
        assert confirm.disabled
        await pilot.click("#confirm")
        await pilot.pause(0.2)
        assert app.screen is modal  # nothing happened
        await pilot.press(*"churn")
        await until(pilot, lambda: not confirm.disabled)
        await pilot.click("#confirm")
        await until(pilot, lambda: "promote churn: done" in notes(app))
    assert kube.get("Deployment", "ml", "churn-canary")["spec"]["replicas"] == 0


async def test_read_only_has_no_action_keys(kube: Any, mlflow_store: Any, audit_log: Any) -> None:
    setup_cluster(kube)
    app = action_app(action_config(kube, mlflow_store.tracking_uri, read_only=True))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.snapshot is not None)
        app.open_model("churn")
        await until(pilot, lambda: isinstance(app.screen, ModelScreen))
        await pilot.press("P", "B", "T")
        await pilot.pause(0.3)
        assert not isinstance(app.screen, ConfirmActionScreen)
        app.request_action("promote", "churn")  # the palette's path refuses too
        await pilot.pause(0.1)
        assert "read-only" in notes(app)
    assert kube.request_count(method="PATCH") == 0
