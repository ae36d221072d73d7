"""Turn Kubernetes objects (plain JSON dicts) into :class:`~mltui.fleet.Rollout` values.

Pure functions, no I/O and no ``kubernetes`` import, so the rules are easy to read
and test. The state rules are the ones operators already trust:

- Deployment: kubectl ``rollout status`` (``polymorphichelpers/rollout_status.go``):
  generation not yet observed → progressing; Progressing condition with reason
  ProgressDeadlineExceeded → degraded; ``spec.paused`` → paused; fewer updated
  replicas than desired, old replicas still terminating, or fewer available than
  updated → progressing; otherwise healthy. A canary Deployment with ready
  replicas makes a healthy stable Deployment "progressing" (a canary is in flight).
- Argo Rollout: the kubectl-argo-rollouts plugin (``GetRolloutPhase`` /
  ``CalculateRolloutPhase``), with ``status.abort`` read as degraded at once.
- KServe InferenceService: the ``Ready`` condition; a traffic split between two
  revisions is a canary in flight (progressing); ``serving.kserve.io/stop`` paused.

Versions (DESIGN.md §4) are read from the pod template — what actually runs, so a
rollback that restores a template restores its version: annotation
``mltui.io/model-version``, label ``app.kubernetes.io/version``, env
``MODEL_VERSION``, image tag — first found. KServe: the storageUri's version, or
the annotation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from mltui.fleet import Condition, Revision, Rollout, RolloutState

Obj = Mapping[str, Any]

VERSION_ANNOTATION = "mltui.io/model-version"
VERSION_LABEL = "app.kubernetes.io/version"
VERSION_ENV = "MODEL_VERSION"
DEPLOY_REVISION = "deployment.kubernetes.io/revision"
ARGO_REVISION = "rollout.argoproj.io/revision"

_VERSIONISH = re.compile(r"v?(\d+(?:\.\d+)*)")


# ------------------------------------------------------------------ helpers


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def conditions_of(obj: Obj) -> tuple[Condition, ...]:
    out = []
    for c in _get(obj, "status", "conditions") or []:
        if isinstance(c, Mapping) and c.get("type"):
            out.append(
                Condition(
                    type=str(c["type"]),
                    status=str(c.get("status", "Unknown")),
                    reason=c.get("reason") or None,
                    message=c.get("message") or None,
                    last_transition=parse_time(c.get("lastTransitionTime")),
                )
            )
    return tuple(out)


def _condition(conds: Iterable[Condition], type_: str) -> Condition | None:
    return next((c for c in conds if c.type == type_), None)


def _clean_version(text: str) -> str:
    """ "v3" -> "3", "v1.2.0" -> "1.2.0"; anything else as it is."""
    m = _VERSIONISH.fullmatch(text)
    return m.group(1) if m else text


def image_tag(image: str | None) -> str | None:
    """The tag of an image reference (digest and registry port ignored)."""
    if not image:
        return None
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else None


def version_from_template(template: Any) -> str | None:
    """A pod template's model version: annotation, label, env, image tag — first found."""
    if not isinstance(template, Mapping):
        return None
    annotation = _get(template, "metadata", "annotations", VERSION_ANNOTATION)
    if annotation:
        return str(annotation)
    label = _get(template, "metadata", "labels", VERSION_LABEL)
    if label:
        return str(label)
    containers = _get(template, "spec", "containers") or []
    for container in containers:
        for env in container.get("env") or []:
            if env.get("name") == VERSION_ENV and env.get("value"):
                return str(env["value"])
    for container in containers:
        tag = image_tag(container.get("image"))
        if tag:
            return _clean_version(tag)
    return None


def version_from_uri(uri: str | None) -> str | None:
    """The version in a storage URI: ``models:/churn/3`` -> "3", ``s3://m/churn/v4/`` -> "4"."""
    if not uri:
        return None
    for segment in reversed([s for s in urlsplit(uri).path.split("/") if s]):
        m = _VERSIONISH.fullmatch(segment)
        if m:
            return m.group(1)
    return None


def _first_image(template: Any) -> str | None:
    containers = _get(template, "spec", "containers") or []
    return containers[0].get("image") if containers else None


class ReplicaSetIndex:
    """The ReplicaSets of one namespaced LIST, grouped by owner once.

    Built once per LIST, so finding a Deployment's (or Rollout's) ReplicaSets costs
    O(its own ReplicaSets) instead of a scan of every ReplicaSet in the namespace —
    at 1,000 models the scan per owner made a poll quadratic. Owners are keyed by
    (kind, name): within one namespace that names one live owner, and it also
    matches hand-written objects whose ownerReferences carry no (or a placeholder) uid.
    """

    def __init__(self, replicasets: Iterable[Obj]) -> None:
        self._by_owner: dict[tuple[str, str], list[Obj]] = {}
        for rs in replicasets:
            refs = _get(rs, "metadata", "ownerReferences")
            if not isinstance(refs, Sequence) or isinstance(refs, str):
                continue
            owners: set[tuple[str, str]] = set()  # an owner named twice lists the RS once
            for ref in refs:
                kind, name = _get(ref, "kind"), _get(ref, "name")
                if isinstance(kind, str) and isinstance(name, str):
                    owners.add((kind, name))
            for owner in owners:
                self._by_owner.setdefault(owner, []).append(rs)

    def owned_by(self, kind: str, name: str) -> list[Obj]:
        """ReplicaSets whose ownerReferences name this owner, in LIST order."""
        return list(self._by_owner.get((kind, name), ()))


ReplicaSets = Sequence[Obj] | ReplicaSetIndex
"""ReplicaSets as listed, or already indexed by owner (what the collector passes)."""


def owned_by(rses: ReplicaSets | None, kind: str, name: str) -> list[Obj]:
    """ReplicaSets whose ownerReferences name this owner.

    Pass a :class:`ReplicaSetIndex` when looking up many owners in one LIST; a plain
    sequence is indexed on the spot (fine for one owner)."""
    if rses is None:
        return []
    index = rses if isinstance(rses, ReplicaSetIndex) else ReplicaSetIndex(rses)
    return index.owned_by(kind, name)


def history_of(rses: Iterable[Obj], annotation: str) -> tuple[Revision, ...]:
    """ReplicaSets as revisions, newest first."""
    out = []
    for rs in rses:
        rev = _get(rs, "metadata", "annotations", annotation)
        if rev is None:
            continue
        template = _get(rs, "spec", "template")
        out.append(
            Revision(
                revision=str(rev),
                name=str(_get(rs, "metadata", "name")),
                version=version_from_template(template),
                replicas=_int(_get(rs, "spec", "replicas")),
                created=parse_time(_get(rs, "metadata", "creationTimestamp")),
                image=_first_image(template),
            )
        )
    out.sort(key=lambda r: _int(r.revision) or 0, reverse=True)
    return tuple(out)


def _hash_of(rses: Sequence[Obj], annotation: str, revision: Any, label: str) -> str | None:
    for rs in rses:
        if revision is not None and str(_get(rs, "metadata", "annotations", annotation)) == str(
            revision
        ):
            value = _get(rs, "metadata", "labels", label)
            return str(value) if value else None
    return None


# --------------------------------------------------------------- Deployment


def deployment_state(deploy: Obj) -> tuple[RolloutState, str]:
    """kubectl rollout status, as (state, message)."""
    name = _get(deploy, "metadata", "name")
    spec, status = deploy.get("spec") or {}, deploy.get("status") or {}
    generation = _int(_get(deploy, "metadata", "generation")) or 0
    observed = _int(status.get("observedGeneration"))
    if observed is None or observed < generation:
        return "progressing", "waiting for deployment spec update to be observed"
    progressing = _condition(conditions_of(deploy), "Progressing")
    if progressing is not None and progressing.reason == "ProgressDeadlineExceeded":
        return "degraded", f'deployment "{name}" exceeded its progress deadline'
    if spec.get("paused"):
        return "paused", "deployment is paused"
    desired = _int(spec.get("replicas"))
    desired = 1 if desired is None else desired
    updated = _int(status.get("updatedReplicas")) or 0
    replicas = _int(status.get("replicas")) or 0
    available = _int(status.get("availableReplicas")) or 0
    if updated < desired:
        return "progressing", f"{updated} out of {desired} new replicas have been updated"
    if replicas > updated:
        return "progressing", f"{replicas - updated} old replicas are pending termination"
    if available < updated:
        return "progressing", f"{available} of {updated} updated replicas are available"
    return "healthy", f'deployment "{name}" successfully rolled out'


def deployment_rollout(
    deploy: Obj,
    *,
    canary: Obj | None,
    replicasets: ReplicaSets | None,
    context: str | None,
) -> Rollout:
    """A Deployment (with its optional canary Deployment and ReplicaSets) as a Rollout."""
    meta, spec, status = (
        deploy.get("metadata") or {},
        deploy.get("spec") or {},
        deploy.get("status") or {},
    )
    name = str(meta.get("name"))
    state, message = deployment_state(deploy)
    rses = owned_by(replicasets, "Deployment", name)
    revision = _get(meta, "annotations", DEPLOY_REVISION)

    canary_version = canary_weight = canary_hash = None
    if canary is not None:
        canary_ready = _int(_get(canary, "status", "readyReplicas")) or 0
        stable_ready = _int(status.get("readyReplicas")) or 0
        canary_state, canary_message = deployment_state(canary)
        if canary_ready > 0:
            canary_weight = round(100 * canary_ready / (canary_ready + stable_ready))
            canary_version = version_from_template(_get(canary, "spec", "template"))
            canary_name = str(_get(canary, "metadata", "name"))
            canary_rses = owned_by(replicasets, "Deployment", canary_name)
            canary_hash = _hash_of(
                canary_rses,
                DEPLOY_REVISION,
                _get(canary, "metadata", "annotations", DEPLOY_REVISION),
                "pod-template-hash",
            )
            if state == "healthy":
                state = "progressing"
                message = (
                    f"canary {canary_name} has {canary_ready} ready replicas ({canary_weight}%)"
                )
        if canary_state == "degraded" and state != "degraded":
            state, message = "degraded", f"canary: {canary_message}"

    return Rollout(
        kind="Deployment",
        name=name,
        namespace=meta.get("namespace"),
        context=context,
        state=state,
        message=message,
        serving_version=version_from_template(spec.get("template")),
        canary_version=canary_version,
        canary_weight=canary_weight,
        desired=_int(spec.get("replicas")) if spec.get("replicas") is not None else 1,
        updated=_int(status.get("updatedReplicas")) or 0,
        ready=_int(status.get("readyReplicas")) or 0,
        available=_int(status.get("availableReplicas")) or 0,
        revision=str(revision) if revision is not None else None,
        stable_hash=_hash_of(rses, DEPLOY_REVISION, revision, "pod-template-hash"),
        canary_hash=canary_hash,
        resource_version=meta.get("resourceVersion"),
        conditions=conditions_of(deploy),
        history=history_of(rses, DEPLOY_REVISION),
    )


# -------------------------------------------------------------- Argo Rollout

_ARGO_PHASES: dict[str, RolloutState] = {
    "Healthy": "healthy",
    "Progressing": "progressing",
    "Paused": "paused",
    "Degraded": "degraded",
}


def set_weight(steps: Sequence[Any], index: int | None) -> int | None:
    """Argo's current setWeight: the last setWeight at or before ``index``; 100 past the end."""
    if index is None:
        return None
    if index >= len(steps):
        return 100
    for step in reversed(list(steps[: index + 1])):
        if isinstance(step, Mapping) and "setWeight" in step:
            return _int(step["setWeight"])
    return 0


def argo_phase(ro: Obj) -> tuple[RolloutState, str]:
    """The kubectl-argo-rollouts status (GetRolloutPhase / CalculateRolloutPhase)."""
    spec, status = ro.get("spec") or {}, ro.get("status") or {}
    if status.get("abort"):
        return "degraded", status.get("message") or "RolloutAborted: rollout aborted"
    observed = _int(status.get("observedGeneration"))
    generation = _int(_get(ro, "metadata", "generation"))
    if observed is not None and generation is not None and observed < generation:
        return "progressing", "waiting for rollout spec update to be observed"
    if status.get("controllerPause") and not status.get("pauseConditions"):
        return "progressing", "waiting for rollout to unpause"
    phase = status.get("phase")
    if phase:
        return _ARGO_PHASES.get(str(phase), "unknown"), str(status.get("message") or phase)
    for cond in conditions_of(ro):
        if cond.type == "InvalidSpec":
            return "degraded", f"InvalidSpec: {cond.message}"
        if cond.reason in ("RolloutAborted", "ProgressDeadlineExceeded"):
            return "degraded", f"{cond.reason}: {cond.message}"
    if spec.get("paused"):
        return "paused", "manually paused"
    for pause in status.get("pauseConditions") or []:
        return "paused", str(pause.get("reason"))
    desired = _int(spec.get("replicas"))
    desired = 1 if desired is None else desired
    updated = _int(status.get("updatedReplicas")) or 0
    if updated < desired:
        return "progressing", "more replicas need to be updated"
    if (_int(status.get("availableReplicas")) or 0) < updated:
        return "progressing", "updated replicas are still becoming available"
    canary = _get(spec, "strategy", "canary")
    if canary is not None:
        if canary.get("trafficRouting") is None and (_int(status.get("replicas")) or 0) > updated:
            return "progressing", "old replicas are pending termination"
        if not status.get("stableRS") or status.get("stableRS") != status.get("currentPodHash"):
            return "progressing", "waiting for all steps to complete"
    return "healthy", ""


def argo_rollout(ro: Obj, *, replicasets: ReplicaSets | None, context: str | None) -> Rollout:
    meta, spec, status = ro.get("metadata") or {}, ro.get("spec") or {}, ro.get("status") or {}
    name = str(meta.get("name"))
    state, message = argo_phase(ro)
    steps = _get(spec, "strategy", "canary", "steps") or []
    stable, current = status.get("stableRS"), status.get("currentPodHash")
    in_flight = bool(current) and stable != current
    rses = owned_by(replicasets, "Rollout", name)
    spec_version = version_from_template(spec.get("template"))
    serving, canary_version, weight = spec_version, None, None
    if in_flight:
        canary_version = spec_version
        stable_rs = next(
            (
                rs
                for rs in rses
                if _get(rs, "metadata", "labels", "rollouts-pod-template-hash") == stable
            ),
            None,
        )
        serving = version_from_template(_get(stable_rs, "spec", "template")) if stable_rs else None
        weight = _int(_get(status, "canary", "weights", "canary", "weight"))
        if weight is None:
            weight = (
                0
                if status.get("abort")
                else set_weight(steps, _int(status.get("currentStepIndex")))
            )
    desired = _int(spec.get("replicas"))
    return Rollout(
        kind="Rollout",
        name=name,
        namespace=meta.get("namespace"),
        context=context,
        state=state,
        message=message or None,
        serving_version=serving,
        canary_version=canary_version,
        canary_weight=weight,
        step=_int(status.get("currentStepIndex")),
        steps=len(steps) if steps else None,
        desired=1 if desired is None else desired,
        updated=_int(status.get("updatedReplicas")) or 0,
        ready=_int(status.get("readyReplicas")) or 0,
        available=_int(status.get("availableReplicas")) or 0,
        revision=_get(meta, "annotations", ARGO_REVISION),
        stable_hash=stable,
        canary_hash=current if in_flight else None,
        resource_version=meta.get("resourceVersion"),
        conditions=conditions_of(ro),
        history=history_of(rses, ARGO_REVISION),
    )


# --------------------------------------------------------- KServe InferenceService


def _storage_uri(spec: Obj) -> str | None:
    predictor = spec.get("predictor") or {}
    uri = _get(predictor, "model", "storageUri")
    if uri:
        return str(uri)
    for value in predictor.values():  # the older per-framework form: predictor.sklearn.storageUri
        if isinstance(value, Mapping) and value.get("storageUri"):
            return str(value["storageUri"])
    return None


def inference_service_rollout(isvc: Obj, *, context: str | None) -> Rollout:
    meta, spec, status = (
        isvc.get("metadata") or {},
        isvc.get("spec") or {},
        isvc.get("status") or {},
    )
    predictor = _get(status, "components", "predictor") or {}
    traffic = [t for t in predictor.get("traffic") or [] if isinstance(t, Mapping)]
    latest = next((t for t in traffic if t.get("latestRevision")), None)
    split = len(traffic) > 1 and latest is not None
    weight = _int(latest.get("percent")) if split and latest is not None else None
    uri_version = version_from_uri(_storage_uri(spec))
    annotation = _get(meta, "annotations", VERSION_ANNOTATION)
    if split:
        # The spec is the canary; the rolled-out revision's version is only in the annotation.
        serving, canary_version = annotation, uri_version
    else:
        serving, canary_version = uri_version or annotation, None

    conds = conditions_of(isvc)
    ready = _condition(conds, "Ready")
    generation = _int(meta.get("generation"))
    observed = _int(status.get("observedGeneration"))
    state: RolloutState
    if str(_get(meta, "annotations", "serving.kserve.io/stop")).lower() == "true":
        state, message = "paused", "stopped (serving.kserve.io/stop)"
    elif observed is not None and generation is not None and observed < generation:
        state, message = "progressing", "waiting for the spec update to be observed"
    elif ready is not None and ready.status == "False":
        state, message = (
            "degraded",
            f"{ready.reason or 'NotReady'}: {ready.message or ''}".rstrip(": "),
        )
    elif ready is None or ready.status != "True":
        state, message = (
            "progressing",
            (ready.message if ready and ready.message else "not ready yet"),
        )
    elif weight is not None and 0 < weight < 100:
        state = "progressing"
        message = f"canary revision {latest.get('revisionName') if latest else '?'} gets {weight}% of traffic"
    else:
        state, message = "healthy", "ready"

    history: list[Revision] = []
    for key in ("latestCreatedRevision", "latestRolledoutRevision", "previousRolledoutRevision"):
        rev = predictor.get(key)
        if rev and all(h.name != rev for h in history):
            number = str(rev).rsplit("-", 1)[-1]
            history.append(Revision(revision=str(_int(number) or number), name=str(rev)))
    history.sort(key=lambda r: _int(r.revision) or 0, reverse=True)
    rolled_out = predictor.get("latestRolledoutRevision")
    return Rollout(
        kind="InferenceService",
        name=str(meta.get("name")),
        namespace=meta.get("namespace"),
        context=context,
        state=state,
        message=message,
        serving_version=str(serving) if serving is not None else None,
        canary_version=canary_version,
        canary_weight=weight,
        revision=predictor.get("latestReadyRevision"),
        stable_hash=rolled_out,
        canary_hash=latest.get("revisionName") if split and latest is not None else None,
        resource_version=meta.get("resourceVersion"),
        conditions=conds,
        history=tuple(history),
    )
