"""Promote and roll back a KServe InferenceService target (its built-in canary rollout).

DESIGN.md §4, ``kind = "InferenceService"``: KServe keeps the previous rolled-out
revision itself, so both actions are one merge patch of
``spec.predictor.canaryTrafficPercent``: promote sets it to ``null`` (100% of the
traffic to the latest revision), rollback to ``0`` (all traffic back to
``status.components.predictor.previousRolledoutRevision``). ``--to-revision`` is not
supported for this kind (the engine refuses it).
"""

from __future__ import annotations

import re
from typing import Any

from mltui.actions.kube import VERSION_ANNOTATION, ClusterPlan, TargetRef
from mltui.actions.kubeapi import INFERENCESERVICES, KubeApi
from mltui.actions.kubewrites import merge_patch_step
from mltui.actions.plan import Change

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
