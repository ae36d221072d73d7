"""The domain: a FleetSnapshot and the frozen dataclasses it is made of.

Collectors produce these, `health.py` judges them, screens and `report.py` show them.
Nothing here does I/O or imports a heavy library. Every value a source could not
provide is ``None`` (never NaN, never a made-up zero); why it is missing is in
``ModelState.errors`` or in the source's ``SourceStatus``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from typing import Literal

SourceName = Literal["prometheus", "mlflow", "kubernetes", "alertmanager", "drift"]
SOURCE_NAMES: tuple[SourceName, ...] = (
    "prometheus",
    "mlflow",
    "kubernetes",
    "alertmanager",
    "drift",
)

SourceState = Literal["ok", "error", "not_configured"]
RolloutState = Literal["healthy", "progressing", "paused", "degraded", "unknown"]
Track = Literal["stable", "canary"]


def finite(value: float | None) -> float | None:
    """``value`` as a float, or None when it is missing, NaN or infinite."""
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


@dataclass(frozen=True)
class SourceStatus:
    """How one source's last poll went."""

    name: str
    status: SourceState
    error: str | None = None
    """Human-readable error, already scrubbed of secrets."""
    latency_ms: float | None = None
    """Wall time of the source's whole poll."""
    fetched_at: datetime | None = None
    """When the data now shown was fetched (UTC); older than the poll when stale."""
    requests: int = 0
    """HTTP requests this poll made (benchmarks and tests count them)."""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class LatencyMs:
    """Latency quantiles in milliseconds."""

    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    mean: float | None = None
    """Set for counter-only servers (triton, torchserve), which give no quantiles."""


@dataclass(frozen=True)
class TrafficStats:
    """Serving signals over the rate window, for a model or one of its tracks."""

    latency_ms: LatencyMs = field(default_factory=LatencyMs)
    rps: float | None = None
    error_rate: float | None = None
    """Errors / requests, 0..1; None when the preset has no error counter or no traffic."""
    note: str | None = None
    """E.g. "no traffic" or "mean latency only (counter-only server)"."""


Point = tuple[float, float]
"""(unix seconds, value)"""


@dataclass(frozen=True)
class Traffic:
    """What Prometheus (or a direct scrape) says about a model."""

    overall: TrafficStats = field(default_factory=TrafficStats)
    tracks: Mapping[str, TrafficStats] = field(default_factory=dict)
    """Per track ("stable", "canary") when the target has a canary and the preset splits."""
    p95_series: tuple[Point, ...] = ()
    """p95 latency (ms) over the chart window, coarse: the fleet table's sparkline."""


@dataclass(frozen=True)
class TrafficSeries:
    """Time series for one model's charts (the model screen), fetched on demand."""

    window_s: float
    step_s: float
    series: Mapping[str, tuple[Point, ...]] = field(default_factory=dict)
    """Keys: "p50", "p95", "p99" (ms), "rps", "error_rate"; per track as "canary:p95" etc."""
    error: str | None = None


@dataclass(frozen=True)
class DatasetRef:
    """A dataset logged as an input of an MLflow run."""

    name: str
    digest: str | None = None
    source: str | None = None
    source_type: str | None = None
    context: str | None = None
    """MLflow input tag mlflow.data.context, e.g. "training"."""


@dataclass(frozen=True)
class ModelVersion:
    """One registered model version, with its source run's key facts."""

    version: str
    run_id: str | None = None
    created: datetime | None = None
    status: str | None = None
    source: str | None = None
    description: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    metrics: Mapping[str, float] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    datasets: tuple[DatasetRef, ...] = ()


@dataclass(frozen=True)
class Registry:
    """A registered model in MLflow."""

    name: str
    versions: tuple[ModelVersion, ...] = ()
    """Newest first."""
    aliases: Mapping[str, str] = field(default_factory=dict)
    """alias -> version"""
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def champion(self) -> str | None:
        return self.aliases.get("champion")

    @property
    def challenger(self) -> str | None:
        return self.aliases.get("challenger")

    def version(self, version: str | None) -> ModelVersion | None:
        return next((v for v in self.versions if v.version == version), None)


@dataclass(frozen=True)
class Condition:
    type: str
    status: str
    reason: str | None = None
    message: str | None = None
    last_transition: datetime | None = None


@dataclass(frozen=True)
class Revision:
    """One entry of a target's history (ReplicaSet, Rollout revision, KServe revision)."""

    revision: str
    name: str
    version: str | None = None
    """Model version served by this revision, when it can be read."""
    replicas: int | None = None
    created: datetime | None = None
    image: str | None = None


@dataclass(frozen=True)
class Rollout:
    """The cluster side of a model: what is deployed and how its rollout goes."""

    kind: str
    """Deployment | InferenceService | Rollout | alias"""
    name: str
    namespace: str | None = None
    context: str | None = None
    state: RolloutState = "unknown"
    message: str | None = None
    serving_version: str | None = None
    canary_version: str | None = None
    canary_weight: int | None = None
    """Percent of traffic on the canary; None when no canary is in flight."""
    step: int | None = None
    """Argo canary step index."""
    steps: int | None = None
    desired: int | None = None
    updated: int | None = None
    ready: int | None = None
    available: int | None = None
    revision: str | None = None
    stable_hash: str | None = None
    canary_hash: str | None = None
    resource_version: str | None = None
    conditions: tuple[Condition, ...] = ()
    history: tuple[Revision, ...] = ()
    """Newest first."""


@dataclass(frozen=True)
class Alert:
    name: str
    severity: str | None = None
    state: str = "active"
    """Alertmanager's status.state: active | suppressed | unprocessed"""
    starts_at: datetime | None = None
    summary: str | None = None
    silenced: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FeatureDrift:
    column: str
    method: str
    score: float | None
    threshold: float | None
    drifted: bool
    column_type: str | None = None
    """"num" or "cat"."""
    bins: tuple[str, ...] = ()
    """Histogram bin labels (numeric: left edges; categorical: top categories) for charts."""
    reference_share: tuple[float, ...] = ()
    """Share of reference rows per bin (sums to ~1)."""
    current_share: tuple[float, ...] = ()
    """Share of current rows per bin."""


@dataclass(frozen=True)
class Drift:
    share: float | None
    """Share of drifted features, 0..1."""
    drifted: tuple[str, ...] = ()
    features: tuple[FeatureDrift, ...] = ()
    """Sorted by score, most drifted first."""
    reference_rows: int | None = None
    current_rows: int | None = None
    computed_at: datetime | None = None
    note: str | None = None
    """E.g. how old the newest current row is, or that the share came from drift_query."""


@dataclass(frozen=True)
class ModelState:
    """Everything known about one model at one poll."""

    name: str
    registered_model: str
    preset: str | None = None
    traffic: Traffic | None = None
    registry: Registry | None = None
    rollout: Rollout | None = None
    drift: Drift | None = None
    alerts: tuple[Alert, ...] = ()
    errors: Mapping[str, str] = field(default_factory=dict)
    """source name -> why that source has nothing (or stale data) for this model."""
    stale: frozenset[str] = frozenset()
    """Sources whose data for this model is carried over from an earlier poll."""

    @property
    def serving_version(self) -> str | None:
        """Cluster's serving version; for alias targets (or no cluster) the champion."""
        if self.rollout is not None and self.rollout.serving_version is not None:
            return self.rollout.serving_version
        if self.registry is not None and (self.rollout is None or self.rollout.kind == "alias"):
            return self.registry.champion
        return None


@dataclass(frozen=True)
class FleetSnapshot:
    generated_at: datetime
    sources: Mapping[str, SourceStatus] = field(default_factory=dict)
    models: tuple[ModelState, ...] = ()

    def model(self, name: str) -> ModelState | None:
        return self._by_name.get(name)

    @cached_property
    def _by_name(self) -> dict[str, ModelState]:
        """name -> model, built once: a linear scan per lookup made fleet-wide passes
        O(n²). Safe to cache: the snapshot is frozen (``replace`` builds a new one), and
        cached_property writes the instance dict directly, so it works on frozen dataclasses."""
        index: dict[str, ModelState] = {}
        for m in self.models:
            index.setdefault(m.name, m)  # the first one wins, as the scan did
        return index

    def source(self, name: str) -> SourceStatus:
        return self.sources.get(name) or SourceStatus(name=name, status="not_configured")


__all__ = [
    "SOURCE_NAMES",
    "Alert",
    "Condition",
    "DatasetRef",
    "Drift",
    "FeatureDrift",
    "FleetSnapshot",
    "LatencyMs",
    "ModelState",
    "ModelVersion",
    "Registry",
    "Revision",
    "Rollout",
    "RolloutState",
    "SourceStatus",
    "Traffic",
    "TrafficSeries",
    "TrafficStats",
    "finite",
    "replace",
]
