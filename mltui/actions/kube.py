"""Promote and roll back on the cluster: Deployment (+ canary), KServe, Argo Rollouts.

Exactly DESIGN.md §4. Each planner reads the live objects and returns a
:class:`ClusterPlan`: the writes (as plan :class:`~mltui.actions.plan.Step` s with
their field-level changes), the model version the target will serve afterwards
(so the registry step can move ``champion`` to it), notes, or a refusal.

Every write carries the ``resourceVersion`` read at plan time (JSON patch: a
``replace`` of ``/metadata/resourceVersion``; merge patch: ``metadata.resourceVersion``),
so the API server answers 409 if the object changed in between — the engine then
re-reads and re-plans instead of overwriting. Changed objects get the
``mltui.io/last-action`` annotation.

Deployment rollback is kubectl's ``rollout undo`` (k8s.io/kubectl polymorphichelpers
rollback.go): ReplicaSets controlled by the Deployment, the previous one by
``deployment.kubernetes.io/revision`` (or ``--to-revision``), ``pod-template-hash``
stripped, one JSON patch replacing ``/spec/template`` and ``/metadata/annotations``.
Argo's ``undo`` (kubectl-argo-rollouts undo.go) is the same with its own
annotation and hash label, and patches only the template.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mltui.actions.kubeapi import (
    DEPLOYMENTS,
    INFERENCESERVICES,
    JSON_PATCH,
    MERGE_PATCH,
    REPLICASETS,
    ROLLOUTS,
    KubeApi,
    KubeError,
    Resource,
)
from mltui.actions.plan import LAST_ACTION_ANNOTATION, Change, Step

DEPLOYMENT_REVISION = "deployment.kubernetes.io/revision"
ROLLOUT_REVISION = "rollout.argoproj.io/revision"
DEPLOYMENT_HASH_LABEL = "pod-template-hash"
ROLLOUT_HASH_LABEL = "rollouts-pod-template-hash"
VERSION_ANNOTATION = "mltui.io/model-version"
VERSION_LABEL = "app.kubernetes.io/version"

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


@dataclass(frozen=True)
class ClusterPlan:
    """The cluster half of a promote or rollback."""

    steps: tuple[Step, ...] = ()
    notes: tuple[str, ...] = ()
    refusal: str | None = None
    """The action cannot be done on this target (nothing in flight, no history…)."""
    serving_before: str | None = None
    """Model version the target serves now, when it can be read."""
    serving_after: str | None = None
    """Model version the target will serve once the steps are applied."""


@dataclass(frozen=True)
class TargetRef:
    """Where a model is served, resolved: namespace and names filled in."""

    kind: str
    namespace: str
    name: str
    canary: str | None = None


# ---------------------------------------------------------------- versions


def _tag_of(image: str | None) -> str | None:
    if not image or "@" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def template_version(template: dict[str, Any] | None) -> str | None:
    """The model version a pod template serves (DESIGN §4: first found).

    Annotation ``mltui.io/model-version``, label ``app.kubernetes.io/version``, env
    ``MODEL_VERSION`` of a container, the first container's image tag.
    """
    if not template:
        return None
    meta = template.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    if annotations.get(VERSION_ANNOTATION):
        return str(annotations[VERSION_ANNOTATION])
    labels = meta.get("labels") or {}
    if labels.get(VERSION_LABEL):
        return str(labels[VERSION_LABEL])
    containers = (template.get("spec") or {}).get("containers") or []
    for container in containers:
        for env in container.get("env") or []:
            if env.get("name") == "MODEL_VERSION" and env.get("value"):
                return str(env["value"])
    return _tag_of(containers[0].get("image")) if containers else None


_VERSION_IN_URI = re.compile(r"^models:/[^/@]+/(\d+)$")


def storage_uri_version(uri: str | None) -> str | None:
    """``models:/name/4`` → "4"; otherwise a trailing all-digit path segment (``…/churn/4``)."""
    if not uri:
        return None
    match = _VERSION_IN_URI.match(uri)
    if match:
        return match.group(1)
    last = uri.rstrip("/").rsplit("/", 1)[-1]
    return last if last.isdigit() else None


# ---------------------------------------------------------------- diffs


def _key(prefix: str, key: str) -> str:
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", key):
        return f"{prefix}.{key}" if prefix else key
    return f'{prefix}["{key}"]'


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaf paths of a JSON value: {"spec.containers[0].image": "x", …}. Empty maps/lists are leaves."""
    out: dict[str, Any] = {}
    if isinstance(value, dict) and value:
        for k, v in value.items():
            out.update(flatten(v, _key(prefix, str(k))))
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            out.update(flatten(v, f"{prefix}[{i}]"))
    else:
        out[prefix] = value
    return out


def diff(old: Any, new: Any, prefix: str) -> list[tuple[str, Any, Any]]:
    """(path, old, new) for every leaf that differs; absent leaves are None."""
    a, b = flatten(old, prefix), flatten(new, prefix)
    return [(p, a.get(p), b.get(p)) for p in sorted(set(a) | set(b)) if a.get(p) != b.get(p)]


def _changes(obj: str, old: Any, new: Any, prefix: str) -> list[Change]:
    return [Change("kubernetes", obj, p, o, n) for p, o, n in diff(old, new, prefix)]


# ---------------------------------------------------------------- write builders


def _escape(key: str) -> str:
    """A map key as a JSON-pointer segment (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


def _rv(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def _annotation_op(obj: dict[str, Any], value: str) -> dict[str, Any]:
    if (obj.get("metadata") or {}).get("annotations"):
        path = f"/metadata/annotations/{_escape(LAST_ACTION_ANNOTATION)}"
        return {"op": "add", "path": path, "value": value}
    return {"op": "add", "path": "/metadata/annotations", "value": {LAST_ACTION_ANNOTATION: value}}


def _annotation_change(res: Resource, obj: dict[str, Any], value: str) -> Change:
    meta = obj.get("metadata") or {}
    old = (meta.get("annotations") or {}).get(LAST_ACTION_ANNOTATION)
    return Change(
        "kubernetes",
        res.object(meta.get("namespace", ""), meta.get("name", "")),
        f'metadata.annotations["{LAST_ACTION_ANNOTATION}"]',
        old,
        value,
    )


def json_patch_step(
    res: Resource,
    obj: dict[str, Any],
    ops: list[dict[str, Any]],
    changes: Iterable[Change],
    summary: str,
    last_action: str,
    *,
    annotate: bool = True,
) -> Step:
    """A JSON patch guarded by the object's resourceVersion (409 if it moved on)."""
    meta = obj["metadata"]
    rv = _rv(obj)
    body = [{"op": "replace", "path": "/metadata/resourceVersion", "value": rv}, *ops]
    all_changes = list(changes)
    if annotate:
        body.append(_annotation_op(obj, last_action))
        all_changes.append(_annotation_change(res, obj, last_action))
    return Step(
        system="kubernetes",
        object=res.object(meta["namespace"], meta["name"]),
        verb="patch",
        summary=summary,
        request={
            "api": res.api,
            "plural": res.plural,
            "namespace": meta["namespace"],
            "name": meta["name"],
            "subresource": None,
            "content_type": JSON_PATCH,
            "body": body,
        },
        precondition={"resourceVersion": rv},
        changes=tuple(all_changes),
    )


def merge_patch_step(
    res: Resource,
    obj: dict[str, Any],
    body: dict[str, Any],
    changes: Iterable[Change],
    summary: str,
    last_action: str | None,
    *,
    subresource: str | None = None,
    guard: bool = True,
) -> Step:
    """A merge patch; ``guard`` adds metadata.resourceVersion (409 if the object moved on)."""
    meta = obj["metadata"]
    rv = _rv(obj)
    body = copy.deepcopy(body)
    all_changes = list(changes)
    metadata: dict[str, Any] = {}
    if guard:
        metadata["resourceVersion"] = rv
    if last_action is not None:
        metadata["annotations"] = {LAST_ACTION_ANNOTATION: last_action}
        all_changes.append(_annotation_change(res, obj, last_action))
    if metadata:
        body["metadata"] = metadata
    return Step(
        system="kubernetes",
        object=res.object(meta["namespace"], meta["name"])
        + (f" ({subresource})" if subresource else ""),
        verb="patch status" if subresource == "status" else "patch",
        summary=summary,
        request={
            "api": res.api,
            "plural": res.plural,
            "namespace": meta["namespace"],
            "name": meta["name"],
            "subresource": subresource,
            "content_type": MERGE_PATCH,
            "body": body,
        },
        precondition={"resourceVersion": rv} if guard else {},
        changes=tuple(all_changes),
    )


def apply_step(api: KubeApi, step: Step, *, dry_run: bool) -> str:
    """Send one planned write; returns a short detail (new resourceVersion, created name)."""
    req = step.request
    res = Resource(req["api"], req["plural"])
    if step.verb == "create":
        created = api.create(res, req["namespace"], dict(req["body"]), dry_run=dry_run)
        name = (created.get("metadata") or {}).get("name") or req["body"]["metadata"].get("name")
        return f"{'would create' if dry_run else 'created'} {res.qualified()} {req['namespace']}/{name}"
    out = api.patch(
        res,
        req["namespace"],
        req["name"],
        req["body"],
        req["content_type"],
        subresource=req.get("subresource"),
        dry_run=dry_run,
    )
    rv = (out.get("metadata") or {}).get("resourceVersion")
    if dry_run:
        return "accepted by the API server (dryRun=All)"
    return f"resourceVersion {rv}" if rv else "patched"


def stale_step(api: KubeApi, steps: Iterable[tuple[int, Step]]) -> tuple[int, str] | None:
    """The first planned write whose object moved on since the plan: (index, why), or None.

    Re-reads every object the ``steps`` guard with a ``resourceVersion`` (each once)
    and compares. The engine runs this before the first write of an apply, so a
    change to *any* planned object (say the canary, while the stable Deployment is
    written first) stops the action before anything is written. Read errors raise
    :class:`KubeError`.
    """
    seen: dict[tuple[str, str, str, str], str | None] = {}
    for index, step in steps:
        expected = step.precondition.get("resourceVersion")
        if step.system != "kubernetes" or expected is None:
            continue
        req = step.request
        key = (req["api"], req["plural"], req["namespace"], req["name"])
        if key not in seen:
            res = Resource(req["api"], req["plural"])
            live = _get_or_none(api, res, req["namespace"], req["name"])
            seen[key] = _rv(live) if live is not None else None
        now = seen[key]
        if now is None:
            return index, f"conflict: {step.object} was deleted since the plan"
        if now != expected:
            return index, (
                f"conflict: {step.object} changed since the plan "
                f"(resourceVersion {expected} → {now})"
            )
    return None


# ---------------------------------------------------------------- ReplicaSet history


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


def _revision(rs: dict[str, Any], annotation: str) -> int | None:
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
        v = _revision(rs, annotation)
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


def _without_label(template: dict[str, Any], label: str) -> dict[str, Any]:
    out = copy.deepcopy(template)
    labels = (out.get("metadata") or {}).get("labels")
    if labels is not None:
        labels.pop(label, None)
    return out


def parse_revision(to_revision: str | None) -> int:
    if to_revision is None or to_revision == "":
        return 0
    try:
        value = int(to_revision)
    except ValueError:
        raise ValueError(f'--to-revision must be a revision number, not "{to_revision}"') from None
    if value < 0:
        raise ValueError(f"revision not found: {value}")
    return value


# ---------------------------------------------------------------- Deployment


def _get_or_none(api: KubeApi, res: Resource, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return api.get(res, namespace, name)
    except KubeError as exc:
        if exc.not_found:
            return None
        raise


def _promoted_template(canary: dict[str, Any], stable: dict[str, Any]) -> dict[str, Any]:
    """The canary's pod template, keeping the labels the stable Deployment's selector needs.

    A template whose labels do not match the Deployment's selector is rejected by the
    API server, and the canary's own selector labels (e.g. ``track: canary``) must not
    leak into the stable pods.
    """
    template = _without_label(canary["spec"]["template"], DEPLOYMENT_HASH_LABEL)
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
    canary = _get_or_none(api, DEPLOYMENTS, target.namespace, target.canary)
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
        changes = _changes(
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


def template_digest(template: dict[str, Any]) -> str:
    """A short fingerprint of a pod template (hash label stripped), to recognise it later."""
    text = json.dumps(
        _without_label(template, DEPLOYMENT_HASH_LABEL), sort_keys=True, separators=(",", ":")
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
    canary = _get_or_none(api, DEPLOYMENTS, target.namespace, target.canary)
    if canary is None:
        return None
    return _scale_to_zero(canary, target.namespace, target.canary, last_action)


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
    rev = _revision(rs, DEPLOYMENT_REVISION)
    template = _without_label(rs["spec"]["template"], DEPLOYMENT_HASH_LABEL)
    after = template_version(template)
    steps: list[Step] = []
    notes: list[str] = []
    if template == _without_label(current, DEPLOYMENT_HASH_LABEL):
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
        changes = _changes(obj, current, template, "spec.template")
        changes += _changes(obj, dep_annotations, annotations, "metadata.annotations")
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


# ---------------------------------------------------------------- KServe InferenceService


def _predictor(isvc: dict[str, Any]) -> dict[str, Any]:
    return dict((isvc.get("spec") or {}).get("predictor") or {})


def isvc_version(isvc: dict[str, Any]) -> str | None:
    """Annotation ``mltui.io/model-version``, else the version in the predictor's storageUri."""
    annotations = (isvc.get("metadata") or {}).get("annotations") or {}
    if annotations.get(VERSION_ANNOTATION):
        return str(annotations[VERSION_ANNOTATION])
    predictor = _predictor(isvc)
    for value in predictor.values():
        if isinstance(value, dict) and value.get("storageUri"):
            return storage_uri_version(value["storageUri"])
    return storage_uri_version(predictor.get("storageUri"))


def plan_isvc(api: KubeApi, target: TargetRef, action: str, last_action: str) -> ClusterPlan:
    """Promote: ``canaryTrafficPercent: null`` (100% to the latest); rollback: ``0``."""
    isvc = api.get(INFERENCESERVICES, target.namespace, target.name)
    percent = _predictor(isvc).get("canaryTrafficPercent")
    latest = isvc_version(isvc)
    obj = INFERENCESERVICES.object(target.namespace, target.name)
    status = (((isvc.get("status") or {}).get("components") or {}).get("predictor")) or {}
    field = "spec.predictor.canaryTrafficPercent"
    if action == "promote":
        if percent is None:
            return ClusterPlan(
                refusal=f"no canary in flight on {obj} ({field} is not set)",
                serving_before=latest,
            )
        step = merge_patch_step(
            INFERENCESERVICES,
            isvc,
            {"spec": {"predictor": {"canaryTrafficPercent": None}}},
            [Change("kubernetes", obj, field, percent, None)],
            f"send 100% of traffic to the latest revision (canary at {percent}%)",
            last_action,
        )
        return ClusterPlan((step,), (), None, None, latest)
    if percent == 0:
        return ClusterPlan(refusal=f"already rolled back: {field} is 0 on {obj}")
    previous = status.get("previousRolledoutRevision")
    if percent is None and not previous:
        return ClusterPlan(refusal=f"no previous rolled-out revision on {obj} to roll back to")
    step = merge_patch_step(
        INFERENCESERVICES,
        isvc,
        {"spec": {"predictor": {"canaryTrafficPercent": 0}}},
        [Change("kubernetes", obj, field, percent, 0)],
        "send all traffic back to the previous rolled-out revision"
        + (f" ({previous})" if previous else ""),
        last_action,
    )
    notes = () if previous else ("status does not name the previous revision yet",)
    # The previous revision's model version is not in the InferenceService; the
    # registry step falls back to the recorded previous champion.
    return ClusterPlan((step,), notes, None, latest, None)


# ---------------------------------------------------------------- Argo Rollout


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


def _annotate_step(res: Resource, obj: dict[str, Any], last_action: str, summary: str) -> Step:
    """Record the action on the object itself (status patches cannot touch metadata)."""
    return merge_patch_step(res, obj, {}, [], summary, last_action, guard=False)


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
        steps = [
            merge_patch_step(
                ROLLOUTS,
                ro,
                {"status": {"promoteFull": True}},
                [Change("kubernetes", obj, "status.promoteFull", status.get("promoteFull"), True)],
                "promote fully: skip the remaining steps and analyses",
                None,
                subresource="status",
            )
        ]
        spec_body: dict[str, Any] = {}
        spec_changes: list[Change] = []
        if (ro.get("spec") or {}).get("paused"):
            spec_body = {"spec": {"paused": False}}
            spec_changes = [Change("kubernetes", obj, "spec.paused", True, False)]
        steps.append(
            merge_patch_step(
                ROLLOUTS,
                ro,
                spec_body,
                spec_changes,
                "unpause and record the action"
                if spec_body
                else "record the action on the Rollout",
                last_action,
                guard=False,
            )
        )
        return ClusterPlan(tuple(steps), (), None, before, canary_version)

    if to_revision == 0 and in_flight and not aborted:
        steps = [
            merge_patch_step(
                ROLLOUTS,
                ro,
                {"status": {"abort": True}},
                [Change("kubernetes", obj, "status.abort", status.get("abort"), True)],
                "abort the update: all traffic back to the stable ReplicaSet",
                None,
                subresource="status",
            ),
            _annotate_step(ROLLOUTS, ro, last_action, "record the action on the Rollout"),
        ]
        return ClusterPlan(tuple(steps), (), None, canary_version, before)

    try:
        rs = pick_revision(replicasets, ROLLOUT_REVISION, to_revision, f'rollout "{target.name}"')
    except LookupError as exc:
        return ClusterPlan(refusal=str(exc), serving_before=before)
    current = ro["spec"]["template"]
    template = _without_label(rs["spec"]["template"], ROLLOUT_HASH_LABEL)
    rev = _revision(rs, ROLLOUT_REVISION)
    after = template_version(template)
    if template == _without_label(current, ROLLOUT_HASH_LABEL):
        return ClusterPlan(
            refusal=f"skipped rollback (current template already matches revision {rev})",
            serving_before=before,
        )
    step = json_patch_step(
        ROLLOUTS,
        ro,
        [{"op": "replace", "path": "/spec/template", "value": template}],
        _changes(obj, current, template, "spec.template"),
        f"undo {target.name} to revision {rev}"
        + (f" (v{canary_version} → v{after})" if after else ""),
        last_action,
    )
    return ClusterPlan((step,), (), None, canary_version, after)


def last_action_value(summary: dict[str, Any]) -> str:
    """The annotation's text: compact JSON, keys sorted."""
    return json.dumps(summary, sort_keys=True, separators=(",", ":"))
