"""`mltui --check` end to end: the real command as a subprocess against the real servers.

Prometheus is the real server with the standard fleet backfilled by promtool
(tests/support/prom_fleet.py: every p95, rps and error rate known exactly), so the
exit codes and the JSON numbers below are checked against values computed from the
generated series, never against what Prometheus happened to answer.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

SCHEMA = json.loads((Path(__file__).parent.parent / "mltui" / "check_schema.json").read_text())
ESC = "\x1b"

# Small enough that the unreachable-Prometheus runs stay short, large enough for a busy CI box.
TIMEOUT_S = 2.0
# Interpreter start, imports and the orchestrator's deadline slack (a source's deadline is
# its timeout + 1 s) on a loaded 2-core machine.
MARGIN_S = 4.0


def run_check(
    config: Path, *args: str, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mltui", "--check", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def json_report(done: subprocess.CompletedProcess[str]) -> dict:
    assert done.stdout, f"no report on stdout; stderr: {done.stderr}"
    report = json.loads(done.stdout)
    jsonschema.validate(report, SCHEMA)
    return report


def write_config(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def prometheus_section(url: str, timeout: float = 5.0) -> str:
    return f'[prometheus]\nurl = "{url}"\ntimeout = "{timeout:g}s"\n'


# Models of the standard fleet that every rule passes: churn (p95 183 ms, 0.83 % errors),
# idle (no traffic: nothing to judge), detector (counter-only, no error counter) and
# sentiment (4.8 % errors, under its own 5 % warn level).
HEALTHY_MODELS = """
[[models]]
name = "churn"
metrics = "kserve"

[[models]]
name = "idle"
metrics = "kserve"

[[models]]
name = "detector"
metrics = "torchserve"

[[models]]
name = "sentiment"
metrics = "triton"
[models.slo]
error_rate = { warn = 0.05, crit = 0.2 }
"""

FRAUD = """
[[models]]
name = "fraud"
metrics = "kserve"
"""


@pytest.fixture
def healthy_config(tmp_path, prometheus_fleet) -> Path:
    return write_config(tmp_path, prometheus_section(prometheus_fleet.url) + HEALTHY_MODELS)


# ---------------------------------------------------------------- exit codes


def test_a_healthy_fleet_exits_0(healthy_config):
    done = run_check(healthy_config, "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json_report(done)
    assert report["status"] == "ok"
    assert [m["name"] for m in report["models"]] == ["churn", "idle", "detector", "sentiment"]
    assert {m["status"] for m in report["models"]} == {"ok"}
    assert report["sources"]["prometheus"]["status"] == "ok"
    assert report["sources"]["mlflow"] == {
        "status": "not_configured",
        "error": None,
        "latency_ms": None,
    }


def test_one_model_over_its_p95_warn_level_exits_1(tmp_path, prometheus_fleet):
    config = write_config(
        tmp_path, prometheus_section(prometheus_fleet.url) + HEALTHY_MODELS + FRAUD
    )
    done = run_check(config, "--format", "json")
    assert done.returncode == 1, done.stdout + done.stderr
    report = json_report(done)
    fraud = next(m for m in report["models"] if m["name"] == "fraud")
    assert fraud["status"] == "warn"
    (p95,) = [c for c in fraud["checks"] if c["name"] == "latency_p95"]
    assert p95["status"] == "warn" and p95["message"] == "p95 375 ms ≥ warn 200 ms"
    assert [m["name"] for m in report["models"] if m["status"] != "ok"] == ["fraud"]


def test_model_flag_limits_the_report(tmp_path, prometheus_fleet):
    config = write_config(
        tmp_path, prometheus_section(prometheus_fleet.url) + HEALTHY_MODELS + FRAUD
    )
    done = run_check(config, "--format", "json", "--model", "churn")
    assert done.returncode == 0, done.stdout + done.stderr
    assert [m["name"] for m in json_report(done)["models"]] == ["churn"]

    done = run_check(config, "--model", "nope")
    assert done.returncode == 3 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "nope" in done.stderr


# ---------------------------------------------------------------- numbers


def test_json_numbers_equal_the_generated_series(
    tmp_path, prometheus_fleet, prometheus_config_toml
):
    expected = prometheus_fleet.expected
    models = ["churn", "fraud", "ranker", "pricing", "idle", "sentiment", "detector", "llm"]
    args = [arg for name in models for arg in ("--model", name)]
    config = write_config(tmp_path, prometheus_config_toml.replace("target = {", "# target = {"))
    done = run_check(config, "--format", "json", *args)
    report = json_report(done)
    by_name = {m["name"]: m for m in report["models"]}
    assert list(by_name) == models
    for name in models:
        want, got = expected[name], by_name[name]
        for key, value in (("p50", want.p50_ms), ("p95", want.p95_ms), ("p99", want.p99_ms)):
            assert got["latency_ms"][key] == (
                None if value is None else pytest.approx(value, abs=1e-5)
            ), (name, key)
        assert got["rps"] == pytest.approx(want.rps, abs=1e-5), name
        if want.error_rate is None:
            assert got["error_rate"] is None, name
        else:
            assert got["error_rate"] == pytest.approx(want.error_rate, abs=1e-6), name
    # The verdicts follow from those numbers.
    status = {name: m["status"] for name, m in by_name.items()}
    assert status == {
        "churn": "ok",
        "fraud": "warn",  # p95 375 ms
        "ranker": "warn",  # 2 % errors
        "pricing": "crit",  # p95 792 ms and 10 % errors
        "idle": "ok",  # no traffic is not a failure
        "sentiment": "warn",  # 4.8 % errors against the fleet's 1 %
        "detector": "ok",
        "llm": "crit",  # p95 4375 ms
    }
    assert done.returncode == 2


def test_a_configured_model_without_any_series_is_unknown(tmp_path, prometheus_config_toml):
    """ghost is configured but Prometheus has no series for it: could not tell, not "idle"."""
    config = write_config(tmp_path, prometheus_config_toml)
    done = run_check(config, "--format", "json", "--model", "ghost", "--model", "idle")
    assert done.returncode == 3, done.stdout + done.stderr
    idle, ghost = json_report(done)["models"]  # in config order
    assert (ghost["status"], idle["status"]) == ("unknown", "ok")
    assert "no series match" in ghost["checks"][0]["message"]


def test_text_report_fits_80_columns_without_escape_codes(tmp_path, prometheus_fleet):
    config = write_config(
        tmp_path, prometheus_section(prometheus_fleet.url) + HEALTHY_MODELS + FRAUD
    )
    done = run_check(config)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[0].startswith("WARNING  5 models")
    assert max(len(line) for line in lines) <= 80
    assert ESC not in done.stdout  # not a TTY (and NO_COLOR is set)
    assert "    WARN     latency_p95: p95 375 ms ≥ warn 200 ms" in lines
    assert lines[-1] == "sources ok: prometheus; not configured: mlflow, kubernetes, alertmanager"


# ---------------------------------------------------------------- unreachable Prometheus


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (kernel backlog) and never answers a byte."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("how", ["closed port", "silent server"])
def test_prometheus_unreachable_exits_3_within_its_timeout(tmp_path, how, request):
    port = closed_port() if how == "closed port" else request.getfixturevalue("silent_port")
    url = f"http://127.0.0.1:{port}"
    config = write_config(tmp_path, prometheus_section(url, TIMEOUT_S) + HEALTHY_MODELS)
    started = time.monotonic()
    done = run_check(config, "--format", "json")
    elapsed = time.monotonic() - started
    assert done.returncode == 3, done.stdout + done.stderr
    assert elapsed < TIMEOUT_S + MARGIN_S, f"took {elapsed:.1f}s"
    report = json_report(done)
    assert report["status"] == "unknown"
    prometheus = report["sources"]["prometheus"]
    assert prometheus["status"] == "error" and prometheus["error"]
    churn = report["models"][0]
    assert churn["latency_ms"] == {"p50": None, "p95": None, "p99": None} and churn["rps"] is None
    checks = {c["name"]: c for c in churn["checks"]}
    assert checks["latency_p95"]["status"] == checks["error_rate"]["status"] == "unknown"
    assert checks["latency_p95"]["message"].startswith("prometheus: ")


# ---------------------------------------------------------------- bad config


def test_a_bad_config_exits_3_naming_file_line_and_key(tmp_path):
    config = write_config(
        tmp_path,
        '[prometheus]\nurl = "http://127.0.0.1:9"\ntimeout = "5 parsecs"\n' + HEALTHY_MODELS,
        "bad.toml",
    )
    done = run_check(config, "--format", "json")
    assert done.returncode == 3
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1
    assert f"{config}:3: prometheus.timeout:" in done.stderr


def test_a_missing_config_file_exits_3(tmp_path):
    done = run_check(tmp_path / "nowhere.toml")
    assert done.returncode == 3 and "nowhere.toml" in done.stderr


# ---------------------------------------------------------------- light imports


def test_a_prometheus_only_check_imports_no_tui_and_no_heavy_library(tmp_path):
    """--check on a Prometheus-only config needs neither Textual nor mlflow/kubernetes/pandas."""
    config = write_config(
        tmp_path, prometheus_section(f"http://127.0.0.1:{closed_port()}", 1) + HEALTHY_MODELS
    )
    heavy = ["textual", "mlflow", "evidently", "pandas", "kubernetes", "sklearn"]
    code = (
        "import sys\n"
        "from mltui.config import load_config\n"
        "from mltui.report import run_check\n"
        f"code = run_check(load_config({str(config)!r}), 'json', [])\n"
        f"loaded = [m for m in {heavy!r} if m in sys.modules]\n"
        "print('LOADED=' + ','.join(loaded), file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 3, done.stderr
    assert "LOADED=\n" in done.stderr, done.stderr


# ---------------------------------------------------------------- rollouts and versions


def cluster_config(
    prometheus_url: str, kube, mlflow_uri: str | None = None, version_of: str = "churn"
) -> str:
    """Prometheus + the Kubernetes stand-in (+ MLflow): churn served by Deployment ml/churn."""
    text = prometheus_section(prometheus_url)
    text += (
        f'[kubernetes]\nkubeconfig = "{kube.kubeconfig}"\ncontext = "{kube.context}"\n'
        'namespace = "ml"\ntimeout = "5s"\n'
    )
    if mlflow_uri is not None:
        text += f'[mlflow]\ntracking_uri = "{mlflow_uri}"\ntimeout = "5s"\n'
    return text + (
        '[[models]]\nname = "churn"\nregistered_model = "churn-classifier"\nmetrics = "kserve"\n'
        'selector = { model_name = "churn" }\n'
        'target = { kind = "Deployment", namespace = "ml", name = "churn" }\n'
    )


def test_a_degraded_rollout_exits_2(tmp_path, prometheus_fleet, kube):
    from tests.support.manifests import deployment

    kube.put(deployment("churn", model="churn-classifier", version="3"))
    kube.set_controller_mode("fail", "ml", "churn")  # Progressing=False ProgressDeadlineExceeded
    config = write_config(tmp_path, cluster_config(prometheus_fleet.url, kube))
    done = run_check(config, "--format", "json")
    assert done.returncode == 2, done.stdout + done.stderr
    report = json_report(done)
    assert report["status"] == "crit"
    assert report["sources"]["kubernetes"]["status"] == "ok"
    (churn,) = report["models"]
    assert churn["rollout"]["kind"] == "Deployment" and churn["rollout"]["state"] == "degraded"
    checks = {c["name"]: c for c in churn["checks"]}
    assert checks["rollout"]["status"] == "crit"
    assert checks["rollout"]["message"].startswith("rollout degraded")
    assert checks["latency_p95"]["status"] == "ok"  # the other signals are still judged


@pytest.mark.parametrize(("serving", "code", "version_status"), [("3", 0, "ok"), ("2", 1, "warn")])
def test_serving_version_is_checked_against_the_champion_alias(
    tmp_path, prometheus_fleet, kube, mlflow_store, serving, code, version_status
):
    from tests.support.manifests import deployment

    champion = mlflow_store.model("churn-classifier").champion
    assert champion == "3"
    kube.put(deployment("churn", model="churn-classifier", version=serving))
    config = write_config(
        tmp_path, cluster_config(prometheus_fleet.url, kube, mlflow_store.tracking_uri)
    )
    done = run_check(config, "--format", "json")
    assert done.returncode == code, done.stdout + done.stderr
    (churn,) = json_report(done)["models"]
    assert churn["versions"] == {"serving": serving, "champion": "3", "challenger": "4"}
    assert churn["rollout"]["state"] == "healthy"
    version = next(c for c in churn["checks"] if c["name"] == "version")
    assert version["status"] == version_status
    if version_status == "warn":
        assert version["message"] == "serving v2 but the champion alias is v3"


# ---------------------------------------------------------------- alerts


@pytest.mark.parametrize(("silenced", "code"), [(False, 2), (True, 0)])
def test_a_firing_critical_alert_is_critical_unless_silenced(
    tmp_path, prometheus_fleet, alertmanager, silenced, code
):
    # Alerts stay in the session's Alertmanager: this test's own label value keeps them apart.
    owner = f"check-cli-{'silenced' if silenced else 'firing'}"
    alertmanager.post_alerts(
        [
            alertmanager.alert("ChurnDown", {"model": owner}, severity="critical"),
            alertmanager.alert("ChurnInfo", {"model": owner}, severity="info"),
        ]
    )
    if silenced:
        alertmanager.silence({"model": owner, "alertname": "ChurnDown"})
    config = write_config(
        tmp_path,
        prometheus_section(prometheus_fleet.url)
        + f'[alertmanager]\nurl = "{alertmanager.url}"\ntimeout = "5s"\n'
        + '[[models]]\nname = "churn"\nmetrics = "kserve"\n'
        + f'alert_labels = {{ model = "{owner}" }}\n',
    )
    done = run_check(config, "--format", "json")
    assert done.returncode == code, done.stdout + done.stderr
    (churn,) = json_report(done)["models"]
    alerts = next(c for c in churn["checks"] if c["name"] == "alerts")
    if silenced:
        assert churn["alerts"] == [{"name": "ChurnInfo", "severity": "info"}]
        assert alerts["status"] == "ok"
    else:
        assert {"name": "ChurnDown", "severity": "critical"} in churn["alerts"]
        assert (alerts["status"], alerts["message"]) == (
            "crit",
            "firing alert: ChurnDown (critical)",
        )


# ---------------------------------------------------------------- drift


def test_drift_is_computed_and_judged_in_the_same_run(tmp_path, prometheus_fleet):
    """Two features, one identical and one shifted far: a share of exactly 0.5 (crit)."""
    import random

    rng = random.Random(7)
    rows = 1200  # above Evidently's 1,000-row switch from distances to p-values
    same = [round(rng.gauss(50, 10), 3) for _ in range(rows)]
    reference = [(x, round(rng.gauss(0, 1), 3)) for x in same]
    current = [(x, round(rng.gauss(25, 1), 3)) for x in same]
    for name, data in (("reference", reference), ("current", current)):
        lines = ["tenure,spend"] + [f"{a},{b}" for a, b in data]
        (tmp_path / f"{name}.csv").write_text("\n".join(lines) + "\n")
    config = write_config(
        tmp_path,
        prometheus_section(prometheus_fleet.url)
        + '[[models]]\nname = "churn"\nmetrics = "kserve"\n'
        + "[models.drift]\n"
        + f'reference = "{tmp_path / "reference.csv"}"\n'
        + f'current = "{tmp_path / "current.csv"}"\n'
        + "sample_size = 1000\n",
    )
    done = run_check(config, "--format", "json", timeout=300, env={"XDG_CACHE_HOME": str(tmp_path)})
    assert done.returncode == 2, done.stdout + done.stderr
    report = json_report(done)
    assert report["sources"]["drift"]["status"] == "ok"
    (churn,) = report["models"]
    assert churn["drift"] == {"share": 0.5, "drifted": ["spend"]}
    drift = next(c for c in churn["checks"] if c["name"] == "drift_share")
    assert (drift["status"], drift["message"]) == ("crit", "drift 50% ≥ crit 50% (spend)")
