"""Alias targets (MLflow only) on a real sqlite store, and the audit log's guarantees."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from mltui.actions.audit import AuditLog
from mltui.actions.engine import ActionEngine
from mltui.actions.plan import plan_text, result_text
from tests.support.actions import make_config

ALIAS = """
[[models]]
name = "churn"
registered_model = "{model}"
target = {{ kind = "alias" }}
"""


def _engine(uri: str, model: str = "churn-classifier") -> ActionEngine:
    return ActionEngine(make_config(ALIAS.format(model=model), mlflow_uri=uri))


def _client(uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _aliases(uri: str, model: str = "churn-classifier") -> dict[str, str]:
    return {k: str(v) for k, v in _client(uri).get_registered_model(model).aliases.items()}


def test_alias_promote_then_rollback(mlflow_store: Any, audit_log: AuditLog) -> None:
    uri = mlflow_store.tracking_uri
    engine = _engine(uri)
    plan = engine.plan("promote", "churn")
    assert plan.refusal is None, plan_text(plan)
    assert [(c.field, c.old, c.new) for c in plan.changes] == [
        ("tag mltui.previous_champion", None, "3"),
        ("alias champion", "3", "4"),
    ]
    assert engine.apply(plan).status == "applied"
    assert _aliases(uri) == {"champion": "4", "challenger": "4"}
    assert (
        _client(uri).get_model_version("churn-classifier", "4").tags["mltui.previous_champion"]
        == "3"
    )
    # Nothing left to promote: challenger is the champion now.
    assert "nothing to promote" in (engine.plan("promote", "churn").refusal or "")

    back = engine.plan("rollback", "churn")
    assert [(c.field, c.old, c.new) for c in back.changes] == [("alias champion", "4", "3")]
    assert engine.apply(back).status == "applied"
    assert _aliases(uri) == {"champion": "3", "challenger": "4"}


def test_alias_without_challenger_or_memory_is_refused(
    mlflow_store: Any, audit_log: AuditLog
) -> None:
    uri = mlflow_store.tracking_uri
    fraud = _engine(uri, "fraud-detector")
    assert (
        fraud.plan("promote", "churn").refusal
        == "nothing to promote: fraud-detector has no challenger alias"
    )
    # v3 was never promoted by mltui: no tag, so rollback needs an explicit version.
    churn = _engine(uri)
    refusal = churn.plan("rollback", "churn").refusal or ""
    assert "mltui.previous_champion" in refusal and "--to-revision" in refusal
    plan = churn.plan("rollback", "churn", to_revision="1")
    assert churn.apply(plan).status == "applied"
    assert _aliases(uri)["champion"] == "1"


def test_alias_dry_run_writes_nothing(mlflow_store: Any, audit_log: AuditLog) -> None:
    uri = mlflow_store.tracking_uri
    engine = _engine(uri)
    result = engine.apply(engine.plan("promote", "churn"), dry_run=True)
    assert result.status == "dry_run" and [r.outcome for r in result.steps] == [
        "validated",
        "validated",
    ]
    assert _aliases(uri) == {"champion": "3", "challenger": "4"}
    assert (
        "mltui.previous_champion"
        not in _client(uri).get_model_version("churn-classifier", "4").tags
    )
    assert [r["dry_run"] for r in audit_log.read()] == [True, True]


def test_alias_moved_after_the_plan_is_a_conflict_not_an_overwrite(
    mlflow_store: Any, audit_log: AuditLog
) -> None:
    uri = mlflow_store.tracking_uri
    engine = _engine(uri)
    plan = engine.plan("promote", "churn")
    _client(uri).set_registered_model_alias("churn-classifier", "champion", "2")  # someone else

    result = engine.apply(plan)

    assert result.status == "conflict", result_text(result)
    assert result.new_plan is not None
    assert ("alias champion", "2", "4") in [
        (c.field, c.old, c.new) for c in result.new_plan.changes
    ]
    assert _aliases(uri)["champion"] == "2"
    assert (
        "mltui.previous_champion"
        not in _client(uri).get_model_version("churn-classifier", "4").tags
    )
    assert audit_log.read()[-1]["status"] == "conflict"


def test_attempt_line_is_on_disk_before_the_first_write(
    tmp_path: Path, audit_log: AuditLog, monkeypatch: Any
) -> None:
    """A webhook server reads the audit log when the POST arrives: the attempt is already there."""
    seen: list[list[dict[str, Any]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append(audit_log.read())
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("AUDIT_HOOK_TOKEN", "audit-hook-secret-93c1")
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/retrain"
        model = f"""
[[models]]
name = "churn"
retrain = {{ webhook = "{url}", headers = {{ X-Token = "${{AUDIT_HOOK_TOKEN}}" }} }}
"""
        engine = ActionEngine(make_config(model))
        result = engine.apply(engine.plan("retrain", "churn"))
    finally:
        server.shutdown()
        server.server_close()
    assert result.status == "applied", result_text(result)
    [at_post] = seen
    assert [r["phase"] for r in at_post] == ["attempt"]
    records = audit_log.read()
    assert [r["phase"] for r in records] == ["attempt", "result"]
    attempt = records[0]
    assert {"time", "user", "host", "action", "model", "plan", "id"} <= set(attempt)
    assert attempt["plan"]["steps"][0]["request"]["headers"] == ["X-Token"]
    text = audit_log.path.read_text()
    assert "audit-hook-secret-93c1" not in text
    assert all(json.loads(line) for line in text.splitlines())
    assert oct(audit_log.path.stat().st_mode & 0o777) == "0o600"
