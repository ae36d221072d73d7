"""Actions under faults: nothing half-applied silently, no attempted action unaudited.

* MLflow down at apply time (a real ``mlflow server`` behind a :class:`FaultProxy`
  switched to "refuse" after the plan): the engine cannot re-read the champion
  before its first write, so it writes nothing (``failed``).
* MLflow drops out between the cluster write and the registry write (switched to
  "refuse" while the first cluster write is on the wire): the result is ``partial``,
  says what was and was not done, is audited, and a retry once MLflow is back
  finishes exactly the missing steps.
* A concurrent writer: someone changes the canary between plan and apply (the
  engine re-reads every planned object before its first write, the re-plan
  differs) or moves the MLflow champion alias: ``conflict``, nothing written, the
  fresh plan returned — and confirming that plan applies it.
* mltui killed mid-action (``mltui promote --yes`` as a subprocess, SIGKILLed while
  its first cluster write hangs): the audit log holds the attempt line, fsynced
  before the write, and is valid JSONL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mltui.actions.audit import AuditLog
from mltui.actions.engine import ActionEngine
from mltui.actions.plan import plan_text, result_text
from tests.support import manifests as m
from tests.support.actions import apply_holding_first_patch, make_config
from tests.support.fault_proxy import FaultProxy
from tests.support.kube_standin import Fault

MODEL = "churn-classifier"
TARGET = """
[[models]]
name = "churn"
registered_model = "churn-classifier"
target = { kind = "Deployment", name = "churn", canary = "churn-canary" }
"""
ALIAS_TARGET = """
[[models]]
name = "churn"
registered_model = "churn-classifier"
target = { kind = "alias" }
"""


def _setup(kube: Any, stable: str = "3", canary: str = "4") -> None:
    kube.put(m.deployment("churn", model=MODEL, version=stable))
    kube.put(m.canary_deployment("churn", model=MODEL, version=canary))


def _aliases(uri: str) -> dict[str, str]:
    from mlflow import MlflowClient

    model = MlflowClient(tracking_uri=uri, registry_uri=uri).get_registered_model(MODEL)
    return {k: str(v) for k, v in model.aliases.items()}


def _template_image(kube: Any, name: str) -> str:
    return str(
        kube.get("Deployment", "ml", name)["spec"]["template"]["spec"]["containers"][0]["image"]
    )


def _valid_jsonl(path: Path) -> list[dict[str, Any]]:
    text = path.read_text("utf-8")
    assert text.endswith("\n"), "the last line is incomplete"
    return [json.loads(line) for line in text.splitlines()]


def test_mlflow_dropping_between_cluster_and_registry_writes_is_partial_and_retryable(
    kube: Any, mlflow_server_factory: Any, audit_log: AuditLog
) -> None:
    _setup(kube)
    server = mlflow_server_factory()
    proxy = FaultProxy("127.0.0.1", server.port).start()
    engine = ActionEngine(make_config(TARGET, kubeconfig=kube.kubeconfig, mlflow_uri=proxy.url))
    try:
        plan = engine.plan("promote", "churn")
        assert plan.refusal is None, plan_text(plan)
        assert [s.system for s in plan.steps] == ["kubernetes", "kubernetes", "mlflow", "mlflow"]
        canary_image = _template_image(kube, "churn-canary")
        stable_image = _template_image(kube, "churn")

        # MLflow already gone when the apply starts: nothing is written at all.
        proxy.set("refuse")
        kube.clear_log()
        failed = engine.apply(plan)
        assert failed.status == "failed", result_text(failed)
        assert failed.message == "nothing was written"
        assert [s.outcome for s in failed.steps] == ["not_done", "not_done", "failed", "not_done"]
        assert "cannot re-read before writing" in (failed.steps[2].error or "")
        assert kube.request_count(method="PATCH") == 0
        assert _template_image(kube, "churn") == stable_image

        # MLflow goes away while the first cluster write is on the wire: the cluster is
        # written, the registry is not.
        proxy.set("pass")
        result = apply_holding_first_patch(kube, engine, plan, lambda: proxy.set("refuse"))

        assert result.status == "partial", result_text(result)
        assert [s.outcome for s in result.steps] == ["done", "done", "failed", "not_done"]
        assert "half-done" in result.message and "NOT done" in result.message
        assert "MLflow" in (result.steps[2].error or "")
        # The cluster side really happened; the registry side really did not.
        assert _template_image(kube, "churn") == canary_image
        assert kube.get("Deployment", "ml", "churn-canary")["spec"]["replicas"] == 0
        assert _aliases(server.url)["champion"] == "3"
        records = _valid_jsonl(audit_log.path)
        assert [r["phase"] for r in records] == ["attempt", "result"] * 2
        assert records[1]["status"] == "failed"
        assert records[3]["status"] == "partial" and records[3]["id"] == records[2]["id"]

        proxy.set("pass")  # MLflow is back: the retry writes only what is missing
        retried = engine.retry(result)
        assert retried.status == "applied", result_text(retried)
        assert [s.system for s in retried.plan.steps] == ["mlflow", "mlflow"]
        assert _aliases(server.url)["champion"] == "4"
        records = _valid_jsonl(audit_log.path)
        assert [r["phase"] for r in records] == ["attempt", "result"] * 3
        assert records[5]["status"] == "applied"
    finally:
        engine.close()
        proxy.stop()


def test_a_concurrent_change_to_the_canary_is_a_conflict_with_nothing_written(
    kube: Any, mlflow_store: Any, audit_log: Any
) -> None:
    """Another operator ships v5 to the canary after our plan showed v4.

    The stable write comes first and is guarded by the *stable* Deployment's
    resourceVersion, which did not change — Kubernetes has no multi-object
    transaction. So the engine re-reads every planned object before its first
    write: the canary moved, the re-plan differs (v5, not the confirmed v4), and it
    stops as ``conflict`` with no PATCH sent, the fresh plan returned, audited, the
    registry untouched.
    """
    _setup(kube)
    engine = ActionEngine(
        make_config(TARGET, kubeconfig=kube.kubeconfig, mlflow_uri=mlflow_store.tracking_uri)
    )
    try:
        plan = engine.plan("promote", "churn")
        assert plan.refusal is None, plan_text(plan)
        stable_image = _template_image(kube, "churn")
        kube.put(m.canary_deployment("churn", model=MODEL, version="5"))
        kube.clear_log()

        result = engine.apply(plan)

        assert result.status == "conflict", result_text(result)
        assert result.message == "nothing was written"
        assert [s.outcome for s in result.steps] == ["not_done", "failed", "not_done", "not_done"]
        error = result.steps[1].error or ""
        assert "churn-canary changed since the plan" in error and "confirm the new plan" in error
        assert kube.request_count(method="PATCH") == 0  # not even the stable write
        assert result.new_plan is not None and "v5" in plan_text(result.new_plan)
        assert _template_image(kube, "churn") == stable_image
        assert kube.get("Deployment", "ml", "churn-canary")["spec"]["replicas"] > 0
        assert _aliases(mlflow_store.tracking_uri)["champion"] == "3"
        records = _valid_jsonl(audit_log.path)
        assert [r["phase"] for r in records] == ["attempt", "result"]
        assert records[1]["status"] == "conflict"

        # The fresh plan is what the cluster now holds: v5 on both sides of the promote.
        moves = [c for c in result.new_plan.changes if c.field == "alias champion"]
        assert [(c.old, c.new) for c in moves] == [("3", "5")]
    finally:
        engine.close()


def test_an_alias_moved_by_someone_else_is_a_conflict_not_an_overwrite(
    mlflow_store: Any, audit_log: AuditLog
) -> None:
    from mlflow import MlflowClient

    engine = ActionEngine(make_config(ALIAS_TARGET, mlflow_uri=mlflow_store.tracking_uri))
    plan = engine.plan("promote", "churn")
    assert plan.refusal is None, plan_text(plan)
    uri = mlflow_store.tracking_uri
    MlflowClient(tracking_uri=uri, registry_uri=uri).set_registered_model_alias(
        MODEL, "champion", "2"
    )

    result = engine.apply(plan)

    assert result.status == "conflict", result_text(result)
    assert all(s.outcome != "done" for s in result.steps)
    assert _aliases(uri)["champion"] == "2"  # the other writer's change stands
    records = _valid_jsonl(audit_log.path)
    assert [r["phase"] for r in records] == ["attempt", "result"]


def test_mltui_killed_mid_action_leaves_the_attempt_in_a_valid_audit_log(
    kube: Any, mlflow_store: Any, tmp_path: Path
) -> None:
    _setup(kube)
    # The first cluster write hangs (longer than the test waits), so mltui is killed
    # between its audit "attempt" line and the write's answer.
    kube.inject(Fault("slow", delay=20.0, method="PATCH", times=1))
    config = tmp_path / "config.toml"
    config.write_text(
        f'[kubernetes]\nkubeconfig = "{kube.kubeconfig}"\ntimeout = "30s"\n'
        f'[mlflow]\ntracking_uri = "{mlflow_store.tracking_uri}"\ntimeout = "5s"\n' + TARGET
    )
    state = tmp_path / "state"
    audit = state / "mltui" / "audit.jsonl"
    env = {**os.environ, "XDG_STATE_HOME": str(state)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mltui", "promote", "churn", "--yes", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        deadline = time.monotonic() + 45
        while not (audit.exists() and audit.read_text().strip()):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no audit attempt line"
            time.sleep(0.05)
        # Wait until the write is on the wire (the stand-in holds it), then crash.
        while kube.request_count("PATCH") == 0:
            assert time.monotonic() < deadline, "the write never started"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
        kube.clear_faults()

    assert proc.returncode == -signal.SIGKILL
    records = _valid_jsonl(audit)
    assert [r["phase"] for r in records] == ["attempt"]  # attempted, no result: a crash
    attempt = records[0]
    assert attempt["action"] == "promote" and attempt["model"] == "churn"
    assert attempt["dry_run"] is False
    assert [s["system"] for s in attempt["plan"]["steps"]] == [
        "kubernetes",
        "kubernetes",
        "mlflow",
        "mlflow",
    ]
    assert oct(audit.stat().st_mode & 0o777) == "0o600"
    # The registry was never reached: the crash came before its step.
    assert _aliases(mlflow_store.tracking_uri)["champion"] == "3"
