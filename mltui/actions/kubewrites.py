"""Guarded Kubernetes writes: build them as plan steps, check them, send them.

Every write carries the ``resourceVersion`` read at plan time (JSON patch: a
``replace`` of ``/metadata/resourceVersion``; merge patch: ``metadata.resourceVersion``),
so the API server answers 409 if the object changed in between — the engine then
re-reads and re-plans instead of overwriting. Changed objects get the
``mltui.io/last-action`` annotation.

- :func:`json_patch_step` / :func:`merge_patch_step`: the planners (Deployment,
  KServe, Argo) describe each write with these.
- :func:`stale_step`: the engine's check, before the first write, that no planned
  object moved on since the plan.
- :func:`apply_step`: the engine sends one planned write (or dry-runs it).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from mltui.actions.kube import get_or_none
from mltui.actions.kubeapi import JSON_PATCH, MERGE_PATCH, KubeApi, Resource
from mltui.actions.plan import LAST_ACTION_ANNOTATION, Change, Step


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


# ---------------------------------------------------------------- building


def _patch_step(
    res: Resource,
    obj: dict[str, Any],
    subresource: str | None,
    content_type: str,
    body: Any,
    rv: str | None,
    changes: list[Change],
    summary: str,
) -> Step:
    """The plan step for one PATCH of ``obj``; ``rv``: the resourceVersion it is guarded by."""
    meta = obj["metadata"]
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
            "content_type": content_type,
            "body": body,
        },
        precondition={"resourceVersion": rv} if rv is not None else {},
        changes=tuple(changes),
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
    rv = _rv(obj)
    body = [{"op": "replace", "path": "/metadata/resourceVersion", "value": rv}, *ops]
    all_changes = list(changes)
    if annotate:
        body.append(_annotation_op(obj, last_action))
        all_changes.append(_annotation_change(res, obj, last_action))
    return _patch_step(res, obj, None, JSON_PATCH, body, rv, all_changes, summary)


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
    guarded_rv = rv if guard else None
    return _patch_step(res, obj, subresource, MERGE_PATCH, body, guarded_rv, all_changes, summary)


# ---------------------------------------------------------------- checking and sending


def stale_step(api: KubeApi, steps: Iterable[tuple[int, Step]]) -> tuple[int, str] | None:
    """The first planned write whose object moved on since the plan: (index, why), or None.

    Re-reads every object the ``steps`` guard with a ``resourceVersion`` (each once)
    and compares. The engine runs this before the first write of an apply, so a
    change to *any* planned object (say the canary, while the stable Deployment is
    written first) stops the action before anything is written. Read errors raise
    :class:`~mltui.actions.kubeapi.KubeError`.
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
            live = get_or_none(api, res, req["namespace"], req["name"])
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
