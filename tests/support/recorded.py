"""Recorded fleets for TUI tests: fixed FleetSnapshots served through the collector interface.

``StaticCollector`` has FleetCollector's interface (``source_names``, ``source``,
``collect``, ``close``) and serves snapshots built here from the domain dataclasses,
with every timestamp fixed at :data:`NOW` so SVG snapshots are stable. It stands in
for the *data layer*; what the tests that use it test is the TUI.

``ScriptedSource`` is a :class:`~mltui.collectors.base.Source` whose backend answers
from a dict; a test can take it down or make it hang. Wrapped in the real
FleetCollector it exercises the real poll/merge/stale logic under the TUI.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from mltui.collectors.base import Source, SourceError
from mltui.config import Config, ModelConfig, parse_config
from mltui.fleet import (
    Alert,
    Condition,
    DatasetRef,
    Drift,
    FeatureDrift,
    FleetSnapshot,
    LatencyMs,
    ModelState,
    ModelVersion,
    Registry,
    Revision,
    Rollout,
    SourceStatus,
    Traffic,
    TrafficSeries,
    TrafficStats,
)

NOW = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)
"""The frozen clock of every recorded fleet."""


def frozen_clock() -> datetime:
    return NOW


CONFIG_TOML = """
refresh = "15s"
window = "1h"

[prometheus]
url = "http://127.0.0.1:9"

[mlflow]
tracking_uri = "http://127.0.0.1:9"

[kubernetes]
namespace = "ml"

[alertmanager]
url = "http://127.0.0.1:9"

[[models]]
name = "churn"
registered_model = "churn-classifier"
target = { kind = "Deployment", namespace = "ml", name = "churn", canary = "churn-canary" }
[models.drift]
reference = "mlflow"
current = "/data/churn/*.parquet"

[[models]]
name = "fraud"
target = { kind = "InferenceService", namespace = "ml", name = "fraud" }

[[models]]
name = "recsys"
metrics = "mlserver"
target = { kind = "Rollout", namespace = "ml", name = "recsys" }

[[models]]
name = "pricing"
target = { kind = "alias" }

[[models]]
name = "search-ranker"
target = { kind = "Deployment", namespace = "search", name = "ranker" }
"""


def recorded_config(**overrides: Any) -> Config:
    """The config matching :func:`fleet_snapshot`'s five models."""
    config = parse_config(CONFIG_TOML, "/home/ops/.config/mltui/config.toml")
    return config.model_copy(update=overrides) if overrides else config


def _series(
    base: float, amp: float, n: int = 60, step: float = 60.0, phase: float = 0.0
) -> tuple[tuple[float, float], ...]:
    """A smooth deterministic wave ending at NOW."""
    end = NOW.timestamp()
    return tuple(
        (end - (n - 1 - i) * step, round(base + amp * math.sin(i / 6.0 + phase), 3))
        for i in range(n)
    )


def _versions(name: str, newest: int, champion: int, challenger: int | None) -> Registry:
    versions = []
    for v in range(newest, 0, -1):
        aliases = tuple(
            a for a, n in (("champion", champion), ("challenger", challenger)) if n == v
        )
        versions.append(
            ModelVersion(
                version=str(v),
                run_id=f"{v:02d}ab34cd56ef7890{v:02d}",
                created=NOW - timedelta(days=3 * (newest - v) + 1),
                status="READY",
                aliases=aliases,
                metrics={
                    "auc": round(0.80 + v * 0.01, 4),
                    "f1": round(0.70 + v * 0.005, 4),
                    "logloss": 0.41 - v * 0.01,
                },
                params={
                    "max_depth": str(4 + v % 3),
                    "n_estimators": "200",
                    "lr": "0.1" if v < 3 else "0.05",
                },
                datasets=(
                    DatasetRef(name=f"{name}-train", digest=f"d{v}e5f6a7b8c9", context="training"),
                ),
            )
        )
    aliases = {"champion": str(champion)}
    if challenger is not None:
        aliases["challenger"] = str(challenger)
    return Registry(name=name, versions=tuple(versions), aliases=aliases)


def _traffic(
    p50: float, p95: float, p99: float, rps: float, err: float | None, spark_phase: float
) -> Traffic:
    return Traffic(
        overall=TrafficStats(
            latency_ms=LatencyMs(p50=p50, p95=p95, p99=p99), rps=rps, error_rate=err
        ),
        p95_series=_series(p95, p95 * 0.2, n=30, phase=spark_phase),
    )


def fleet_models() -> tuple[ModelState, ...]:
    """Five models covering every rollout kind and state the fleet screen shows."""
    churn = ModelState(
        name="churn",
        registered_model="churn-classifier",
        preset="kserve",
        traffic=Traffic(
            overall=TrafficStats(
                latency_ms=LatencyMs(p50=41.0, p95=207.1, p99=243.0), rps=6.67, error_rate=0.01
            ),
            tracks={
                "stable": TrafficStats(latency_ms=LatencyMs(p95=190.0), rps=6.0, error_rate=0.008),
                "canary": TrafficStats(latency_ms=LatencyMs(p95=260.0), rps=0.67, error_rate=0.03),
            },
            p95_series=_series(200, 30, n=30),
        ),
        registry=_versions("churn-classifier", 4, 3, 4),
        rollout=Rollout(
            kind="Deployment",
            name="churn",
            namespace="ml",
            state="progressing",
            message="canary churn-canary at 10%",
            serving_version="3",
            canary_version="4",
            canary_weight=10,
            desired=9,
            updated=9,
            ready=9,
            available=9,
            revision="5",
            conditions=(
                Condition(
                    "Available",
                    "True",
                    "MinimumReplicasAvailable",
                    "Deployment has minimum availability.",
                    NOW - timedelta(hours=5),
                ),
                Condition(
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    'ReplicaSet "churn-7d9f" has successfully progressed.',
                    NOW - timedelta(hours=2),
                ),
            ),
            history=(
                Revision(
                    "5", "churn-7d9f8c6b5", "3", 9, NOW - timedelta(hours=2), "ghcr.io/acme/churn:3"
                ),
                Revision(
                    "4", "churn-5c4b3a291", "2", 0, NOW - timedelta(days=4), "ghcr.io/acme/churn:2"
                ),
                Revision(
                    "3", "churn-66f7e8d90", "1", 0, NOW - timedelta(days=9), "ghcr.io/acme/churn:1"
                ),
            ),
        ),
        drift=Drift(
            share=1 / 3,
            drifted=("tenure",),
            features=(
                FeatureDrift("tenure", "wasserstein", 0.42, 0.1, True, "num"),
                FeatureDrift("monthly_charges", "wasserstein", 0.07, 0.1, False, "num"),
                FeatureDrift("contract", "jensenshannon", 0.02, 0.1, False, "cat"),
            ),
            reference_rows=5000,
            current_rows=2400,
            computed_at=NOW - timedelta(minutes=4),
        ),
        alerts=(
            Alert(
                "ChurnLatencyHigh",
                "warning",
                starts_at=NOW - timedelta(minutes=12),
                summary="p95 above 200ms",
            ),
        ),
    )
    fraud = ModelState(
        name="fraud",
        registered_model="fraud",
        preset="kserve",
        traffic=_traffic(12.0, 45.2, 80.3, 120.5, 0.0002, 1.0),
        registry=_versions("fraud", 7, 7, None),
        rollout=Rollout(
            kind="InferenceService",
            name="fraud",
            namespace="ml",
            state="healthy",
            serving_version="7",
            desired=3,
            ready=3,
            available=3,
            conditions=(Condition("Ready", "True", None, None, NOW - timedelta(days=1)),),
            history=(
                Revision(
                    "fraud-predictor-00007",
                    "fraud-predictor-00007",
                    "7",
                    3,
                    NOW - timedelta(days=1),
                ),
            ),
        ),
    )
    recsys = ModelState(
        name="recsys",
        registered_model="recsys",
        preset="mlserver",
        traffic=_traffic(180.0, 512.0, 890.0, 33.3, 0.062, 2.0),
        registry=_versions("recsys", 5, 4, 5),
        rollout=Rollout(
            kind="Rollout",
            name="recsys",
            namespace="ml",
            state="paused",
            message="CanaryPauseStep",
            serving_version="4",
            canary_version="5",
            canary_weight=25,
            step=2,
            steps=4,
            desired=4,
            updated=1,
            ready=4,
            available=4,
            revision="6",
        ),
        alerts=(
            Alert("RecsysErrorsHigh", "critical", starts_at=NOW - timedelta(minutes=30)),
            Alert("RecsysLatencyHigh", "warning", starts_at=NOW - timedelta(minutes=25)),
        ),
    )
    pricing = ModelState(
        name="pricing",
        registered_model="pricing",
        preset="kserve",
        traffic=Traffic(overall=TrafficStats(rps=0.0, note="no traffic")),
        registry=_versions("pricing", 12, 12, None),
        rollout=Rollout(kind="alias", name="pricing", state="healthy", serving_version="12"),
    )
    ranker = ModelState(
        name="search-ranker",
        registered_model="search-ranker",
        preset="kserve",
        traffic=_traffic(22.0, 95.5, 140.0, 410.0, 0.004, 3.0),
        registry=_versions("search-ranker", 2, 2, None),
        rollout=Rollout(
            kind="Deployment",
            name="ranker",
            namespace="search",
            state="degraded",
            message="ProgressDeadlineExceeded",
            serving_version="2",
            desired=6,
            updated=6,
            ready=2,
            available=2,
        ),
    )
    return (churn, fraud, recsys, pricing, ranker)


def _ok(name: str, latency: float, age_s: float = 3.0) -> SourceStatus:
    return SourceStatus(
        name=name, status="ok", latency_ms=latency, fetched_at=NOW - timedelta(seconds=age_s)
    )


def fleet_snapshot() -> FleetSnapshot:
    """Every source up, data 3 s old."""
    return FleetSnapshot(
        generated_at=NOW,
        sources={
            "prometheus": _ok("prometheus", 12.5),
            "mlflow": _ok("mlflow", 48.0),
            "kubernetes": _ok("kubernetes", 21.0),
            "alertmanager": _ok("alertmanager", 6.0),
            "drift": _ok("drift", 2300.0, age_s=240),
        },
        models=fleet_models(),
    )


def prometheus_down(snapshot: FleetSnapshot, minutes: float = 2) -> FleetSnapshot:
    """``snapshot`` as the merge shows it when Prometheus stopped answering ``minutes`` ago."""
    error = "ConnectError: [Errno 111] Connection refused"
    sources = dict(snapshot.sources)
    sources["prometheus"] = SourceStatus(
        name="prometheus",
        status="error",
        error=error,
        latency_ms=3.1,
        fetched_at=NOW - timedelta(minutes=minutes),
    )
    models = tuple(
        replace(m, errors={**m.errors, "prometheus": error}, stale=m.stale | {"prometheus"})
        for m in snapshot.models
    )
    return replace(snapshot, sources=sources, models=models)


def chart_series(window_s: float = 3600.0, canary: bool = True) -> TrafficSeries:
    """Chart data for churn: stable and canary latency, rps and error rate."""
    n = 60
    step = window_s / n
    series: dict[str, tuple[tuple[float, float], ...]] = {
        "p50": _series(41, 5, n, step),
        "p95": _series(200, 30, n, step),
        "p99": _series(240, 40, n, step),
        "rps": _series(6.6, 1.0, n, step, phase=1.0),
        "error_rate": _series(0.01, 0.004, n, step, phase=2.0),
    }
    if canary:
        series |= {
            "canary:p95": _series(260, 20, n, step, phase=0.5),
            "stable:rps": _series(6.0, 0.9, n, step, phase=1.0),
            "canary:rps": _series(0.66, 0.1, n, step, phase=1.0),
            "stable:error_rate": _series(0.008, 0.003, n, step, phase=2.0),
            "canary:error_rate": _series(0.03, 0.01, n, step, phase=2.5),
        }
    return TrafficSeries(window_s=window_s, step_s=step, series=series)


class RecordedPrometheus:
    """What the model screen asks of the Prometheus source: ``series``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, int]] = []

    def series(self, model: ModelConfig, window_s: float, points: int) -> TrafficSeries:
        self.calls.append((model.name, window_s, points))
        return chart_series(window_s, canary=model.name == "churn")


class StaticCollector:
    """FleetCollector's interface over a fixed list of snapshots (the last one repeats)."""

    def __init__(
        self,
        snapshots: FleetSnapshot | Sequence[FleetSnapshot],
        source_names: Sequence[str] = ("prometheus", "mlflow", "kubernetes", "alertmanager"),
        *,
        gate: threading.Event | None = None,
    ) -> None:
        self.snapshots = [snapshots] if isinstance(snapshots, FleetSnapshot) else list(snapshots)
        self._names = list(source_names)
        self.prometheus = RecordedPrometheus()
        self.gate = gate
        """When set, collect() blocks until the event is set (a hanging source)."""
        self.calls: list[list[str] | None] = []
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    @property
    def source_names(self) -> list[str]:
        return list(self._names)

    def source(self, name: str) -> Any:
        if name == "prometheus":
            return self.prometheus
        raise KeyError(name)

    def collect(self, only: Iterable[str] | None = None) -> FleetSnapshot:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            index = min(len(self.calls), len(self.snapshots) - 1)
            self.calls.append(list(only) if only is not None else None)
        try:
            if self.gate is not None:
                self.gate.wait(30)
            return self.snapshots[index]
        finally:
            with self._lock:
                self.active -= 1

    def close(self) -> None:
        pass


class ScriptedSource(Source[Any]):
    """A Source whose backend is a dict; ``down`` makes its fetch fail as a dead server does."""

    def __init__(self, config: Config, name: str, values: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.name = name  # type: ignore[misc]
        self.values = dict(values)
        self.down = False
        self.hang: threading.Event | None = None

    @property
    def timeout(self) -> float:
        return 1.0

    def fetch(self, models: Sequence[ModelConfig]) -> tuple[dict[str, Any], dict[str, str]]:
        if self.hang is not None:
            self.hang.wait(10)
        if self.down:
            raise SourceError("connection refused")
        self.count_request()
        return {m.name: self.values[m.name] for m in models if m.name in self.values}, {}
