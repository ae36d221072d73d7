"""Health rules on constructed snapshots.

health.py is pure logic (snapshot in, verdicts out), so a FleetSnapshot built by
hand is the honest input: every number below is chosen to sit on, just under or
over a threshold, and each test names the rule it pins.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from mltui.config import parse_config
from mltui.fleet import (
    Alert,
    Drift,
    FleetSnapshot,
    LatencyMs,
    ModelState,
    Registry,
    Rollout,
    SourceStatus,
    Traffic,
    TrafficStats,
)
from mltui.health import Check, evaluate, threshold_message, worst

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)

FULL = """
[prometheus]
url = "http://127.0.0.1:9"
[mlflow]
tracking_uri = "sqlite:////nonexistent/mlflow.db"
[kubernetes]
namespace = "ml"
[alertmanager]
url = "http://127.0.0.1:9"

[[models]]
name = "churn"
target = { kind = "Deployment" }
[models.drift]
reference = "mlflow"
current = "/data/churn/*.parquet"

[[models]]
name = "fast"
target = { kind = "Deployment" }
[models.slo]
latency_p95_ms = { warn = 50 }

[[models]]
name = "llm"
metrics = "vllm"
target = { kind = "Deployment" }

[[models]]
name = "gpu"
metrics = "triton"

[[models]]
name = "pricing"
target = { kind = "alias" }
"""

CONFIG = parse_config(FULL, "fleet.toml")


def sources(**overrides: SourceStatus) -> dict[str, SourceStatus]:
    base = {
        name: SourceStatus(name=name, status="ok", latency_ms=5.0, fetched_at=NOW)
        for name in ("prometheus", "mlflow", "kubernetes", "alertmanager", "drift")
    }
    base.update(overrides)
    return base


def traffic(p95: float | None = 100.0, rps: float | None = 10.0, error_rate: float | None = 0.0):
    return Traffic(overall=TrafficStats(LatencyMs(p50=10.0, p95=p95, p99=None), rps, error_rate))


def healthy(name: str = "churn", **changes) -> ModelState:
    """A model every rule passes: fast, no errors, no drift, healthy rollout on the champion."""
    state = ModelState(
        name=name,
        registered_model=name,
        preset=CONFIG.model(name).metrics if CONFIG.model(name) else "kserve",
        traffic=traffic(),
        registry=Registry(name=name, aliases={"champion": "3"}),
        rollout=Rollout(kind="Deployment", name=name, state="healthy", serving_version="3"),
        drift=Drift(share=0.0) if name == "churn" else None,
        alerts=(),
    )
    return replace(state, **changes)


def judge(*models: ModelState, config=CONFIG, **source_overrides: SourceStatus):
    snapshot = FleetSnapshot(generated_at=NOW, sources=sources(**source_overrides), models=models)
    return evaluate(config, snapshot)


def checks_of(health, model: str) -> dict[str, Check]:
    return {c.name: c for c in health.models[model].checks}


# ---------------------------------------------------------------- overall rule


def test_worst_orders_crit_over_unknown_over_warn_over_ok():
    assert worst([]) == "ok"
    assert worst(["ok", "warn"]) == "warn"
    assert worst(["warn", "unknown", "ok"]) == "unknown"
    assert worst(["unknown", "crit", "warn"]) == "crit"


def test_a_healthy_model_passes_every_check():
    health = judge(healthy())
    checks = checks_of(health, "churn")
    assert set(checks) == {
        "latency_p95",
        "error_rate",
        "drift_share",
        "rollout",
        "version",
        "alerts",
    }
    assert {c.status for c in checks.values()} == {"ok"}
    assert health.status == "ok" and health.models["churn"].failing == ()


def test_fleet_status_is_the_worst_model_and_an_empty_fleet_is_unknown():
    warn = healthy("fast", traffic=traffic(p95=60.0))
    crit = healthy("llm", rollout=Rollout(kind="Deployment", name="llm", state="degraded"))
    assert judge(healthy(), warn).status == "warn"
    assert judge(healthy(), warn, crit).status == "crit"
    assert judge().status == "unknown"


# ---------------------------------------------------------------- thresholds


@pytest.mark.parametrize(
    ("p95", "status", "message"),
    [
        (199.6, "ok", "p95 199.6 ms < warn 200 ms"),
        (200.0, "warn", "p95 200 ms ≥ warn 200 ms"),
        (207.1, "warn", "p95 207 ms ≥ warn 200 ms"),
        (400.0, "crit", "p95 400 ms ≥ crit 400 ms"),
    ],
)
def test_latency_p95_trips_at_or_above_each_level(p95, status, message):
    check = checks_of(judge(healthy(traffic=traffic(p95=p95))), "churn")["latency_p95"]
    assert (check.status, check.message) == (status, message)
    assert (check.value, check.warn, check.crit) == (p95, 200, 400)


def test_a_models_slo_overrides_only_the_keys_it_names():
    check = checks_of(judge(healthy("fast", traffic=traffic(p95=60.0))), "fast")["latency_p95"]
    assert check.status == "warn"
    assert (check.warn, check.crit) == (50, 400)  # crit still the fleet's
    assert check.message == "p95 60 ms ≥ warn 50 ms"


@pytest.mark.parametrize(
    ("rate", "status", "message"),
    [
        (0.0, "ok", "errors 0.00% < warn 1.0%"),
        (0.012, "warn", "errors 1.2% ≥ warn 1.0%"),
        (0.05, "crit", "errors 5.0% ≥ crit 5.0%"),
    ],
)
def test_error_rate_against_the_fleet_slo(rate, status, message):
    check = checks_of(judge(healthy(traffic=traffic(error_rate=rate))), "churn")["error_rate"]
    assert (check.status, check.message, check.value) == (status, message, rate)


def test_drift_share_names_the_drifted_features():
    drift = Drift(share=0.4, drifted=("tenure", "plan", "region", "age"))
    check = checks_of(judge(healthy(drift=drift)), "churn")["drift_share"]
    assert check.status == "warn"
    assert check.message == "drift 40% ≥ warn 30% (tenure, plan, region, …)"
    check = checks_of(judge(healthy(drift=Drift(share=0.5))), "churn")["drift_share"]
    assert check.status == "crit"


def test_threshold_message_with_only_a_crit_level():
    from mltui.config import Threshold

    assert (
        threshold_message("p95", 10.0, Threshold(crit=400), "ok", " ms")
        == "p95 10 ms < crit 400 ms"
    )
    assert threshold_message("p95", 10.0, Threshold(), "ok", " ms") == "p95 10 ms"


# ---------------------------------------------------------------- not provided ≠ unknown


def test_no_traffic_is_not_checked_and_not_unknown():
    idle = Traffic(overall=TrafficStats(LatencyMs(), rps=0.0, error_rate=None, note="no traffic"))
    health = judge(healthy(traffic=idle))
    checks = checks_of(health, "churn")
    assert "latency_p95" not in checks and "error_rate" not in checks
    assert health.models["churn"].status == "ok"


def test_no_series_at_all_is_unknown_not_idle():
    nothing = Traffic(
        overall=TrafficStats(LatencyMs(), rps=None, error_rate=None, note="no traffic")
    )
    checks = checks_of(judge(healthy(traffic=nothing)), "churn")
    assert checks["latency_p95"].status == checks["error_rate"].status == "unknown"
    assert "no series match" in checks["latency_p95"].message


def test_a_preset_without_an_error_counter_has_no_error_check_even_when_prometheus_fails():
    state = healthy("llm", traffic=None, errors={"prometheus": "ConnectError: refused"})
    checks = checks_of(judge(state), "llm")
    assert "error_rate" not in checks
    assert checks["latency_p95"].status == "unknown"


def test_counter_only_presets_have_no_p95_to_check():
    gpu = healthy("gpu", traffic=Traffic(TrafficStats(LatencyMs(mean=30.0), 5.0, 0.02)))
    checks = checks_of(judge(gpu), "gpu")
    assert "latency_p95" not in checks
    assert checks["error_rate"].status == "warn"


def test_sources_that_are_not_configured_make_no_checks():
    config = parse_config('[[models]]\nname = "churn"\ntarget = { kind = "alias" }\n', "min.toml")
    bare = ModelState(name="churn", registered_model="churn", preset="kserve")
    not_configured = {
        name: SourceStatus(name=name, status="not_configured")
        for name in ("prometheus", "mlflow", "kubernetes", "alertmanager")
    }
    snapshot = FleetSnapshot(generated_at=NOW, sources=not_configured, models=(bare,))
    health = evaluate(config, snapshot)
    assert health.models["churn"].checks == ()
    assert health.status == "ok"


def test_a_model_without_drift_configured_has_no_drift_check():
    assert "drift_share" not in checks_of(judge(healthy("fast")), "fast")


# ---------------------------------------------------------------- source failures


def test_a_prometheus_error_makes_latency_and_errors_unknown_with_the_error():
    error = "ConnectError: [Errno 111] Connection refused"
    state = healthy(traffic=None, errors={"prometheus": error})
    health = judge(state, prometheus=SourceStatus("prometheus", "error", error))
    checks = checks_of(health, "churn")
    for name in ("latency_p95", "error_rate"):
        assert checks[name].status == "unknown"
        assert error in checks[name].message and checks[name].value is None
    assert checks["rollout"].status == "ok"  # other sources still judged
    assert health.status == "unknown"


def test_stale_data_is_unknown_with_its_age_and_error_and_keeps_the_value():
    old = NOW - timedelta(minutes=3)
    state = healthy(
        traffic=traffic(p95=120.0),
        stale=frozenset({"prometheus"}),
        errors={"prometheus": "timed out after 6s"},
    )
    status = SourceStatus("prometheus", "error", "timed out after 6s", fetched_at=old)
    check = checks_of(judge(state, prometheus=status), "churn")["latency_p95"]
    assert check.status == "unknown" and check.value == 120.0
    assert check.message == "prometheus data is stale (3m old): timed out after 6s"


def test_a_drift_error_is_unknown():
    state = healthy(drift=None, errors={"drift": "FileNotFoundError: /data/churn/*.parquet"})
    check = checks_of(judge(state), "churn")["drift_share"]
    assert check.status == "unknown" and "FileNotFoundError" in check.message


def test_a_kubernetes_error_makes_rollout_and_version_unknown():
    state = healthy(rollout=None, errors={"kubernetes": "ApiException: 403 Forbidden"})
    checks = checks_of(judge(state), "churn")
    assert checks["rollout"].status == checks["version"].status == "unknown"
    assert "403 Forbidden" in checks["rollout"].message


def test_an_mlflow_error_makes_an_alias_targets_rollout_unknown():
    state = healthy(
        "pricing",
        registry=None,
        rollout=Rollout(kind="alias", name="pricing", state="unknown", message="no champion alias"),
        errors={"mlflow": "MlflowException: timed out"},
    )
    checks = checks_of(judge(state), "pricing")
    assert checks["rollout"].status == "unknown"
    assert "MlflowException: timed out" in checks["rollout"].message
    assert "version" not in checks


def test_an_alertmanager_error_is_unknown():
    state = healthy(errors={"alertmanager": "ReadTimeout"})
    assert checks_of(judge(state), "churn")["alerts"].status == "unknown"


# ---------------------------------------------------------------- rollout and versions


@pytest.mark.parametrize(
    ("state", "status"),
    [
        ("healthy", "ok"),
        ("progressing", "warn"),
        ("paused", "warn"),
        ("degraded", "crit"),
        ("unknown", "unknown"),
    ],
)
def test_rollout_state_maps_to_a_status(state, status):
    rollout = Rollout(kind="Deployment", name="churn", state=state, serving_version="3")
    assert checks_of(judge(healthy(rollout=rollout)), "churn")["rollout"].status == status


def test_a_canary_in_flight_names_its_version_and_weight():
    rollout = Rollout(
        kind="Rollout",
        name="churn",
        state="paused",
        serving_version="3",
        canary_version="4",
        canary_weight=20,
        message="CanaryPauseStep",
    )
    check = checks_of(judge(healthy(rollout=rollout)), "churn")["rollout"]
    assert check.status == "warn"
    assert check.message == "rollout paused, canary v4 at 20%: CanaryPauseStep"


def test_serving_a_version_other_than_the_champion_warns():
    state = healthy(registry=Registry(name="churn", aliases={"champion": "4"}))
    check = checks_of(judge(state), "churn")["version"]
    assert check.status == "warn" and check.value == "3"
    assert check.message == "serving v3 but the champion alias is v4"


def test_version_is_not_checked_without_a_champion_or_for_alias_targets():
    no_champion = healthy(registry=Registry(name="churn"))
    assert "version" not in checks_of(judge(no_champion), "churn")
    alias = healthy(
        "pricing",
        registry=Registry(name="pricing", aliases={"champion": "2", "challenger": "3"}),
        rollout=Rollout(kind="alias", name="pricing", state="healthy", serving_version="2"),
    )
    checks = checks_of(judge(alias), "pricing")
    assert "version" not in checks and checks["rollout"].status == "ok"


# ---------------------------------------------------------------- alerts


@pytest.mark.parametrize(
    ("alerts", "status"),
    [
        ((Alert("ChurnLatencyHigh", "warning"),), "warn"),
        ((Alert("ChurnDown", "critical"), Alert("ChurnLatencyHigh", "warning")), "crit"),
        ((Alert("ChurnDown", "critical", silenced=True),), "ok"),
        ((Alert("ChurnDown", "critical", state="suppressed"),), "ok"),
        ((Alert("ChurnInfo", "info"),), "ok"),
    ],
)
def test_firing_alerts_count_by_severity_and_silenced_ones_do_not(alerts, status):
    check = checks_of(judge(healthy(alerts=alerts)), "churn")["alerts"]
    assert check.status == status


def test_alert_message_lists_the_counted_alerts():
    alerts = (Alert("ChurnDown", "critical"), Alert("ChurnLatencyHigh", "warning"))
    check = checks_of(judge(healthy(alerts=alerts)), "churn")["alerts"]
    assert check.message == "firing alerts: ChurnDown (critical), ChurnLatencyHigh (warning)"
    assert check.value == 2


def test_a_discovered_model_uses_the_fleet_slo_and_what_the_snapshot_shows():
    state = healthy("discovered", preset="kserve", traffic=traffic(p95=250.0), drift=None)
    checks = checks_of(judge(state), "discovered")
    assert checks["latency_p95"].status == "warn"
    assert checks["rollout"].status == "ok" and "drift_share" not in checks
