"""The --check renderers: JSON against the schema in the repo, text against a golden file.

render_text / render_json are pure functions of (FleetHealth, FleetSnapshot), so a
fixed, hand-built 5-model snapshot pins them exactly. Regenerate the golden file
after an intended change with ``MLTUI_UPDATE_GOLDEN=1 python -m pytest tests/test_report.py``
and review the diff.
"""

from __future__ import annotations

import io
import json
import math
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
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
from mltui.health import evaluate
from mltui.report import (
    clip_middle,
    dump_json,
    render_json,
    render_text,
    run_check,
    use_color,
)

GOLDEN = Path(__file__).parent / "golden" / "check_text.txt"
SCHEMA = json.loads((Path(__file__).parent.parent / "mltui" / "check_schema.json").read_text())
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
ESC = "\x1b"

CONFIG = parse_config(
    """
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
target = { kind = "Deployment", canary = "churn-canary" }
[models.drift]
reference = "mlflow"
current = "/data/churn/*.parquet"

[[models]]
name = "fraud-detector-eu-west-1"
target = { kind = "Rollout" }

[[models]]
name = "fraud-detector-us-east-1"
metrics = "vllm"
target = { kind = "InferenceService" }

[[models]]
name = "pricing"
target = { kind = "alias" }

[[models]]
name = "recsys"
metrics = "triton"
target = { kind = "Deployment" }
""",
    "fleet.toml",
)


def five_model_snapshot() -> FleetSnapshot:
    """One model per interesting case: warn on every signal, crit rollout, idle, unknown, stale."""

    def ok(name: str, latency: float = 4.0) -> SourceStatus:
        return SourceStatus(name=name, status="ok", latency_ms=latency, fetched_at=NOW)

    sources = {
        "prometheus": ok("prometheus", 12.5),
        "mlflow": ok("mlflow", 80.2),
        "kubernetes": SourceStatus(
            "kubernetes", "error", "timed out after 6s", 6000.0, NOW - timedelta(minutes=2)
        ),
        "alertmanager": ok("alertmanager", 3.1),
        "drift": ok("drift", 1500.0),
    }
    models = (
        ModelState(
            "churn",
            "churn",
            "kserve",
            traffic=Traffic(TrafficStats(LatencyMs(41.0, 207.1, 243.0), 6.6667, 0.01)),
            registry=Registry("churn", aliases={"champion": "3", "challenger": "4"}),
            rollout=Rollout(
                "Deployment",
                "churn",
                state="progressing",
                serving_version="3",
                canary_version="4",
                canary_weight=10,
            ),
            drift=Drift(0.33, ("tenure",)),
            alerts=(
                Alert("ChurnLatencyHigh", "warning"),
                Alert("ChurnSilenced", "critical", silenced=True),
            ),
        ),
        ModelState(
            "fraud-detector-eu-west-1",
            "fraud",
            "kserve",
            traffic=Traffic(TrafficStats(LatencyMs(20.0, 50.0, 90.0), 1234.5, 0.0)),
            registry=Registry("fraud", aliases={"champion": "12"}),
            rollout=Rollout(
                "Rollout",
                "fraud",
                state="degraded",
                serving_version="11",
                message="ProgressDeadlineExceeded: ReplicaSet has timed out progressing",
            ),
        ),
        ModelState(
            "fraud-detector-us-east-1",
            "fraud-us",
            "vllm",
            traffic=Traffic(TrafficStats(LatencyMs(), 0.0, None, note="no traffic")),
            registry=Registry("fraud-us", aliases={"champion": "7"}),
            rollout=Rollout("InferenceService", "fraud-us", state="healthy", serving_version="7"),
        ),
        ModelState(
            "pricing",
            "pricing",
            "kserve",
            errors={"prometheus": 'no series match {model_name="pricing"}'},
            registry=Registry("pricing", aliases={"champion": "2", "challenger": "3"}),
            rollout=Rollout("alias", "pricing", state="healthy", serving_version="2"),
        ),
        ModelState(
            "recsys",
            "recsys",
            "triton",
            traffic=Traffic(TrafficStats(LatencyMs(mean=30.0), 50.0, 0.001)),
            registry=Registry("recsys", aliases={"champion": "5"}),
            rollout=Rollout("Deployment", "recsys", state="healthy", serving_version="5"),
            stale=frozenset({"kubernetes"}),
            errors={"kubernetes": "timed out after 6s"},
        ),
    )
    return FleetSnapshot(generated_at=NOW, sources=sources, models=models)


@pytest.fixture(scope="module")
def fixed():
    snapshot = five_model_snapshot()
    return evaluate(CONFIG, snapshot), snapshot


# ---------------------------------------------------------------- JSON


def test_json_validates_against_the_schema_in_the_repo(fixed):
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    report = json.loads(dump_json(render_json(*fixed)))
    jsonschema.Draft202012Validator(SCHEMA).validate(report)


def test_json_has_the_design_shape_and_values(fixed):
    report = render_json(*fixed)
    assert report["status"] == "crit"
    assert report["generated_at"] == "2026-11-29T12:00:00Z"
    assert report["sources"]["prometheus"] == {"status": "ok", "error": None, "latency_ms": 12.5}
    assert report["sources"]["kubernetes"]["status"] == "error"
    churn = report["models"][0]
    assert churn["versions"] == {"serving": "3", "champion": "3", "challenger": "4"}
    assert churn["rollout"] == {"kind": "Deployment", "state": "progressing", "canary_weight": 10}
    assert churn["latency_ms"] == {"p50": 41.0, "p95": 207.1, "p99": 243.0}
    assert (churn["rps"], churn["error_rate"]) == (6.6667, 0.01)
    assert churn["drift"] == {"share": 0.33, "drifted": ["tenure"]}
    # The silenced critical alert does not count and is not listed.
    assert churn["alerts"] == [{"name": "ChurnLatencyHigh", "severity": "warning"}]
    p95 = next(c for c in churn["checks"] if c["name"] == "latency_p95")
    assert p95 == {
        "name": "latency_p95",
        "status": "warn",
        "value": 207.1,
        "warn": 200.0,
        "crit": 400.0,
        "message": "p95 207 ms ≥ warn 200 ms",
    }


def test_json_unknowns_are_null_never_nan_or_zero(fixed):
    report = render_json(*fixed)
    idle = report["models"][2]
    assert idle["latency_ms"] == {"p50": None, "p95": None, "p99": None}
    assert idle["error_rate"] is None  # vllm has no error counter
    pricing = report["models"][3]
    assert pricing["rps"] is None and pricing["drift"] is None
    nan = five_model_snapshot().models[0]
    nan = nan.__class__(
        **{**nan.__dict__, "traffic": Traffic(TrafficStats(LatencyMs(p95=math.nan), math.inf))}
    )
    snapshot = FleetSnapshot(generated_at=NOW, models=(nan,))
    out = dump_json(render_json(evaluate(CONFIG, snapshot), snapshot))
    assert "NaN" not in out and "Infinity" not in out
    assert json.loads(out)["models"][0]["latency_ms"]["p95"] is None


def test_the_schema_rejects_nan_shaped_mistakes(fixed):
    report = render_json(*fixed)
    report["models"][0]["rps"] = "6.67"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(report, SCHEMA)


# ---------------------------------------------------------------- text


def test_text_matches_the_golden_file(fixed):
    text = render_text(*fixed)
    if os.environ.get("MLTUI_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8")


def test_text_fits_80_columns_for_a_5_model_fleet(fixed):
    text = render_text(*fixed)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    table = lines[2:8]
    assert table[0].split() == [
        "STATUS",
        "MODEL",
        "VERSION",
        "P95",
        "RPS",
        "ERRORS",
        "DRIFT",
        "ROLLOUT",
    ]
    # Long names are cut in the middle, so the two fraud detectors stay distinguishable.
    assert "fraud-de…-west-1" in table[2] and "fraud-de…-east-1" in table[3]
    assert table[2].split()[1] != table[3].split()[1]


def test_text_lists_failing_checks_with_messages(fixed):
    text = render_text(*fixed)
    failing = text.split("Failing checks:\n", 1)[1].rsplit("\n\n", 1)[0]
    by_model: dict[str, str] = {}
    for line in failing.splitlines():
        if not line.startswith("    "):
            model = line.strip()
            by_model[model] = ""
        else:
            by_model[model] += " " + line.strip()  # undo the wrapping
    assert list(by_model) == ["churn", "fraud-detector-eu-west-1", "pricing", "recsys"]
    assert "WARN latency_p95: p95 207 ms ≥ warn 200 ms" in " ".join(by_model["churn"].split())
    assert "rollout degraded: ProgressDeadlineExceeded" in by_model["fraud-detector-eu-west-1"]
    stale = "rollout: kubernetes data is stale (2m old): timed out after 6s"
    assert stale in by_model["recsys"]
    assert text.splitlines()[-1] == (
        "sources ok: prometheus, mlflow, alertmanager, drift; error: kubernetes"
    )


def test_no_escape_codes_without_color(fixed):
    assert ESC not in render_text(*fixed)
    assert ESC in render_text(*fixed, color=True)


def test_colour_only_on_a_tty_and_never_with_no_color(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("TERM", raising=False)
    assert use_color(Tty()) is True
    assert use_color(io.StringIO()) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert use_color(Tty()) is False


def test_clip_middle_keeps_both_ends():
    assert clip_middle("fraud-detector-eu-west-1", 16) == "fraud-de…-west-1"
    assert clip_middle("churn", 16) == "churn"
    assert len(clip_middle("x" * 40, 10)) == 10


def test_unknown_model_name_is_unknown_with_one_line(capsys):
    out, err = io.StringIO(), io.StringIO()
    assert run_check(CONFIG, "json", ["churn", "nope"], out=out, err=err) == 3
    assert out.getvalue() == ""
    assert err.getvalue().count("\n") == 1 and "unknown model nope" in err.getvalue()


def test_an_empty_fleet_says_so_and_is_unknown():
    empty = FleetSnapshot(generated_at=NOW, sources={})
    health = evaluate(CONFIG, empty)
    assert health.status == "unknown"
    text = render_text(health, empty)
    assert text.splitlines()[0].startswith("UNKNOWN  0 models")
    assert "No models: none configured, and none discovered in MLflow." in text
    assert render_json(health, empty)["models"] == []
