"""What the cluster halves of promote and rollback share, whatever the target kind.

DESIGN.md §4. The per-kind planners live next door — :mod:`mltui.actions.deployment`
(Deployment + canary Deployment), :mod:`mltui.actions.kserve` (KServe
InferenceService), :mod:`mltui.actions.argo` (Argo Rollout) — and each returns a
:class:`ClusterPlan`: the writes (as plan :class:`~mltui.actions.plan.Step` s with
their field-level changes), the model version the target will serve afterwards (so
the registry step can move ``champion`` to it), notes, or a refusal.

This module holds the pieces all of them use: the two result types, reading the
model version out of a pod template, field-level diffs of two JSON values, the
text of the ``mltui.io/last-action`` annotation, and a GET that treats "not found"
as None. How the writes are built and sent is :mod:`mltui.actions.kubewrites`; the
ReplicaSet history that Deployment and Argo undo read is :mod:`mltui.actions.revisions`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from mltui.actions.kubeapi import KubeApi, KubeError, Resource
from mltui.actions.plan import Change, Step

VERSION_ANNOTATION = "mltui.io/model-version"
VERSION_LABEL = "app.kubernetes.io/version"


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


def field_changes(obj: str, old: Any, new: Any, prefix: str) -> list[Change]:
    """The plan's :class:`Change` s on ``obj`` for every leaf of ``old`` → ``new`` that differs."""
    return [Change("kubernetes", obj, p, o, n) for p, o, n in diff(old, new, prefix)]


# ---------------------------------------------------------------- small shared calls


def get_or_none(api: KubeApi, res: Resource, namespace: str, name: str) -> dict[str, Any] | None:
    """The object, or None when the API server says it does not exist (other errors raise)."""
    try:
        return api.get(res, namespace, name)
    except KubeError as exc:
        if exc.not_found:
            return None
        raise


def last_action_value(summary: dict[str, Any]) -> str:
    """The ``mltui.io/last-action`` annotation's text: compact JSON, keys sorted."""
    return json.dumps(summary, sort_keys=True, separators=(",", ":"))
