"""AlertmanagerSource against a real Alertmanager."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from mltui.collectors.alertmanager import AlertmanagerSource
from mltui.config import Config, parse_config
from tests.harness.alertmanager import AlertmanagerServer
from tests.support.http_stubs import CannedServer
from tests.support.procs import free_port

MODELS = """
[[models]]
name = "am-churn"

[[models]]
name = "am-fraud"
alert_labels = { service = "fraud-api", env = "prod" }

[[models]]
name = "am-quiet"
"""


def config_for(url: str, timeout: str = "5s") -> Config:
    return parse_config(f'[alertmanager]\nurl = "{url}"\ntimeout = "{timeout}"\n{MODELS}')


def test_alerts_come_back_per_model_with_severity_and_silence(
    alertmanager: AlertmanagerServer,
) -> None:
    started = datetime.now(UTC) - timedelta(minutes=7)
    alertmanager.post_alerts(
        [
            alertmanager.alert(
                "ChurnLatencyHigh",
                {"model": "am-churn"},
                severity="warning",
                summary="p95 above 200 ms",
                starts_at=started,
            ),
            alertmanager.alert("ChurnErrors", {"model": "am-churn"}, severity="critical"),
            alertmanager.alert(
                "FraudDown", {"service": "fraud-api", "env": "prod"}, severity="critical"
            ),
            # Same service in another env: not this model's alert.
            alertmanager.alert("FraudDown", {"service": "fraud-api", "env": "staging"}),
        ]
    )
    alertmanager.silence({"alertname": "ChurnLatencyHigh", "model": "am-churn"})

    config = config_for(alertmanager.url)
    source = AlertmanagerSource(config)
    try:
        result = source.poll(config.models)
    finally:
        source.close()
    assert result.status.status == "ok", result.status.error
    assert result.status.requests == 1

    churn = {a.name: a for a in result.values["am-churn"]}
    assert set(churn) == {"ChurnLatencyHigh", "ChurnErrors"}
    latency = churn["ChurnLatencyHigh"]
    assert latency.severity == "warning"
    assert latency.summary == "p95 above 200 ms"
    assert latency.silenced and latency.state == "suppressed"
    assert latency.starts_at is not None
    assert abs((latency.starts_at - started).total_seconds()) < 1
    errors = churn["ChurnErrors"]
    assert errors.severity == "critical" and not errors.silenced and errors.state == "active"
    # Unsilenced, most severe first.
    assert result.values["am-churn"][0].name == "ChurnErrors"

    fraud = result.values["am-fraud"]
    assert [(a.name, a.labels["env"]) for a in fraud] == [("FraudDown", "prod")]
    assert result.values["am-quiet"] == ()


def test_unreachable_is_an_error_value() -> None:
    config = config_for(f"http://127.0.0.1:{free_port()}", timeout="1s")
    source = AlertmanagerSource(config)
    started = time.monotonic()
    try:
        result = source.poll(config.models)
    finally:
        source.close()
    assert result.status.status == "error"
    assert "cannot connect to Alertmanager" in (result.status.error or "")
    assert result.values == {}
    assert time.monotonic() - started < 2


def test_server_error_and_malformed_json() -> None:
    for status, body, expect in (
        (500, "boom", "HTTP 500"),
        (200, "[{", "not JSON"),
        (200, '{"alerts": []}', "not a list"),
    ):
        with CannedServer(status, body) as server:
            config = config_for(server.url, timeout="1s")
            source = AlertmanagerSource(config)
            try:
                result = source.poll(config.models)
            finally:
                source.close()
        assert result.status.status == "error"
        assert expect in (result.status.error or "")
