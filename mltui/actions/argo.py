"""Promote and roll back an Argo Rollouts target (a ``Rollout`` with a canary strategy).

DESIGN.md §4, ``kind = "Rollout"``, as the ``kubectl argo rollouts`` plugin does it:

- promote: ``status.promoteFull = true`` (skip the remaining steps and analyses),
  plus unpausing the spec if it is paused; refused on an aborted or fully promoted
  Rollout.
- rollback while an update is in flight: ``status.abort = true`` (all traffic back
  to the stable ReplicaSet).
- rollback otherwise, or with ``--to-revision``: ``undo`` (kubectl-argo-rollouts
  undo.go) — the previous ReplicaSet by ``rollout.argoproj.io/revision`` (see
  :mod:`mltui.actions.revisions`), ``rollouts-pod-template-hash`` stripped, one JSON
  patch of ``/spec/template`` only.

Status patches cannot touch metadata, so the ``mltui.io/last-action`` annotation is
written by a separate, unguarded merge patch of the Rollout itself.
"""

from __future__ import annotations

from typing import Any

from mltui.actions.kube import ClusterPlan, TargetRef, field_changes, template_version
from mltui.actions.kubeapi import ROLLOUTS, KubeApi
from mltui.actions.kubewrites import json_patch_step, merge_patch_step
from mltui.actions.plan import Change, Step
from mltui.actions.revisions import (
    ROLLOUT_HASH_LABEL,
    ROLLOUT_REVISION,
    owned_replicasets,
    pick_revision,
    revision_of,
    without_label,
)


def _rs_by_hash(replicasets: list[dict[str, Any]], pod_hash: str | None) -> dict[str, Any] | None:
    if not pod_hash:
        return None
    for rs in replicasets:
        labels = (rs.get("metadata") or {}).get("labels") or {}
        if labels.get(ROLLOUT_HASH_LABEL) == pod_hash or (rs.get("metadata") or {}).get(
            "name", ""
        ).endswith(f"-{pod_hash}"):
            return rs
    return None


def _set_status_flag(ro: dict[str, Any], obj: str, flag: str, summary: str) -> Step:
    """``status.<flag> = true`` on Rollout ``obj`` through the status subresource, as the plugin."""
    old = (ro.get("status") or {}).get(flag)
    return merge_patch_step(
        ROLLOUTS,
        ro,
        {"status": {flag: True}},
        [Change("kubernetes", obj, f"status.{flag}", old, True)],
        summary,
        None,  # a status patch cannot touch metadata: the annotation is a separate step
        subresource="status",
    )


def _annotate_step(ro: dict[str, Any], last_action: str) -> Step:
    """Record the action on the Rollout itself (status patches cannot touch metadata)."""
    summary = "record the action on the Rollout"
    return merge_patch_step(ROLLOUTS, ro, {}, [], summary, last_action, guard=False)


def plan_rollout(
    api: KubeApi, target: TargetRef, action: str, last_action: str, to_revision: int
) -> ClusterPlan:
    """Argo: promote = status.promoteFull; rollback = status.abort while in flight, else undo."""
    ro = api.get(ROLLOUTS, target.namespace, target.name)
    status = ro.get("status") or {}
    obj = ROLLOUTS.object(target.namespace, target.name)
    replicasets = owned_replicasets(api, ro)
    stable_rs = _rs_by_hash(replicasets, status.get("stableRS"))
    before = template_version(stable_rs["spec"]["template"]) if stable_rs else None
    canary_version = template_version(ro["spec"]["template"])
    in_flight = bool(status.get("currentPodHash")) and status.get("currentPodHash") != status.get(
        "stableRS"
    )
    aborted = bool(status.get("abort"))

    if action == "promote":
        if aborted:
            return ClusterPlan(
                refusal=f"{obj} was aborted; retry it first (kubectl argo rollouts retry rollout {target.name})",
                serving_before=before,
            )
        if not in_flight:
            return ClusterPlan(
                refusal=f"nothing to promote: {obj} is fully promoted (stable = current revision)",
                serving_before=before,
            )
        promote = _set_status_flag(
            ro, obj, "promoteFull", "promote fully: skip the remaining steps and analyses"
        )
        if (ro.get("spec") or {}).get("paused"):
            record = merge_patch_step(
                ROLLOUTS,
                ro,
                {"spec": {"paused": False}},
                [Change("kubernetes", obj, "spec.paused", True, False)],
                "unpause and record the action",
                last_action,
                guard=False,
            )
        else:
            record = _annotate_step(ro, last_action)
        return ClusterPlan((promote, record), (), None, before, canary_version)

    if to_revision == 0 and in_flight and not aborted:
        abort = _set_status_flag(
            ro, obj, "abort", "abort the update: all traffic back to the stable ReplicaSet"
        )
        return ClusterPlan(
            (abort, _annotate_step(ro, last_action)), (), None, canary_version, before
        )

    try:
        rs = pick_revision(replicasets, ROLLOUT_REVISION, to_revision, f'rollout "{target.name}"')
    except LookupError as exc:
        return ClusterPlan(refusal=str(exc), serving_before=before)
    current = ro["spec"]["template"]
    template = without_label(rs["spec"]["template"], ROLLOUT_HASH_LABEL)
    rev = revision_of(rs, ROLLOUT_REVISION)
    after = template_version(template)
    if template == without_label(current, ROLLOUT_HASH_LABEL):
        return ClusterPlan(
            refusal=f"skipped rollback (current template already matches revision {rev})",
            serving_before=before,
        )
    step = json_patch_step(
        ROLLOUTS,
        ro,
        [{"op": "replace", "path": "/spec/template", "value": template}],
        field_changes(obj, current, template, "spec.template"),
        f"undo {target.name} to revision {rev}"
        + (f" (v{canary_version} → v{after})" if after else ""),
        last_action,
    )
    return ClusterPlan((step,), (), None, canary_version, after)
