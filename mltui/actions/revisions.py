"""ReplicaSet revision history: what ``rollout undo`` reads, for Deployments and Argo Rollouts.

Deployment rollback is kubectl's ``rollout undo`` (k8s.io/kubectl polymorphichelpers
rollback.go) and Argo's is ``kubectl argo rollouts undo`` (undo.go); both find the
ReplicaSets controlled by the object, pick the previous one by its revision
annotation (or the one ``--to-revision`` names) and copy its pod template back with
the pod-template-hash label stripped. Only the annotation and the hash label differ
between the two, so the shared steps live here; what each kind then writes is in
:mod:`mltui.actions.deployment` and :mod:`mltui.actions.argo`.
"""

from __future__ import annotations

import copy
from typing import Any

from mltui.actions.kubeapi import REPLICASETS, KubeApi

DEPLOYMENT_REVISION = "deployment.kubernetes.io/revision"
ROLLOUT_REVISION = "rollout.argoproj.io/revision"
DEPLOYMENT_HASH_LABEL = "pod-template-hash"
ROLLOUT_HASH_LABEL = "rollouts-pod-template-hash"


def parse_revision(to_revision: str | None) -> int:
    """``--to-revision`` as kubectl takes it: absent or "" is 0 (the previous revision)."""
    if to_revision is None or to_revision == "":
        return 0
    try:
        value = int(to_revision)
    except ValueError:
        raise ValueError(f'--to-revision must be a revision number, not "{to_revision}"') from None
    if value < 0:
        raise ValueError(f"revision not found: {value}")
    return value


def _selector(obj: dict[str, Any]) -> str | None:
    labels = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or None


def owned_replicasets(api: KubeApi, owner: dict[str, Any]) -> list[dict[str, Any]]:
    """ReplicaSets whose controller ownerReference is ``owner`` (by uid), as kubectl lists them."""
    meta = owner["metadata"]
    items = api.list(REPLICASETS, meta["namespace"], _selector(owner))
    uid = meta.get("uid")
    owned = []
    for rs in items:
        for ref in (rs.get("metadata") or {}).get("ownerReferences") or []:
            if ref.get("controller") and ref.get("uid") == uid:
                owned.append(rs)
                break
    return owned


def revision_of(rs: dict[str, Any], annotation: str) -> int | None:
    """The ReplicaSet's revision number from ``annotation``; None when it cannot count."""
    value = ((rs.get("metadata") or {}).get("annotations") or {}).get(annotation)
    if value is None:
        # kubectl-argo-rollouts treats a missing annotation as revision 0; kubectl's
        # deploymentutil.Revision does too (strconv of "" fails there, skipping it).
        return 0 if annotation == ROLLOUT_REVISION else None
    try:
        return int(value)
    except ValueError:
        return None


def pick_revision(
    replicasets: list[dict[str, Any]], annotation: str, to_revision: int, kind_name: str
) -> dict[str, Any]:
    """kubectl's deploymentRevision: the ReplicaSet for ``to_revision``, or the second newest (0)."""
    latest: tuple[int, dict[str, Any] | None] = (-1, None)
    previous: tuple[int, dict[str, Any] | None] = (-1, None)
    for rs in replicasets:
        v = revision_of(rs, annotation)
        if v is None:
            continue
        if to_revision == 0:
            if latest[0] < v:
                previous, latest = latest, (v, rs)
            elif previous[0] < v:
                previous = (v, rs)
        elif v == to_revision:
            return rs
    if to_revision > 0:
        raise LookupError(f"unable to find specified revision {to_revision} in history")
    if previous[1] is None:
        raise LookupError(f"no rollout history found for {kind_name}")
    return previous[1]


def without_label(template: dict[str, Any], label: str) -> dict[str, Any]:
    """A deep copy of the pod template without ``label`` (the pod-template-hash one)."""
    out = copy.deepcopy(template)
    labels = (out.get("metadata") or {}).get("labels")
    if labels is not None:
        labels.pop(label, None)
    return out
