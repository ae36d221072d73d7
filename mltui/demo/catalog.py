"""The demo fleet, as data: which models, on which scikit-learn dataset, how they behave.

Light on purpose (no scikit-learn import here): the config template, the server and
the traffic generator all read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class VersionSpec:
    """One registered version: the estimator to fit and its hyper-parameters."""

    estimator: str
    """"logreg" | "gboost" | "forest" | "ridge" (see train.make_estimator)."""
    params: dict[str, float | int] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoModel:
    """One model of the demo fleet."""

    name: str
    dataset: str
    """load_<dataset> in sklearn.datasets (shipped with scikit-learn, no download)."""
    task: str
    """"binary" | "multiclass" | "regression"."""
    versions: tuple[VersionSpec, ...]
    champion: int
    challenger: int | None
    canary_weight: int
    """Percent of requests the server routes to the challenger."""
    drift_features: tuple[str, ...]
    """Features the traffic generator shifts once drift has started."""
    latency_ms: float
    """Median extra latency of the stable (champion) track."""
    challenger_latency_ms: float
    """Median extra latency of the canary (challenger) track: a slower challenger."""
    error_share: float
    """Share of requests answered with a 500."""
    rps: float
    """Requests per second the traffic generator sends."""


FLEET: tuple[DemoModel, ...] = (
    DemoModel(
        name="cancer",
        dataset="breast_cancer",
        task="binary",
        versions=(
            VersionSpec("logreg", {"C": 0.01}),
            VersionSpec("logreg", {"C": 1.0}),
            VersionSpec("gboost", {"n_estimators": 40, "max_depth": 2}),
        ),
        champion=2,
        challenger=3,
        canary_weight=20,
        drift_features=("mean_radius", "mean_texture", "worst_area"),
        latency_ms=25.0,
        challenger_latency_ms=190.0,
        error_share=0.004,
        rps=3.0,
    ),
    DemoModel(
        name="wine",
        dataset="wine",
        task="multiclass",
        versions=(
            VersionSpec("forest", {"n_estimators": 15, "max_depth": 2}),
            VersionSpec("forest", {"n_estimators": 25, "max_depth": 4}),
            VersionSpec("forest", {"n_estimators": 25, "max_depth": 8}),
        ),
        champion=3,
        challenger=None,
        canary_weight=0,
        drift_features=(),
        latency_ms=40.0,
        challenger_latency_ms=60.0,
        error_share=0.002,
        rps=2.0,
    ),
    DemoModel(
        name="diabetes",
        dataset="diabetes",
        task="regression",
        versions=(
            VersionSpec("ridge", {"alpha": 10.0}),
            VersionSpec("ridge", {"alpha": 0.5}),
        ),
        champion=1,
        challenger=2,
        canary_weight=10,
        drift_features=("bmi", "s5"),
        latency_ms=15.0,
        challenger_latency_ms=20.0,
        error_share=0.03,
        rps=3.0,
    ),
)

CANARY_TAG = "mltui.canary_weight"
"""Registered-model tag holding the canary share (read by the server and by mltui)."""

TARGET = "target"
"""Label column in every dataset parquet and in the inference log (ground truth feedback)."""
PREDICTION = "prediction"
TIMESTAMP = "ts"


def model(name: str) -> DemoModel:
    """The catalog entry called ``name``; KeyError when there is none."""
    for entry in FLEET:
        if entry.name == name:
            return entry
    raise KeyError(name)
