"""Promote and roll back a Deployment target (a stable Deployment + an optional canary one).

DESIGN.md §4, ``kind = "Deployment"``:

- promote (:func:`plan_deployment_promote`): copy the canary Deployment's pod
  template into the stable one (keeping the labels the stable selector needs) and
  scale the canary to 0.
- rollback (:func:`plan_deployment_rollback`): kubectl's ``rollout undo`` on the
  stable Deployment — the previous ReplicaSet by ``deployment.kubernetes.io/revision``
  (or ``--to-revision``, see :mod:`mltui.actions.revisions`), ``pod-template-hash``
  stripped, one JSON patch replacing ``/spec/template`` and ``/metadata/annotations``
  — and scale any canary to 0.
- a rerun after a half-done rollback (:func:`unfinished_rollback`): the rollback
  records on the Deployment the champion it saw and the template it wrote, so the
  engine can finish the registry half instead of undoing the cluster once more.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from mltui.actions.kube import (
    ClusterPlan,
    TargetRef,
    field_changes,
    get_or_none,
    last_action_value,
    template_version,
)
from mltui.actions.kubeapi import DEPLOYMENTS, KubeApi
from mltui.actions.kubewrites import json_patch_step, merge_patch_step
from mltui.actions.plan import LAST_ACTION_ANNOTATION, Change, Step
from mltui.actions.revisions import (
    DEPLOYMENT_HASH_LABEL,
    DEPLOYMENT_REVISION,
    owned_replicasets,
    pick_revision,
    revision_of,
    without_label,
)

# kubectl rollback.go: annotations kept from the Deployment, never copied from the ReplicaSet.
ANNOTATIONS_TO_SKIP = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        "deployment.kubernetes.io/revision",
        "deployment.kubernetes.io/revision-history",
        "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas",
        "deprecated.deployment.rollback.to",
    }
)


# ---------------------------------------------------------------- the canary


def _scale_to_zero(
    canary: dict[str, Any], namespace: str, name: str, last_action: str
) -> Step | None:
    """The step scaling the (already read) canary Deployment to 0, or None if it is at 0."""
    replicas = (canary.get("spec") or {}).get("replicas", 1)
    if replicas == 0:
        return None
    return merge_patch_step(
        DEPLOYMENTS,
        canary,
        {"spec": {"replicas": 0}},
        [Change("kubernetes", DEPLOYMENTS.object(namespace, name), "spec.replicas", replicas, 0)],
        f"scale the canary {name} to 0",
        last_action,
    )


def scale_canary_to_zero(api: KubeApi, target: TargetRef, last_action: str) -> Step | None:
    """The step scaling the target's canary Deployment to 0, or None (none, or already 0)."""
    if not target.canary:
        return None
    canary = get_or_none(api, DEPLOYMENTS, target.namespace, target.canary)
    if canary is None:
        return None
    return _scale_to_zero(canary, target.namespace, target.canary, last_action)


# ---------------------------------------------------------------- promote


def _promoted_template(canary: dict[str, Any], stable: dict[str, Any]) -> dict[str, Any]:
    """The canary's pod template, keeping the labels the stable Deployment's selector needs.

    A template whose labels do not match the Deployment's selector is rejected by the
    API server, and the canary's own selector labels (e.g. ``track: canary``) must not
    leak into the stable pods.
    """
    template = without_label(canary["spec"]["template"], DEPLOYMENT_HASH_LABEL)
    stable_selector = ((stable.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    canary_selector = ((canary.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    stable_labels = ((stable["spec"]["template"].get("metadata")) or {}).get("labels") or {}
    labels = dict((template.get("metadata") or {}).get("labels") or {})
    for key in canary_selector:
        if key not in stable_selector:
            if key in stable_labels:
                labels[key] = stable_labels[key]
            else:
                labels.pop(key, None)
    labels.update(stable_selector)
    template.setdefault("metadata", {})["labels"] = labels
    return template


def plan_deployment_promote(api: KubeApi, target: TargetRef, last_action: str) -> ClusterPlan:
    """Copy the canary's pod template into the stable Deployment; scale the canary to 0."""
    stable = api.get(DEPLOYMENTS, target.namespace, target.name)
    before = template_version(stable["spec"]["template"])
    if not target.canary:
        return ClusterPlan(
            refusal=f"Deployment {target.namespace}/{target.name} has no canary configured "
            "(target.canary): nothing to promote",
            serving_before=before,
        )
    canary = get_or_none(api, DEPLOYMENTS, target.namespace, target.canary)
    if canary is None:
        return ClusterPlan(
            refusal=f"canary Deployment {target.namespace}/{target.canary} not found: nothing to promote",
            serving_before=before,
        )
    new_template = _promoted_template(canary, stable)
    old_template = stable["spec"]["template"]
    canary_replicas = (canary.get("spec") or {}).get("replicas", 1)
    after = template_version(new_template)
    same = new_template == old_template
    if canary_replicas == 0 and not same:
        return ClusterPlan(
            refusal=f"canary {target.namespace}/{target.canary} is scaled to 0: no canary in flight to promote",
            serving_before=before,
        )
    steps: list[Step] = []
    notes: list[str] = []
    if not same:
        changes = field_changes(
            DEPLOYMENTS.object(target.namespace, target.name),
            old_template,
            new_template,
            "spec.template",
        )
        steps.append(
            json_patch_step(
                DEPLOYMENTS,
                stable,
                [{"op": "replace", "path": "/spec/template", "value": new_template}],
                changes,
                f"copy the canary's pod template into {target.name}"
                + (f" (v{before} → v{after})" if before or after else ""),
                last_action,
            )
        )
        if (stable.get("spec") or {}).get("paused"):
            notes.append(f"{target.name} is paused: the new template rolls out when it is resumed")
    else:
        notes.append(f"{target.name} already runs the canary's pod template")
    scale = _scale_to_zero(canary, target.namespace, target.canary, last_action)
    if scale is not None:
        steps.append(scale)
    if steps:
        notes.append(
            "the stable Deployment keeps the labels its selector needs; "
            "everything else in the pod template comes from the canary"
        )
    return ClusterPlan(tuple(steps), tuple(notes), None, before, after)


# ---------------------------------------------------------------- rollback


def template_digest(template: dict[str, Any]) -> str:
    """A short fingerprint of a pod template (hash label stripped), to recognise it later."""
    text = json.dumps(
        without_label(template, DEPLOYMENT_HASH_LABEL), sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def unfinished_rollback(dep: dict[str, Any]) -> dict[str, Any] | None:
    """What the last mltui rollback of ``dep`` recorded, if it may have left the registry behind.

    A Deployment rollback records in its last-action annotation the champion alias it
    saw, the version it rolled the cluster to and the template it wrote. When the
    Deployment still holds exactly that template and that rollback meant to move the
    champion (seen ≠ target), a second ``mltui rollback`` must finish it — not roll
    the cluster back once more (kubectl's undo ping-pongs between two revisions).
    The engine then compares the recorded champion with the registry's.
    Returns the record (plus who/when) or None.
    """
    meta = dep.get("metadata") or {}
    raw = (meta.get("annotations") or {}).get(LAST_ACTION_ANNOTATION)
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("by") != "mltui" or data.get("action") != "rollback":
        return None
    record = data.get("rollback")
    if not isinstance(record, dict) or not record.get("champion"):
        return None
    if record.get("champion") == record.get("to_version"):
        return None  # that rollback planned no registry move
    if record.get("template") != template_digest((dep.get("spec") or {}).get("template") or {}):
        return None  # the template changed since: not what that rollback left
    return {**record, "user": data.get("user"), "time": data.get("time")}


def plan_deployment_rollback(
    api: KubeApi,
    target: TargetRef,
    last_action: str,
    to_revision: int,
    champion: str | None = None,
) -> ClusterPlan:
    """kubectl rollout undo on the stable Deployment; scale any canary to 0.

    ``champion``: the registry's champion alias now (None: unknown or no MLflow). It is
    recorded with the written template in the last-action annotation, so a rerun after
    a half-done rollback can tell (see :func:`unfinished_rollback`).
    """
    dep = api.get(DEPLOYMENTS, target.namespace, target.name)
    current = dep["spec"]["template"]
    before = template_version(current)
    canary_step = scale_canary_to_zero(api, target, last_action)
    try:
        rs = pick_revision(
            owned_replicasets(api, dep),
            DEPLOYMENT_REVISION,
            to_revision,
            f'deployment "{target.name}"',
        )
    except LookupError as exc:
        if canary_step is not None and to_revision == 0:
            # Nothing to undo on the stable side, but a canary to stop: still a rollback.
            return ClusterPlan((canary_step,), (f"stable: {exc}",), None, before, before)
        return ClusterPlan(refusal=str(exc), serving_before=before)
    if (dep.get("spec") or {}).get("paused"):
        return ClusterPlan(
            refusal=(
                "you cannot rollback a paused deployment; resume it first with "
                f"'kubectl rollout resume deployment/{target.name}' and try again"
            ),
            serving_before=before,
        )
    rev = revision_of(rs, DEPLOYMENT_REVISION)
    template = without_label(rs["spec"]["template"], DEPLOYMENT_HASH_LABEL)
    after = template_version(template)
    steps: list[Step] = []
    notes: list[str] = []
    if template == without_label(current, DEPLOYMENT_HASH_LABEL):
        notes.append(f"skipped rollback (current template already matches revision {rev})")
    else:
        dep_annotations = (dep.get("metadata") or {}).get("annotations") or {}
        annotations = {k: v for k, v in dep_annotations.items() if k in ANNOTATIONS_TO_SKIP}
        for k, v in ((rs.get("metadata") or {}).get("annotations") or {}).items():
            if k not in ANNOTATIONS_TO_SKIP:
                annotations[k] = v
        if champion is not None:
            record = {
                "revision": rev,
                "to_version": after,
                "template": template_digest(template),
                "champion": champion,
            }
            last_action = last_action_value({**json.loads(last_action), "rollback": record})
        annotations[LAST_ACTION_ANNOTATION] = last_action
        obj = DEPLOYMENTS.object(target.namespace, target.name)
        changes = field_changes(obj, current, template, "spec.template")
        changes += field_changes(obj, dep_annotations, annotations, "metadata.annotations")
        steps.append(
            json_patch_step(
                DEPLOYMENTS,
                dep,
                [
                    {"op": "replace", "path": "/spec/template", "value": template},
                    {"op": "replace", "path": "/metadata/annotations", "value": annotations},
                ],
                changes,
                f"roll {target.name} back to revision {rev}"
                + (f" (v{before} → v{after})" if before or after else ""),
                last_action,
                annotate=False,  # already in the annotations the patch writes
            )
        )
    if canary_step is not None:
        steps.append(canary_step)
    return ClusterPlan(tuple(steps), tuple(notes), None, before, after)
