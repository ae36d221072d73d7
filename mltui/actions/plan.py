"""An action's plan and its result, as data: what will change, then what did.

A :class:`Plan` is computed from the live state before anything is written. It
lists :class:`Step` s (one write each: a Kubernetes patch, an MLflow alias move, a
webhook POST…), and every step lists the :class:`Change` s it makes (object,
field, old → new) and the preconditions that must still hold when it runs
(``resourceVersion``). The TUI's confirm modal and the CLI render the same plan
with :func:`plan_text` / :meth:`Plan.to_json`.

Plans never hold a secret: webhook headers are listed by name only, and the
engine reads their values from the config when it sends them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

System = Literal["kubernetes", "mlflow", "webhook", "command"]
ActionName = Literal["promote", "rollback", "retrain"]
ACTIONS: tuple[ActionName, ...] = ("promote", "rollback", "retrain")

LAST_ACTION_ANNOTATION = "mltui.io/last-action"
"""Annotation every changed cluster object gets: a JSON summary of the action."""


@dataclass(frozen=True)
class Change:
    """One field that a step changes: ``object``'s ``field`` goes from ``old`` to ``new``.

    ``None`` as ``old`` means "absent"; ``None`` as ``new`` means "removed".
    """

    system: System
    object: str
    """E.g. "deployments.apps ml/churn" or "registered model churn-classifier"."""
    field: str
    """A dotted path ("spec.template.spec.containers[0].image") or "alias champion"."""
    old: Any = None
    new: Any = None

    def to_json(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "object": self.object,
            "field": self.field,
            "old": self.old,
            "new": self.new,
        }


@dataclass(frozen=True)
class Step:
    """One write the engine performs, with the changes it makes."""

    system: System
    object: str
    verb: str
    """"patch", "patch status", "create", "set alias", "set tag", "POST", "run"."""
    summary: str
    """One human line: "scale the canary to 0"."""
    request: Mapping[str, Any] = field(default_factory=dict)
    """Exactly what is sent (Kubernetes: api, plural, namespace, name, content type, body)."""
    precondition: Mapping[str, str] = field(default_factory=dict)
    """Must still hold when the step runs, e.g. {"resourceVersion": "41"} (else 409)."""
    changes: tuple[Change, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "object": self.object,
            "verb": self.verb,
            "summary": self.summary,
            "precondition": dict(self.precondition),
            "changes": [c.to_json() for c in self.changes],
            "request": _jsonable(self.request),
        }


@dataclass(frozen=True)
class Plan:
    """Everything one action would do, computed before anything is written."""

    action: ActionName
    model: str
    target: str
    """E.g. "Deployment ml/churn (canary churn-canary)", "alias churn-classifier"."""
    steps: tuple[Step, ...] = ()
    notes: tuple[str, ...] = ()
    """Facts the operator should read before confirming."""
    refusal: str | None = None
    """Why the action cannot (or need not) be done; a refused plan has no steps."""
    protected: bool = False
    """The target needs the model name typed to confirm."""
    to_revision: str | None = None
    context: str | None = None
    """Kube context the cluster steps go to."""

    @property
    def changes(self) -> tuple[Change, ...]:
        return tuple(c for s in self.steps for c in s.changes)

    @property
    def systems(self) -> tuple[System, ...]:
        """The systems this plan writes to, in step order, without repeats."""
        seen: list[System] = []
        for step in self.steps:
            if step.system not in seen:
                seen.append(step.system)
        return tuple(seen)

    @property
    def refused(self) -> bool:
        return self.refusal is not None

    def signature(self) -> tuple[tuple[str, str, str, str, str], ...]:
        """What the plan changes, without bookkeeping; equal signatures = the same plan.

        Used after a 409 to decide whether a re-read changed what the operator confirmed.
        The last-action annotation (its text holds a time) is left out.
        """
        return tuple(
            (c.system, c.object, c.field, _dump(c.old), _dump(c.new))
            for c in self.changes
            if LAST_ACTION_ANNOTATION not in c.field
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "model": self.model,
            "target": self.target,
            "context": self.context,
            "to_revision": self.to_revision,
            "protected": self.protected,
            "refusal": self.refusal,
            "notes": list(self.notes),
            "steps": [s.to_json() for s in self.steps],
        }


# ---------------------------------------------------------------- results

Outcome = Literal["done", "validated", "failed", "not_done", "skipped"]
"""Per step: written · accepted by a dry run · tried and failed · never tried · not run in a dry run."""

Status = Literal["applied", "dry_run", "refused", "failed", "partial", "conflict"]


@dataclass(frozen=True)
class StepResult:
    index: int
    """Position of the step in the plan."""
    outcome: Outcome
    detail: str | None = None
    """What the server said: the created Job's name, the webhook's answer…"""
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.index,
            "outcome": self.outcome,
            "detail": self.detail,
            "error": self.error,
        }


@dataclass(frozen=True)
class Result:
    """What an apply did. ``partial`` means some steps were written and some not."""

    status: Status
    plan: Plan
    """The plan that was applied (after any re-plan following a 409)."""
    steps: tuple[StepResult, ...] = ()
    message: str = ""
    dry_run: bool = False
    replans: int = 0
    """How many times a 409 made the engine re-read and re-plan."""
    new_plan: Plan | None = None
    """After a conflict that changed the plan: the fresh plan, to confirm again."""

    @property
    def ok(self) -> bool:
        return self.status in ("applied", "dry_run")

    def _with(self, outcome: Outcome) -> tuple[Step, ...]:
        return tuple(self.plan.steps[r.index] for r in self.steps if r.outcome == outcome)

    @property
    def done(self) -> tuple[Step, ...]:
        return self._with("done")

    @property
    def not_done(self) -> tuple[Step, ...]:
        """Steps that were not written: failed ones and the ones never tried."""
        return tuple(
            self.plan.steps[r.index] for r in self.steps if r.outcome in ("failed", "not_done")
        )

    @property
    def error(self) -> str | None:
        return next((r.error for r in self.steps if r.error), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "message": self.message,
            "dry_run": self.dry_run,
            "replans": self.replans,
            "steps": [r.to_json() for r in self.steps],
            "done": [s.summary for s in self.done],
            "not_done": [s.summary for s in self.not_done],
            "error": self.error,
            "new_plan": self.new_plan.to_json() if self.new_plan is not None else None,
        }


# ---------------------------------------------------------------- rendering


def _dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def show(value: Any, limit: int = 60) -> str:
    """A value as one short line: absent values read "(none)", long ones are cut."""
    if value is None:
        return "(none)"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plan_text(plan: Plan) -> str:
    """The plan as the operator reads it, in the CLI and in the confirm modal."""
    lines = [f"{plan.action} {plan.model} — {plan.target}"]
    if plan.context:
        lines[0] += f" [context {plan.context}]"
    if plan.refusal:
        lines.append(f"  nothing will be done: {plan.refusal}")
    for i, step in enumerate(plan.steps, start=1):
        pre = ", ".join(f"{k} {v}" for k, v in step.precondition.items())
        head = f"  {i}. [{step.system}] {step.verb} {step.object}: {step.summary}"
        lines.append(head + (f" (if {pre})" if pre else ""))
        for change in step.changes:
            if LAST_ACTION_ANNOTATION in change.field:
                lines.append(f"       {change.field}: set (who, when, what)")
                continue
            lines.append(f"       {change.field}: {show(change.old)} → {show(change.new)}")
    for note in plan.notes:
        lines.append(f"  note: {note}")
    return "\n".join(lines)


def result_text(result: Result) -> str:
    """The outcome: what was written, what was not, and what to do next."""
    verb = {
        "applied": "done",
        "dry_run": "dry run passed (nothing written)",
        "refused": "refused",
        "failed": "FAILED",
        "partial": "HALF-DONE",
        "conflict": "CONFLICT",
    }[result.status]
    lines = [
        f"{result.plan.action} {result.plan.model}: {verb}"
        + (f" — {result.message}" if result.message else "")
    ]
    for r in result.steps:
        step = result.plan.steps[r.index]
        mark = {"done": "✓", "validated": "✓", "failed": "✗", "not_done": "·", "skipped": "-"}[
            r.outcome
        ]
        text = f"  {mark} {r.outcome:<9} [{step.system}] {step.summary}"
        if r.detail:
            text += f" — {r.detail}"
        if r.error:
            text += f" — {r.error}"
        lines.append(text)
    if result.status == "partial":
        lines.append("  not done: " + "; ".join(s.summary for s in result.not_done))
    return "\n".join(lines)
