"""Retrain: a Job from a CronJob (as kubectl), a signed webhook to a real HTTP server, a command."""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mltui.actions.engine import ActionEngine
from mltui.actions.plan import LAST_ACTION_ANNOTATION, plan_text, result_text
from mltui.fleet import Drift, ModelState, Registry
from tests.support import manifests as m
from tests.support.actions import make_config

MODEL = "churn-classifier"
HOOK_TOKEN = "hook-token-5b1e0c7d9a"
HOOK_SECRET = "hmac-secret-2f8e4a61c3"


def _model(retrain: str) -> str:
    return f"""
[[models]]
name = "churn"
registered_model = "{MODEL}"
retrain = {retrain}
"""


# ---------------------------------------------------------------- cronjob


def test_retrain_from_cronjob_creates_the_job_kubectl_would(kube: Any, audit_log: Any) -> None:
    """kubectl create job --from=cronjob/churn-retrain: the template's spec and labels,
    instantiate=manual, a controller ownerReference to the CronJob (no blockOwnerDeletion)."""
    cron = kube.put(m.cronjob("churn-retrain", model=MODEL))
    config = make_config(_model('{ cronjob = "ml/churn-retrain" }'), kubeconfig=kube.kubeconfig)
    engine = ActionEngine(config)
    plan = engine.plan("retrain", "churn")
    assert plan.refusal is None, plan_text(plan)
    name = plan.steps[0].request["name"]
    assert name.startswith("churn-retrain-mltui-") and len(name) <= 63

    result = engine.apply(plan)

    assert result.status == "applied", result_text(result)
    job = kube.get("Job", "ml", name)
    assert job is not None
    template = cron["spec"]["jobTemplate"]
    annotations = dict(job["metadata"]["annotations"])
    assert json.loads(annotations.pop(LAST_ACTION_ANNOTATION))["action"] == "retrain"
    assert annotations == {"cronjob.kubernetes.io/instantiate": "manual"}
    assert job["metadata"]["labels"] == template["metadata"]["labels"]
    assert job["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "name": "churn-retrain",
            "uid": cron["metadata"]["uid"],
            "controller": True,
        }
    ]
    # The job template's spec verbatim (the server adds its defaults and selector labels).
    for key, value in template["spec"].items():
        if key != "template":
            assert job["spec"][key] == value
    assert job["spec"]["template"]["spec"] == template["spec"]["template"]["spec"]
    assert f"created jobs.batch ml/{name}" in (result.steps[0].detail or "")


def test_retrain_cronjob_dry_run_creates_nothing(kube: Any, audit_log: Any) -> None:
    kube.put(m.cronjob("churn-retrain", model=MODEL))
    engine = ActionEngine(
        make_config(_model('{ cronjob = "ml/churn-retrain" }'), kubeconfig=kube.kubeconfig)
    )
    kube.clear_log()
    result = engine.apply(engine.plan("retrain", "churn"), dry_run=True)
    assert result.status == "dry_run", result_text(result)
    posts = [r for r in kube.requests if r.method == "POST"]
    assert len(posts) == 1 and posts[0].query.get("dryRun") == "All"
    assert kube.objects("Job", "ml") == []


def test_retrain_missing_cronjob_is_refused(kube: Any, audit_log: Any) -> None:
    engine = ActionEngine(
        make_config(_model('{ cronjob = "ml/nope" }'), kubeconfig=kube.kubeconfig)
    )
    assert engine.plan("retrain", "churn").refusal == "CronJob ml/nope not found"


# ---------------------------------------------------------------- webhook


class _Hook:
    """A real HTTP server that records what it receives and answers as told."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.status = 202
        self.answer = b'{"run": "retrain-77"}'
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hook.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                answer = hook.answer.replace(
                    b"$AUTH", self.headers.get("Authorization", "").encode()
                )
                self.send_response(hook.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/retrain"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Hook]:
    monkeypatch.setenv("HOOK_TOKEN", HOOK_TOKEN)
    monkeypatch.setenv("HOOK_SECRET", HOOK_SECRET)
    server = _Hook()
    try:
        yield server
    finally:
        server.stop()


def _webhook_config(hook: _Hook, mlflow_uri: str | None = None) -> Any:
    retrain = (
        f'{{ webhook = "{hook.url}", headers = {{ Authorization = "Bearer ${{HOOK_TOKEN}}" }}, '
        'hmac_secret = "${HOOK_SECRET}" }'
    )
    return make_config(_model(retrain), mlflow_uri=mlflow_uri)


def test_webhook_retrain_posts_the_documented_body_signed(
    hook: _Hook, mlflow_store: Any, audit_log: Any
) -> None:
    engine = ActionEngine(_webhook_config(hook, mlflow_store.tracking_uri))
    state = ModelState(
        name="churn",
        registered_model=MODEL,
        registry=Registry(name=MODEL, aliases={"champion": "3", "challenger": "4"}),
        drift=Drift(share=0.5, drifted=("tenure", "monthly_charges")),
    )
    plan = engine.plan("retrain", "churn", state=state)
    assert plan.refusal is None, plan_text(plan)
    # The plan lists header names, never their values.
    assert plan.steps[0].request["headers"] == ["Authorization"]
    assert HOOK_TOKEN not in json.dumps(plan.to_json())

    result = engine.apply(plan)

    assert result.status == "applied", result_text(result)
    assert "HTTP 202" in (result.steps[0].detail or "") and "retrain-77" in (
        result.steps[0].detail or ""
    )
    [(headers, raw)] = hook.received
    body = json.loads(raw)
    assert body["event"] == "retrain" and body["model"] == "churn"
    assert body["registered_model"] == MODEL
    assert body["versions"] == {"serving": "3", "champion": "3", "challenger": "4"}
    assert body["drift"] == {"share": 0.5, "drifted": ["tenure", "monthly_charges"]}
    assert set(body["who"]) == {"user", "host"} and body["time"].endswith("Z")
    assert headers["authorization"] == f"Bearer {HOOK_TOKEN}"
    assert headers["content-type"] == "application/json"
    expected = "sha256=" + hmac.new(HOOK_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert headers["x-mltui-signature"] == expected
    text = audit_log.path.read_text()
    assert HOOK_TOKEN not in text and HOOK_SECRET not in text


def test_webhook_without_a_snapshot_reads_versions_from_mlflow(
    hook: _Hook, mlflow_store: Any, audit_log: Any
) -> None:
    engine = ActionEngine(_webhook_config(hook, mlflow_store.tracking_uri))
    assert engine.apply(engine.plan("retrain", "churn")).status == "applied"
    body = json.loads(hook.received[0][1])
    assert body["versions"] == {"serving": None, "champion": "3", "challenger": "4"}
    assert body["drift"] is None


def test_webhook_error_echoing_the_token_never_leaks_it(hook: _Hook, audit_log: Any) -> None:
    """The server answers 500 and echoes the Authorization header: the error and the audit
    log show the status, never the token."""
    hook.status = 500
    hook.answer = b"internal error; you sent $AUTH"
    engine = ActionEngine(_webhook_config(hook))
    result = engine.apply(engine.plan("retrain", "churn"))
    assert result.status == "failed"
    assert "HTTP 500" in (result.error or "")
    assert HOOK_TOKEN not in (result.error or "") and HOOK_TOKEN not in result_text(result)
    text = audit_log.path.read_text()
    assert "HTTP 500" in text and HOOK_TOKEN not in text and HOOK_SECRET not in text


def test_webhook_dry_run_does_not_call(hook: _Hook, audit_log: Any) -> None:
    engine = ActionEngine(_webhook_config(hook))
    result = engine.apply(engine.plan("retrain", "churn"), dry_run=True)
    assert result.status == "dry_run" and [r.outcome for r in result.steps] == ["skipped"]
    assert hook.received == []


# ---------------------------------------------------------------- command


def _command_config(script: str, timeout: str = "20s") -> Any:
    argv = json.dumps([sys.executable, "-c", script])
    return make_config(_model(f'{{ command = {argv}, timeout = "{timeout}" }}'))


def test_command_retrain_gets_the_json_on_stdin(tmp_path: Path, audit_log: Any) -> None:
    out = tmp_path / "received.json"
    script = (
        "import json, os, sys; d = json.load(sys.stdin); "
        f"open({str(out)!r}, 'w').write(json.dumps([d, os.environ['MLTUI_MODEL']])); "
        "print('queued training run 42')"
    )
    engine = ActionEngine(_command_config(script))
    result = engine.apply(engine.plan("retrain", "churn"))
    assert result.status == "applied", result_text(result)
    assert result.steps[0].detail == "command exited 0: queued training run 42"
    body, env_model = json.loads(out.read_text())
    assert body["model"] == "churn" and body["event"] == "retrain" and env_model == "churn"


def test_command_failure_and_timeout_are_reported(audit_log: Any) -> None:
    failing = ActionEngine(
        _command_config("import sys; print('no GPU', file=sys.stderr); sys.exit(3)")
    )
    result = failing.apply(failing.plan("retrain", "churn"))
    assert result.status == "failed" and result.error == "command exited 3: no GPU"

    slow = ActionEngine(_command_config("import time; time.sleep(30)", timeout="1s"))
    result = slow.apply(slow.plan("retrain", "churn"))
    assert result.status == "failed" and "timed out after 1s" in (result.error or "")
