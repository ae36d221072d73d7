"""A small Deployment controller (and a smaller Job controller) for the API stand-in.

It does what kube-controller-manager's deployment controller does that mltui can see:

- every Deployment template gets a ReplicaSet ``<deployment>-<pod-template-hash>``
  (hash: FNV-1a 32 of the template, safe-encoded like ``rand.SafeEncodeString``),
  owned by the Deployment (``ownerReferences``, controller=true), with the label
  ``pod-template-hash`` in its labels, selector and template;
- revisions follow ``deploymentutil.SetNewReplicaSetAnnotations``: the new
  ReplicaSet gets ``max(old revisions) + 1``; when an old template comes back its
  ReplicaSet is re-used, its revision bumped and the old number appended to
  ``deployment.kubernetes.io/revision-history``; the Deployment carries the same
  ``deployment.kubernetes.io/revision``;
- old ReplicaSets are scaled to 0 and pruned beyond ``revisionHistoryLimit``;
- status: observedGeneration, replicas, updatedReplicas, readyReplicas,
  availableReplicas and the Available/Progressing conditions.

Unlike the real one it runs synchronously inside the write, as if infinitely fast.
Tests steer it with a *mode*, fleet-wide or per Deployment:

``complete``  the rollout finishes at once (the default);
``hold``      the new ReplicaSet stops at ``desired - 1`` updated replicas (progressing);
``fail``      as ``hold``, and Progressing=False reason ProgressDeadlineExceeded;
``off``       the controller does nothing: status.observedGeneration lags behind.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from tests.support.kube_standin import KubeStandin

Mode = Literal["complete", "hold", "fail", "off"]
MODES = ("complete", "hold", "fail", "off")

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
HASH_LABEL = "pod-template-hash"
_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _fnv1a_32(data: bytes) -> int:
    h = 0x811C9DC5
    for byte in data:
        h ^= byte
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def strip_hash(template: dict[str, Any]) -> dict[str, Any]:
    """The template without the pod-template-hash label (kubectl/controller compare this)."""
    out = copy.deepcopy(template)
    labels = out.get("metadata", {}).get("labels")
    if labels:
        labels.pop(HASH_LABEL, None)
    return out


def pod_template_hash(template: dict[str, Any], collision_count: int = 0) -> str:
    """A stable, DNS-safe hash of a pod template, shaped like the controller's."""
    data = json.dumps(strip_hash(template), sort_keys=True, separators=(",", ":")).encode()
    if collision_count:
        data += str(collision_count).encode()
    return "".join(_ALPHANUMS[b % len(_ALPHANUMS)] for b in str(_fnv1a_32(data)).encode())


def revision_of(obj: dict[str, Any]) -> int:
    try:
        return int(obj.get("metadata", {}).get("annotations", {}).get(REVISION, "0"))
    except ValueError:
        return 0


def _condition(status: dict[str, Any], type_: str, value: str, reason: str, message: str) -> None:
    conditions = status.setdefault("conditions", [])
    now = now_rfc3339()
    for cond in conditions:
        if cond["type"] == type_:
            if cond["status"] != value:
                cond["lastTransitionTime"] = now
            cond.update(status=value, reason=reason, message=message, lastUpdateTime=now)
            return
    conditions.append(
        {
            "type": type_,
            "status": value,
            "reason": reason,
            "message": message,
            "lastUpdateTime": now,
            "lastTransitionTime": now,
        }
    )


@dataclass
class DeploymentController:
    """Reconciles apps/v1 Deployments into ReplicaSets inside the stand-in's writes."""

    mode: Mode = "complete"
    """Mode of every Deployment without its own."""
    modes: dict[tuple[str, str], Mode] = field(default_factory=dict)
    """(namespace, name) -> mode."""

    def mode_for(self, namespace: str, name: str) -> Mode:
        return self.modes.get((namespace, name), self.mode)

    def reconcile(self, standin: KubeStandin, deploy: dict[str, Any]) -> None:
        """Bring ``deploy`` (about to be stored) and its ReplicaSets in line; in place."""
        meta, spec = deploy["metadata"], deploy.get("spec", {})
        ns, name = meta["namespace"], meta["name"]
        mode = self.mode_for(ns, name)
        status = deploy.setdefault("status", {})
        if mode == "off":
            return
        desired = int(spec.get("replicas", 1))
        template = spec.get("template", {})
        owned = [
            rs
            for rs in standin.raw_list("replicasets.apps", ns)
            if any(o.get("uid") == meta["uid"] for o in rs["metadata"].get("ownerReferences", []))
        ]
        wanted = strip_hash(template)
        new_rs = next((rs for rs in owned if strip_hash(rs["spec"]["template"]) == wanted), None)
        status["observedGeneration"] = meta.get("generation", 1)

        if spec.get("paused"):
            _condition(status, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused")
            self._count(status, owned, new_rs)
            return

        old = [rs for rs in owned if rs is not new_rs]
        max_old = max((revision_of(rs) for rs in old), default=0)
        if new_rs is None:
            new_rs = self._new_replicaset(deploy, max_old + 1)
            created = True
        else:
            created = False
            current = revision_of(new_rs)
            if current <= max_old:
                annotations = new_rs["metadata"].setdefault("annotations", {})
                history = [h for h in annotations.get(REVISION_HISTORY, "").split(",") if h]
                annotations[REVISION_HISTORY] = ",".join([*history, str(current)])
                annotations[REVISION] = str(max_old + 1)
        revision = revision_of(new_rs)
        meta.setdefault("annotations", {})[REVISION] = str(revision)
        new_rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] = str(
            desired
        )

        if mode == "complete":
            updated, old_left = desired, 0
        else:
            updated = max(desired - 1, 0)
            old_left = desired - updated
        self._scale(new_rs, updated)
        old.sort(key=revision_of, reverse=True)
        for i, rs in enumerate(old):
            self._scale(rs, old_left if i == 0 else 0)
            standin.raw_save("replicasets.apps", rs)
        standin.raw_save("replicasets.apps", new_rs)
        self._prune(standin, deploy, old)

        rs_name = new_rs["metadata"]["name"]
        if mode == "complete":
            _condition(
                status,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
            )
            _condition(
                status,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{rs_name}" has successfully progressed.',
            )
        elif mode == "hold":
            _condition(
                status,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
            )
            reason = "NewReplicaSetCreated" if created else "ReplicaSetUpdated"
            message = (
                f'Created new replica set "{rs_name}"'
                if created
                else f'ReplicaSet "{rs_name}" is progressing.'
            )
            _condition(status, "Progressing", "True", reason, message)
        else:  # fail
            _condition(
                status,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
            )
            _condition(
                status,
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{rs_name}" has timed out progressing.',
            )
        self._count(status, [new_rs, *old], new_rs)

    # ---------------------------------------------------------------- helpers

    @staticmethod
    def _count(
        status: dict[str, Any], rses: list[dict[str, Any]], new_rs: dict[str, Any] | None
    ) -> None:
        def total(key: str) -> int:
            return sum(int(rs.get("status", {}).get(key, 0)) for rs in rses)

        status["replicas"] = total("replicas")
        status["updatedReplicas"] = (
            int(new_rs.get("status", {}).get("replicas", 0)) if new_rs else 0
        )
        status["readyReplicas"] = total("readyReplicas")
        status["availableReplicas"] = total("availableReplicas")
        unavailable = status["replicas"] - status["availableReplicas"]
        if unavailable > 0:
            status["unavailableReplicas"] = unavailable
        else:
            status.pop("unavailableReplicas", None)

    @staticmethod
    def _scale(rs: dict[str, Any], replicas: int) -> None:
        rs["spec"]["replicas"] = replicas
        rs["status"] = {
            "replicas": replicas,
            "fullyLabeledReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }

    @staticmethod
    def _new_replicaset(deploy: dict[str, Any], revision: int) -> dict[str, Any]:
        meta, spec = deploy["metadata"], deploy["spec"]
        template = copy.deepcopy(spec["template"])
        h = pod_template_hash(template, int(deploy.get("status", {}).get("collisionCount", 0)))
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = h
        selector = copy.deepcopy(spec.get("selector", {}))
        selector.setdefault("matchLabels", {})[HASH_LABEL] = h
        return {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{meta['name']}-{h}",
                "namespace": meta["namespace"],
                "labels": dict(template["metadata"]["labels"]),
                "annotations": {
                    REVISION: str(revision),
                    "deployment.kubernetes.io/desired-replicas": str(spec.get("replicas", 1)),
                    "deployment.kubernetes.io/max-replicas": str(int(spec.get("replicas", 1)) + 1),
                },
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": {"replicas": 0, "selector": selector, "template": template},
            "status": {"replicas": 0},
        }

    @staticmethod
    def _prune(standin: KubeStandin, deploy: dict[str, Any], old: list[dict[str, Any]]) -> None:
        limit = int(deploy["spec"].get("revisionHistoryLimit", 10))
        idle = [rs for rs in old if rs["spec"]["replicas"] == 0]
        idle.sort(key=revision_of)
        for rs in idle[: max(0, len(idle) - limit)]:
            standin.raw_delete(
                "replicasets.apps", rs["metadata"]["namespace"], rs["metadata"]["name"]
            )


def start_job(job: dict[str, Any]) -> None:
    """What the Job controller does first: the Job is running one pod."""
    if not job.get("spec", {}).get("suspend"):
        job["status"] = {"startTime": now_rfc3339(), "active": 1, "ready": 0}


def finish_job(job: dict[str, Any], succeeded: bool = True) -> None:
    """Mark a Job complete (or failed) as the Job controller would."""
    now = now_rfc3339()
    status = job.setdefault("status", {})
    status["active"] = 0
    status.pop("ready", None)
    if succeeded:
        status["succeeded"] = 1
        status["completionTime"] = now
        conds = [
            (
                "SuccessCriteriaMet",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
            ),
            ("Complete", "CompletionsReached", "Reached expected number of succeeded pods"),
        ]
    else:
        status["failed"] = int(job["spec"].get("backoffLimit", 6)) + 1
        conds = [
            (
                "FailureTarget",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            ),
            ("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
        ]
    status["conditions"] = [
        {
            "type": t,
            "status": "True",
            "reason": r,
            "message": m,
            "lastProbeTime": now,
            "lastTransitionTime": now,
        }
        for t, r, m in conds
    ]
