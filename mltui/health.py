"""The one health evaluator: FleetSnapshot -> checks with ok/warn/crit/unknown.

Both the TUI and `mltui --check` call :func:`evaluate`, so they always agree.

Rules (DESIGN.md §3, issue 4), per model:

- ``latency_p95``, ``error_rate``, ``drift_share``: the value against the model's
  SLO (fleet ``[slo]`` merged with its own overrides); a value at or above a level
  trips it.
- ``rollout``: degraded is critical; progressing or paused warns (canary weight in
  the message); healthy is ok; a state the cluster did not let us read is unknown.
- ``version``: the serving version differs from the MLflow ``champion`` alias ->
  warn. Only when both are known, and never for alias targets (there the champion
  *is* the serving version).
- ``alerts``: firing alerts for the model; critical -> crit, warning -> warn.
  Silenced or inhibited alerts do not count.

"Unknown" means *could not tell*: the source that feeds a check failed for that
model, or its data is stale. Things that are not unknown: a signal the model's
preset does not provide (no error counter), a model with no traffic, and a source
the config does not name — those simply produce no check. A model Prometheus holds
no series for at all (rps unknown rather than 0) is unknown: usually a wrong selector.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from mltui.config import Config, ModelConfig, Slo, Threshold
from mltui.durations import humanize_age
from mltui.fleet import Alert, FleetSnapshot, ModelState, TrafficStats, finite
from mltui.presets import Preset

Status = Literal["ok", "warn", "crit", "unknown"]

# Overall status rule (DESIGN.md §3): crit > unknown > warn > ok.
_RANK: dict[Status, int] = {"ok": 0, "warn": 1, "unknown": 2, "crit": 3}

# Alertmanager severities that count; anything else (info, none) is shown but not judged.
_ALERT_STATUS: dict[str, Status] = {"critical": "crit", "warning": "warn"}


def worst(statuses: Iterable[Status]) -> Status:
    """Overall status: crit if any crit, else unknown if any unknown, else warn, else ok."""
    result: Status = "ok"
    for status in statuses:
        if _RANK[status] > _RANK[result]:
            result = status
    return result


@dataclass(frozen=True)
class Check:
    name: str
    """latency_p95 | error_rate | drift_share | rollout | version | alerts | source:<name>"""
    status: Status
    value: float | str | None = None
    warn: float | None = None
    crit: float | None = None
    message: str = ""


@dataclass(frozen=True)
class ModelHealth:
    name: str
    status: Status
    checks: tuple[Check, ...] = ()

    @property
    def failing(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.status != "ok")


@dataclass(frozen=True)
class FleetHealth:
    status: Status
    models: Mapping[str, ModelHealth] = field(default_factory=dict)


def evaluate(config: Config, snapshot: FleetSnapshot) -> FleetHealth:
    """Judge every model of ``snapshot`` against the config's SLOs.

    A fleet with no model at all is ``unknown``: there is nothing to vouch for,
    and a cron job must not read an empty config as "all good".
    """
    models = {m.name: evaluate_model(config, snapshot, m) for m in snapshot.models}
    status: Status = worst(h.status for h in models.values()) if models else "unknown"
    return FleetHealth(status=status, models=models)


def evaluate_model(config: Config, snapshot: FleetSnapshot, model: ModelState) -> ModelHealth:
    """All checks of one model; its status is the worst of them (ok with no checks)."""
    judge = _ModelJudge(config, snapshot, model)
    checks = [
        *judge.traffic_checks(),
        *judge.drift_checks(),
        *judge.rollout_checks(),
        *judge.version_checks(),
        *judge.alert_checks(),
    ]
    return ModelHealth(
        name=model.name, status=worst(c.status for c in checks), checks=tuple(checks)
    )


# ---------------------------------------------------------------- thresholds


def judge_level(value: float, threshold: Threshold) -> Status:
    """crit when value >= crit, warn when value >= warn, else ok."""
    if threshold.crit is not None and value >= threshold.crit:
        return "crit"
    if threshold.warn is not None and value >= threshold.warn:
        return "warn"
    return "ok"


def _fmt(value: float, unit: str, scale: float = 1.0, near: Iterable[float | None] = ()) -> str:
    """``value * scale`` with as few decimals as tell it apart from the nearby thresholds.

    So 199.6 against warn 200 reads "199.6", not a confusing "200 < warn 200".
    """
    shown = value * scale
    levels = [lv * scale for lv in near if lv is not None]
    start = 0 if abs(shown) >= 10 else (1 if abs(shown) >= 1 else 2)
    for decimals in range(start, 6):
        text = f"{shown:.{decimals}f}"
        if all((float(text) == lv) == (shown == lv) for lv in levels):
            break
    return f"{text}{unit}"


def threshold_message(
    label: str, value: float, threshold: Threshold, status: Status, unit: str, scale: float = 1.0
) -> str:
    """E.g. "p95 207 ms ≥ warn 200 ms" or "p95 41 ms < warn 200 ms"."""
    levels = (threshold.warn, threshold.crit)

    def f(v: float) -> str:
        return _fmt(v, unit, scale, levels)

    shown = f"{label} {f(value)}"
    if status == "crit" and threshold.crit is not None:
        return f"{shown} ≥ crit {f(threshold.crit)}"
    if status == "warn" and threshold.warn is not None:
        return f"{shown} ≥ warn {f(threshold.warn)}"
    lowest = threshold.warn if threshold.warn is not None else threshold.crit
    if lowest is not None:
        return f"{shown} < {'warn' if threshold.warn is not None else 'crit'} {f(lowest)}"
    return shown


# ---------------------------------------------------------------- per model


class _ModelJudge:
    """Builds the checks of one model; each method returns zero or more checks."""

    def __init__(self, config: Config, snapshot: FleetSnapshot, model: ModelState) -> None:
        self.config = config
        self.snapshot = snapshot
        self.model = model
        # A discovered model is not in the config: fleet SLOs and what the snapshot shows.
        self.model_config: ModelConfig | None = config.model(model.name)
        self.slo: Slo = config.slo_for(self.model_config) if self.model_config else config.slo

    # -- helpers

    def configured(self, source: str) -> bool:
        return self.snapshot.source(source).status != "not_configured"

    def problem(self, source: str) -> str | None:
        """Why ``source``'s data for this model cannot be trusted (missing or stale), or None."""
        model = self.model
        if source in model.stale:
            fetched = self.snapshot.source(source).fetched_at
            age = (
                humanize_age((self.snapshot.generated_at - fetched).total_seconds())
                if fetched is not None
                else "unknown age"
            )
            error = model.errors.get(source) or self.snapshot.source(source).error
            return (
                f"{source} data is stale ({age} old): {error}"
                if error
                else f"{source} data is stale ({age} old)"
            )
        error = model.errors.get(source)
        if error:
            return f"{source}: {error}"
        return None

    def preset(self) -> Preset | None:
        name = self.model_config.metrics if self.model_config else self.model.preset
        if name is None:
            return None
        try:
            return self.config.preset(name)
        except KeyError:
            return None

    def _threshold_check(
        self,
        name: str,
        label: str,
        value: float | None,
        threshold: Threshold,
        unit: str,
        scale: float,
    ) -> Check | None:
        """A value vs its SLO; None (no check) when the value is not there to judge."""
        value = finite(value)
        if value is None:
            return None
        status = judge_level(value, threshold)
        message = threshold_message(label, value, threshold, status, unit, scale)
        return Check(name, status, value, threshold.warn, threshold.crit, message)

    # -- latency and errors (prometheus, or a direct scrape reported as prometheus)

    def traffic_checks(self) -> list[Check]:
        if not self.configured("prometheus"):
            return []
        preset = self.preset()
        wanted: list[tuple[str, Threshold]] = []
        # A preset without a histogram (counter-only servers) gives no p95: nothing to check.
        if preset is None or preset.latency_histogram is not None:
            wanted.append(("latency_p95", self.slo.latency_p95_ms))
        # A preset without an error counter has no error rate: null, not unknown.
        if preset is None or preset.errors is not None:
            wanted.append(("error_rate", self.slo.error_rate))
        if not wanted:
            return []

        traffic = self.model.traffic
        problem = self.problem("prometheus")
        if problem is None and traffic is None:
            problem = "prometheus: no data for this model yet"
        if problem is not None:
            stale_value = None
            checks = []
            for name, threshold in wanted:
                if traffic is not None:
                    stats = traffic.overall
                    stale_value = (
                        stats.latency_ms.p95 if name == "latency_p95" else stats.error_rate
                    )
                checks.append(
                    Check(
                        name,
                        "unknown",
                        finite(stale_value),
                        threshold.warn,
                        threshold.crit,
                        problem,
                    )
                )
            return checks

        assert traffic is not None
        stats = traffic.overall
        if _no_series(stats):
            # Not "no traffic" (counters at 0): nothing matched at all, which is
            # usually a wrong selector or preset. That is "could not tell".
            message = "prometheus: no series match this model (check its selector and preset)"
            return [Check(n, "unknown", None, t.warn, t.crit, message) for n, t in wanted]
        checks = []
        for name, threshold in wanted:
            if name == "latency_p95":
                check = self._threshold_check(
                    name, "p95", stats.latency_ms.p95, threshold, " ms", 1.0
                )
            else:
                check = self._threshold_check(
                    name, "errors", stats.error_rate, threshold, "%", 100.0
                )
            # None: no traffic (histogram_quantile is NaN) or nothing to divide — not a failure.
            if check is not None:
                checks.append(check)
        return checks

    # -- drift

    def drift_checks(self) -> list[Check]:
        if not self.configured("drift"):
            return []
        if self.model_config is not None and self.model_config.drift is None:
            return []
        threshold = self.slo.drift_share
        drift = self.model.drift
        problem = self.problem("drift")
        if problem is None and drift is None:
            if self.model_config is None:
                return []  # a discovered model with no drift result has no drift set up
            problem = "drift: no result for this model yet"
        if problem is None and drift is not None and finite(drift.share) is None:
            problem = "drift: the share of drifted features could not be computed"
        if problem is not None:
            value = finite(drift.share) if drift is not None else None
            return [Check("drift_share", "unknown", value, threshold.warn, threshold.crit, problem)]
        assert drift is not None and drift.share is not None
        check = self._threshold_check("drift_share", "drift", drift.share, threshold, "%", 100.0)
        assert check is not None
        if drift.drifted:
            named = ", ".join(drift.drifted[:3]) + (", …" if len(drift.drifted) > 3 else "")
            check = Check(
                check.name,
                check.status,
                check.value,
                check.warn,
                check.crit,
                f"{check.message} ({named})",
            )
        return [check]

    # -- rollout

    def _is_alias(self) -> bool:
        target = self.model_config.target if self.model_config else None
        if target is not None:
            return target.kind == "alias"
        return self.model.rollout is not None and self.model.rollout.kind == "alias"

    def _has_cluster_target(self) -> bool:
        target = self.model_config.target if self.model_config else None
        if target is not None:
            return target.kind != "alias"
        # Discovered models: a rollout (or a kubernetes error) shows there is one.
        return (
            self.model.rollout is not None and self.model.rollout.kind != "alias"
        ) or "kubernetes" in self.model.errors

    def rollout_checks(self) -> list[Check]:
        if self._is_alias():
            source = "mlflow"  # an alias target's rollout is read from the registry
        elif self._has_cluster_target():
            source = "kubernetes"
        else:
            return []
        if not self.configured(source):
            return []
        rollout = self.model.rollout
        problem = self.problem(source)
        if problem is None and rollout is None:
            problem = f"{source}: no data for this model yet"
        if problem is not None:
            value = rollout.state if rollout is not None else None
            return [Check("rollout", "unknown", value, message=problem)]
        assert rollout is not None

        state = rollout.state
        detail = f": {rollout.message}" if rollout.message else ""
        canary = ""
        if rollout.canary_weight is not None:
            version = f" v{rollout.canary_version}" if rollout.canary_version else ""
            canary = f", canary{version} at {rollout.canary_weight}%"
        if state == "degraded":
            return [Check("rollout", "crit", state, message=f"rollout degraded{canary}{detail}")]
        if state in ("progressing", "paused"):
            return [Check("rollout", "warn", state, message=f"rollout {state}{canary}{detail}")]
        if state == "healthy":
            return [Check("rollout", "ok", state, message="rollout healthy")]
        return [Check("rollout", "unknown", state, message=f"rollout state unknown{detail}")]

    # -- version consistency

    def version_checks(self) -> list[Check]:
        if self._is_alias() or not self._has_cluster_target():
            return []
        if not (self.configured("mlflow") and self.configured("kubernetes")):
            return []
        problems = [p for p in (self.problem("kubernetes"), self.problem("mlflow")) if p]
        if problems:
            return [Check("version", "unknown", message="; ".join(problems))]
        serving = self.model.rollout.serving_version if self.model.rollout else None
        champion = self.model.registry.champion if self.model.registry else None
        if serving is None or champion is None:
            return []  # nothing to compare: not a failure
        if serving != champion:
            return [
                Check(
                    "version",
                    "warn",
                    serving,
                    message=f"serving v{serving} but the champion alias is v{champion}",
                )
            ]
        return [Check("version", "ok", serving, message=f"serving the champion v{champion}")]

    # -- alerts

    def alert_checks(self) -> list[Check]:
        if not self.configured("alertmanager"):
            return []
        problem = self.problem("alertmanager")
        if problem is not None:
            return [Check("alerts", "unknown", message=problem)]
        firing = firing_alerts(self.model)
        judged = [(a, _ALERT_STATUS.get((a.severity or "").lower())) for a in firing]
        counted = [(a, s) for a, s in judged if s is not None]
        if not counted:
            return [Check("alerts", "ok", 0.0, message="no firing alerts")]
        status = worst(s for _, s in counted)
        names = ", ".join(f"{a.name} ({a.severity})" for a, _ in counted)
        plural = "s" if len(counted) > 1 else ""
        return [
            Check("alerts", status, float(len(counted)), message=f"firing alert{plural}: {names}")
        ]


def _no_series(stats: TrafficStats) -> bool:
    """True when Prometheus holds no series for the model (rps unknown, not 0)."""
    latency = stats.latency_ms
    return (
        stats.rps is None
        and stats.error_rate is None
        and all(v is None for v in (latency.p50, latency.p95, latency.p99, latency.mean))
    )


def firing_alerts(model: ModelState) -> list[Alert]:
    """Alerts that are firing and not silenced or inhibited."""
    return [a for a in model.alerts if not a.silenced and a.state != "suppressed"]


__all__ = [
    "Check",
    "FleetHealth",
    "ModelHealth",
    "Status",
    "evaluate",
    "evaluate_model",
    "firing_alerts",
    "judge_level",
    "threshold_message",
    "worst",
]
