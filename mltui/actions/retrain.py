"""Retrain: a Job from a CronJob, a webhook POST, or a local command.

- ``cronjob``: the Job ``kubectl create job NAME --from=cronjob/CRON`` creates
  (kubectl create_job.go ``createJobFromCronJob``): annotations
  ``cronjob.kubernetes.io/instantiate: manual`` then the job template's own, the job
  template's labels, a controller ownerReference to the CronJob (without
  blockOwnerDeletion, as kubectl), and the job template's spec verbatim.
- ``webhook``: an httpx POST of the :func:`payload` JSON, headers from the config
  (values may come from ``${VAR}``), and with ``hmac_secret`` a signature header
  ``X-Mltui-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes>``.
- ``command``: the same JSON on the command's stdin, bounded by ``timeout``.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import os
import subprocess
import time
from typing import Any

from mltui import __version__, secrets
from mltui.actions.audit import Who, now_iso
from mltui.actions.kubeapi import CRONJOBS, JOBS, KubeApi
from mltui.actions.plan import LAST_ACTION_ANNOTATION, Change, Step
from mltui.config import ModelConfig, Retrain

SIGNATURE_HEADER = "X-Mltui-Signature"
INSTANTIATE_ANNOTATION = "cronjob.kubernetes.io/instantiate"


class RetrainError(Exception):
    """The webhook or command failed (message redacted)."""


def payload(
    model: ModelConfig,
    versions: dict[str, str | None],
    drift: dict[str, Any] | None,
    who: Who,
) -> dict[str, Any]:
    """The JSON a webhook receives and a command reads on stdin."""
    return {
        "event": "retrain",
        "model": model.name,
        "registered_model": model.registry_name,
        "versions": versions,
        "drift": drift,
        "who": {"user": who.user, "host": who.host},
        "time": now_iso(),
    }


def body_bytes(body: dict[str, Any]) -> bytes:
    """The exact bytes sent and signed: compact JSON, keys sorted."""
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


def signature(secret: str, raw: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), raw, hashlib.sha256).hexdigest()


# ---------------------------------------------------------------- cronjob


def job_name(cronjob: str, now: float | None = None) -> str:
    """<cronjob>-mltui-<unix seconds>, within the 63 characters a Job name may have."""
    stamp = str(int(now if now is not None else time.time()))
    return f"{cronjob[: 63 - 7 - len(stamp)]}-mltui-{stamp}"


def job_from_cronjob(cronjob: dict[str, Any], name: str) -> dict[str, Any]:
    """What ``kubectl create job NAME --from=cronjob/…`` sends."""
    meta = cronjob["metadata"]
    template = (cronjob.get("spec") or {}).get("jobTemplate") or {}
    tmeta = template.get("metadata") or {}
    annotations = {INSTANTIATE_ANNOTATION: "manual"}
    annotations.update(tmeta.get("annotations") or {})
    job: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "CronJob",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": copy.deepcopy(template.get("spec") or {}),
    }
    if tmeta.get("labels"):
        job["metadata"]["labels"] = dict(tmeta["labels"])
    return job


def plan_cronjob(
    api: KubeApi, retrain: Retrain, last_action: str
) -> tuple[list[Step], list[str], str | None]:
    assert retrain.cronjob is not None
    namespace, _, cron_name = retrain.cronjob.partition("/")
    try:
        cronjob = api.get(CRONJOBS, namespace, cron_name)
    except Exception as exc:
        if getattr(exc, "not_found", False):
            return [], [], f"CronJob {namespace}/{cron_name} not found"
        raise
    name = job_name(cron_name)
    job = job_from_cronjob(cronjob, name)
    # The audit trail on the Job itself: the only addition to what kubectl creates.
    job["metadata"]["annotations"][LAST_ACTION_ANNOTATION] = last_action
    containers = (((job["spec"].get("template") or {}).get("spec") or {}).get("containers")) or []
    obj = JOBS.object(namespace, name)
    changes = [
        Change("kubernetes", obj, "(new object)", None, f"Job from cronjob/{cron_name}"),
        Change(
            "kubernetes", obj, f'metadata.annotations["{INSTANTIATE_ANNOTATION}"]', None, "manual"
        ),
    ]
    if containers:
        changes.append(
            Change(
                "kubernetes",
                obj,
                "spec.template.spec.containers[0].image",
                None,
                containers[0].get("image"),
            )
        )
    notes = []
    if (cronjob.get("spec") or {}).get("suspend"):
        notes.append(f"cronjob/{cron_name} is suspended; a manual Job runs anyway")
    step = Step(
        system="kubernetes",
        object=obj,
        verb="create",
        summary=f"create Job {name} from cronjob/{cron_name} (as kubectl create job --from)",
        request={
            "api": JOBS.api,
            "plural": JOBS.plural,
            "namespace": namespace,
            "name": name,
            "body": job,
        },
        changes=tuple(changes),
    )
    return [step], notes, None


def job_progress(api: KubeApi, namespace: str, name: str) -> str:
    """One line on a Job: active / succeeded / failed pods and its last condition."""
    job = api.get(JOBS, namespace, name)
    status = job.get("status") or {}
    parts = [f"{k} {status.get(k, 0)}" for k in ("active", "succeeded", "failed")]
    conditions = [c for c in status.get("conditions") or [] if c.get("status") == "True"]
    if conditions:
        parts.append(conditions[-1].get("type", ""))
    return f"job {namespace}/{name}: " + ", ".join(parts)


# ---------------------------------------------------------------- webhook


def plan_webhook(retrain: Retrain, body: dict[str, Any]) -> Step:
    assert retrain.webhook is not None
    url = secrets.redact(retrain.webhook)
    headers = sorted(retrain.headers)
    return Step(
        system="webhook",
        object=url,
        verb="POST",
        summary=f"POST the retrain request to {url}" + (" (signed)" if retrain.hmac_secret else ""),
        request={
            "url": url,
            "headers": headers,  # names only: values are secrets read at send time
            "signed": retrain.hmac_secret is not None,
            "body": body,
        },
        changes=(Change("webhook", url, "POST", None, f"retrain {body['model']}"),),
    )


def send_webhook(retrain: Retrain, body: dict[str, Any]) -> str:
    """POST the body; returns the server's answer. RetrainError on a non-2xx or no answer."""
    import httpx

    assert retrain.webhook is not None
    raw = body_bytes(body)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"mltui/{__version__}",
        "X-Mltui-Event": "retrain",
    }
    for key, value in retrain.headers.items():
        secret = value.get_secret_value()
        secrets.register(secret)
        headers[key] = secret
    if retrain.hmac_secret is not None:
        key = retrain.hmac_secret.get_secret_value()
        secrets.register(key)
        headers[SIGNATURE_HEADER] = signature(key, raw)
    try:
        response = httpx.post(
            retrain.webhook, content=raw, headers=headers, timeout=retrain.timeout
        )
    except httpx.HTTPError as exc:
        raise RetrainError(f"webhook: {secrets.error_text(exc)}") from None
    text = secrets.redact(" ".join(response.text.split()))[:200]
    if response.status_code >= 300:
        raise RetrainError(f"webhook answered HTTP {response.status_code}: {text}")
    return f"webhook answered HTTP {response.status_code}" + (f": {text}" if text else "")


# ---------------------------------------------------------------- command


def plan_command(retrain: Retrain, body: dict[str, Any]) -> Step:
    assert retrain.command is not None
    shown = secrets.redact(" ".join(retrain.command))
    return Step(
        system="command",
        object=shown,
        verb="run",
        summary=f"run `{shown}` with the retrain request on stdin (timeout {retrain.timeout:g}s)",
        request={"argv": [secrets.redact(a) for a in retrain.command], "body": body},
        changes=(Change("command", shown, "run", None, f"retrain {body['model']}"),),
    )


def run_command(retrain: Retrain, body: dict[str, Any]) -> str:
    assert retrain.command is not None
    env = {**os.environ, "MLTUI_ACTION": "retrain", "MLTUI_MODEL": str(body["model"])}
    try:
        done = subprocess.run(  # noqa: S603 - the operator's own configured command
            retrain.command,
            input=body_bytes(body),
            capture_output=True,
            timeout=retrain.timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise RetrainError(f"command timed out after {retrain.timeout:g}s and was killed") from None
    except OSError as exc:
        raise RetrainError(f"command could not start: {secrets.error_text(exc)}") from None
    out = (done.stdout or b"").decode("utf-8", "replace").strip().splitlines()
    err = (done.stderr or b"").decode("utf-8", "replace").strip().splitlines()
    if done.returncode != 0:
        tail = secrets.redact(err[-1] if err else out[-1] if out else "")
        raise RetrainError(f"command exited {done.returncode}" + (f": {tail}" if tail else ""))
    last = secrets.redact(out[-1]) if out else ""
    return "command exited 0" + (f": {last[:200]}" if last else "")
