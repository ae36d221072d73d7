"""Plan → apply → audit, for every action and target kind.

:class:`ActionEngine` is what the CLI and the TUI call:

- :meth:`ActionEngine.plan` reads the live state (cluster, registry) and returns a
  :class:`~mltui.actions.plan.Plan`. It never writes. Problems are refusals, not
  exceptions: the plan says why nothing will be done.
- :meth:`ActionEngine.apply` writes the audit ``attempt`` line (fsynced), runs the
  steps in order and writes the ``result`` line. A dry run sends every Kubernetes
  write with ``dryRun=All`` and writes nothing to MLflow, no webhook, no command.
- Before the first write, every object the plan touches is re-read and checked
  against its precondition (Kubernetes ``resourceVersion``, the MLflow ``champion``
  alias): Kubernetes has no multi-object transaction, so without this a change to
  the canary would only surface as a 409 *after* the stable Deployment was written.
  A changed object, or a 409 on a write (a race after the check), or an alias that
  moved makes the engine re-read and re-plan, at most :data:`MAX_REPLANS` times. If
  the fresh plan changes exactly what the operator confirmed, it goes on with the
  fresh preconditions; otherwise it stops and returns the fresh plan to confirm — it
  never overwrites a concurrent change. An object that cannot be re-read stops the
  action before anything is written.
- Two systems, one action: steps run cluster first, registry second; the first
  failure stops the run, and a run that wrote some steps but not all is
  ``partial`` — reported, audited, and retryable with :meth:`ActionEngine.retry`.

Headless: no textual import; kubernetes and mlflow are imported when first used.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from mltui.actions import argo, deployment, kserve, kubewrites, registry, retrain
from mltui.actions.audit import AuditLog, Who, now_iso, who_am_i
from mltui.actions.kube import TargetRef, last_action_value
from mltui.actions.kubeapi import DEPLOYMENTS, KubeApi, KubeError
from mltui.actions.plan import ActionName, Outcome, Plan, Result, Status, Step, StepResult
from mltui.actions.registry import RegistryState
from mltui.actions.revisions import parse_revision
from mltui.config import Config, ModelConfig
from mltui.fleet import ModelState
from mltui.secrets import error_text, redact

MAX_REPLANS = 2
READ_ONLY = "read-only: actions are disabled (read_only in the config or --read-only)"


class _Conflict(Exception):
    """A write was refused because its object changed since the plan."""


class _Unverified(Exception):
    """An object a planned step writes could not be re-read before the first write."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index


class ActionEngine:
    """Plans and applies actions for the models of one config."""

    def __init__(
        self,
        config: Config,
        *,
        audit: AuditLog | None = None,
        registry_client: Any = None,
    ) -> None:
        self.config = config
        self.audit = audit if audit is not None else AuditLog()
        self._kube: dict[str | None, KubeApi] = {}
        self._registry = registry_client

    # ------------------------------------------------------------ clients

    def kube(self, context: str | None) -> KubeApi:
        if context not in self._kube:
            self._kube[context] = KubeApi(self.config, context)
        return self._kube[context]

    def registry(self) -> Any:
        if self._registry is None:
            self._registry = registry.make_client(self.config)
        return self._registry

    def close(self) -> None:
        for api in self._kube.values():
            api.close()

    def who(self, plan: Plan | None = None) -> Who:
        if plan is not None and "kubernetes" in plan.systems:
            api = self.kube(plan.context)
            try:
                api.client()
            except KubeError:
                return who_am_i(plan.context)
            return who_am_i(api.context, api.user)
        return who_am_i()

    # ------------------------------------------------------------ planning

    def plan(
        self,
        action: ActionName,
        model_name: str,
        *,
        to_revision: str | None = None,
        state: ModelState | None = None,
        model: ModelConfig | None = None,
    ) -> Plan:
        """What ``action`` on ``model_name`` would change now. Never writes, never raises."""
        model = model or self.config.model(model_name)
        base = Plan(action=action, model=model_name, target="?", to_revision=to_revision)
        if self.config.read_only:
            return replace(base, refusal=READ_ONLY)
        if model is None:
            return replace(base, refusal=f'unknown model "{model_name}"')
        try:
            if action == "retrain":
                return self._plan_retrain(model, base, state)
            return self._plan_release(action, model, base, to_revision)
        except (KubeError, registry.RegistryError, ValueError) as exc:
            return replace(base, refusal=redact(str(exc)))
        except Exception as exc:  # noqa: BLE001 - a plan problem is shown, never a crash
            return replace(base, refusal=error_text(exc))

    def _last_action(self, action: str, model: ModelConfig, api: KubeApi | None) -> str:
        who = who_am_i(api.context, api.user) if api is not None else who_am_i()
        return last_action_value(
            {
                "action": action,
                "model": model.name,
                "user": who.user,
                "host": who.host,
                "kube_user": who.kube_user,
                "time": now_iso(),
                "by": "mltui",
            }
        )

    def _plan_release(
        self, action: ActionName, model: ModelConfig, base: Plan, to_revision: str | None
    ) -> Plan:
        target = model.target
        if target is None:
            return replace(base, refusal=f'model "{model.name}" has no target in the config')
        protected = target.protected
        if target.kind == "alias":
            return self._plan_alias(action, model, replace(base, protected=protected), to_revision)

        api = self.kube(target.context)
        api.client()
        ref = TargetRef(
            kind=target.kind,
            namespace=api.namespace(target.namespace),
            name=target.name or model.name,
            canary=target.canary,
        )
        label = f"{ref.kind} {ref.namespace}/{ref.name}" + (
            f" (canary {ref.canary})" if ref.canary else ""
        )
        base = replace(base, target=label, protected=protected, context=api.context)
        last = self._last_action(action, model, api)
        revision = parse_revision(to_revision) if action == "rollback" else 0
        # The registry is read first: a Deployment rollback records the champion it saw.
        state: RegistryState | None = None
        registry_problem: str | None = None
        if self.config.mlflow_uri:
            try:
                state = registry.read_state(self.registry(), model.registry_name)
            except registry.RegistryError as exc:
                registry_problem = str(exc)
        if ref.kind == "Deployment" and action == "rollback" and revision == 0:
            resumed = self._finish_rollback(api, ref, base, last, state, registry_problem)
            if resumed is not None:
                return resumed
        if ref.kind == "Deployment":
            cluster = (
                deployment.plan_deployment_promote(api, ref, last)
                if action == "promote"
                else deployment.plan_deployment_rollback(
                    api, ref, last, revision, state.champion if state is not None else None
                )
            )
        elif ref.kind == "InferenceService":
            if revision:
                return replace(
                    base, refusal="--to-revision is not supported for InferenceService targets"
                )
            cluster = kserve.plan_isvc(api, ref, action, last)
        elif ref.kind == "Rollout":
            cluster = argo.plan_rollout(api, ref, action, last, revision)
        else:  # pragma: no cover - the config validates kinds
            return replace(base, refusal=f"unsupported target kind {ref.kind}")
        if cluster.refusal:
            return replace(base, refusal=cluster.refusal, notes=cluster.notes)

        steps: list[Step] = list(cluster.steps)
        notes: list[str] = list(cluster.notes)
        if self.config.mlflow_uri:
            if state is None:
                notes.append(f"{registry_problem} — the champion alias will not be moved")
            else:
                if action == "promote":
                    version = cluster.serving_after or state.challenger
                    more, extra = registry.plan_promote(state, version)
                else:
                    version = registry.rollback_version(state, cluster.serving_after)
                    more, extra = registry.plan_rollback(state, version)
                steps += more
                notes += extra
        else:
            notes.append("MLflow is not configured: no alias is moved")
        if not steps:
            what = "promote" if action == "promote" else "roll back"
            return replace(
                base, refusal=f"nothing to {what}: " + "; ".join(notes), notes=tuple(notes)
            )
        return replace(base, steps=tuple(steps), notes=tuple(notes))

    def _finish_rollback(
        self,
        api: KubeApi,
        ref: TargetRef,
        base: Plan,
        last: str,
        state: RegistryState | None,
        registry_problem: str | None,
    ) -> Plan | None:
        """The plan that finishes a half-done Deployment rollback, or None (plan a new one).

        The last mltui rollback recorded on the Deployment the champion it saw and the
        template it wrote. If the Deployment still holds that template and the registry
        still shows that champion, the rollback's registry step never happened: plan
        only what is missing (the alias move, a canary still scaled up) instead of
        undoing the cluster once more (kubectl's undo would go back to the version we
        just left). When MLflow cannot be read to tell, refuse rather than guess.
        """
        dep = api.get(DEPLOYMENTS, ref.namespace, ref.name)
        record = deployment.unfinished_rollback(dep)
        if record is None or not self.config.mlflow_uri:
            return None
        by = f"by {record.get('user') or '?'} at {record.get('time') or '?'}"
        if state is None:
            return replace(
                base,
                refusal=(
                    f"the last rollback of {ref.name} ({by}) may have left the champion alias "
                    f"unmoved, and MLflow cannot be read to check ({registry_problem}); "
                    "rolling back again now would undo the cluster once more. Retry when MLflow "
                    "answers, or pass --to-revision to roll the cluster back anyway"
                ),
            )
        if state.champion != record["champion"]:
            return None  # the registry moved on: that rollback finished (or was overridden)
        target = registry.rollback_version(state, record.get("to_version"))
        more, extra = registry.plan_rollback(state, target)
        if not more:
            return None
        steps: list[Step] = []
        canary = deployment.scale_canary_to_zero(api, ref, last)
        if canary is not None:
            steps.append(canary)
        steps += more
        notes = [
            f"finishing the rollback {by}: {ref.name} already runs revision "
            f"{record.get('revision')} (v{record.get('to_version') or '?'}) and champion is "
            f"still v{state.champion}; only the missing step(s) are planned, the cluster is not "
            "rolled back again",
            *extra,
        ]
        return replace(base, steps=tuple(steps), notes=tuple(notes))

    def _plan_alias(
        self, action: ActionName, model: ModelConfig, base: Plan, to_revision: str | None
    ) -> Plan:
        base = replace(base, target=f"alias {model.registry_name} (MLflow only)")
        if not self.config.mlflow_uri:
            return replace(base, refusal="alias targets need MLflow ([mlflow] tracking_uri)")
        state = registry.read_state(self.registry(), model.registry_name)
        if action == "promote":
            if not state.challenger:
                return replace(
                    base,
                    refusal=f"nothing to promote: {model.registry_name} has no challenger alias",
                )
            if state.challenger == state.champion:
                return replace(
                    base,
                    refusal=f"nothing to promote: challenger and champion are both v{state.champion}",
                )
            steps, notes = registry.plan_promote(state, state.challenger)
        else:
            version = to_revision or state.previous_champion
            if version is None:
                return replace(
                    base,
                    refusal=(
                        f"nothing to roll back to: v{state.champion} has no {registry.PREVIOUS_CHAMPION_TAG} "
                        "tag; pass --to-revision VERSION"
                    ),
                )
            if version == state.champion:
                return replace(
                    base, refusal=f"nothing to roll back: champion is already v{version}"
                )
            steps, notes = registry.plan_rollback(state, version)
        return replace(base, steps=tuple(steps), notes=tuple(notes))

    def _plan_retrain(self, model: ModelConfig, base: Plan, state: ModelState | None) -> Plan:
        how = model.retrain
        if how is None:
            return replace(base, refusal=f'model "{model.name}" has no retrain in the config')
        protected = model.target.protected if model.target is not None else False
        base = replace(base, protected=protected)
        if how.cronjob:
            context = model.target.context if model.target is not None else None
            api = self.kube(context)
            api.client()
            base = replace(base, target=f"cronjob {how.cronjob}", context=api.context)
            steps, notes, refusal = retrain.plan_cronjob(
                api, how, self._last_action("retrain", model, api)
            )
            if refusal:
                return replace(base, refusal=refusal)
            return replace(base, steps=tuple(steps), notes=tuple(notes))
        body = retrain.payload(model, self._versions(model, state), _drift(state), who_am_i())
        if how.webhook:
            step = retrain.plan_webhook(how, body)
        else:
            step = retrain.plan_command(how, body)
        return replace(base, target=step.object, steps=(step,))

    def _versions(self, model: ModelConfig, state: ModelState | None) -> dict[str, str | None]:
        if state is not None:
            reg = state.registry
            return {
                "serving": state.serving_version,
                "champion": reg.champion if reg else None,
                "challenger": reg.challenger if reg else None,
            }
        versions: dict[str, str | None] = {"serving": None, "champion": None, "challenger": None}
        if self.config.mlflow_uri:
            try:
                reg_state = registry.read_state(self.registry(), model.registry_name)
                versions.update(champion=reg_state.champion, challenger=reg_state.challenger)
            except registry.RegistryError:
                pass  # the body says "unknown"; retraining does not need the registry
        return versions

    # ------------------------------------------------------------ applying

    def apply(self, plan: Plan, *, dry_run: bool = False) -> Result:
        """Audit, then run the plan's steps (for real, or as a dry run)."""
        if self.config.read_only:
            return Result("refused", plan, message=READ_ONLY, dry_run=dry_run)
        if plan.refused or not plan.steps:
            return Result("refused", plan, message=plan.refusal or "nothing to do", dry_run=dry_run)
        who = self.who(plan)
        try:
            action_id = self.audit.attempt(plan, who, dry_run=dry_run)
        except OSError as exc:
            # No durable record, no write: the audit trail is part of the safety contract.
            return Result(
                "failed",
                plan,
                message=f"cannot write the audit log {self.audit.path}: {error_text(exc)}",
                dry_run=dry_run,
            )
        result = self._run(plan, dry_run)
        try:
            self.audit.result(action_id, result, who)
        except OSError as exc:
            result = replace(
                result, message=f"{result.message} (audit result not written: {error_text(exc)})"
            )
        return result

    def retry(self, result: Result, *, dry_run: bool = False) -> Result:
        """Apply only what ``result`` did not write (after a half-done action)."""
        missing = result.not_done
        if not missing:
            return Result("refused", result.plan, message="nothing left to retry", dry_run=dry_run)
        plan = replace(
            result.plan,
            steps=missing,
            notes=(*result.plan.notes, "retry of the steps a previous attempt did not write"),
            refusal=None,
        )
        return self.apply(plan, dry_run=dry_run)

    def _execute(self, plan: Plan, step: Step, dry_run: bool) -> tuple[str, bool]:
        """Run one step: (detail, written-or-validated). Raises _Conflict or an error."""
        if step.system == "kubernetes":
            try:
                return kubewrites.apply_step(self.kube(plan.context), step, dry_run=dry_run), True
            except KubeError as exc:
                if exc.conflict:
                    raise _Conflict(str(exc)) from None
                raise
        if step.system == "mlflow":
            try:
                return registry.apply_step(self.registry(), step, dry_run=dry_run), True
            except registry.RegistryConflict as exc:
                raise _Conflict(str(exc)) from None
        model = self.config.model(plan.model)
        how = model.retrain if model is not None else None
        if how is None:
            raise retrain.RetrainError(
                f'model "{plan.model}" has no retrain in the config any more'
            )
        body = dict(step.request["body"])
        if dry_run:
            return f"dry run: {step.system} not called", False
        if step.system == "webhook":
            return retrain.send_webhook(how, body), True
        return retrain.run_command(how, body), True

    def _changed_since_plan(self, plan: Plan) -> tuple[int, str] | None:
        """Re-read what the plan guards: the first step whose precondition broke, or None.

        Raises :class:`_Unverified` when an object cannot be read (the action must not
        start writing on an unverified plan).
        """
        indexed = list(enumerate(plan.steps))
        guarded = [i for i, s in indexed if s.precondition]
        for system in ("kubernetes", "mlflow"):
            first = next((i for i in guarded if plan.steps[i].system == system), None)
            if first is None:
                continue
            try:
                if system == "kubernetes":
                    stale = kubewrites.stale_step(self.kube(plan.context), indexed)
                else:
                    stale = registry.stale_step(self.registry(), indexed)
            except (KubeError, registry.RegistryError) as exc:
                raise _Unverified(first, redact(str(exc))) from None
            except Exception as exc:  # noqa: BLE001 - reported, never raised
                raise _Unverified(first, error_text(exc)) from None
            if stale is not None:
                return stale
        return None

    def _check_before_writing(self, plan: Plan, dry_run: bool) -> tuple[Plan, int, Result | None]:
        """Verify every precondition before the first write; re-plan if something moved.

        Returns (plan to run, re-plans so far, None) or a final Result with nothing written:
        ``conflict`` with the fresh plan when what the operator confirmed changed,
        ``failed`` when an object cannot be re-read.
        """
        current = plan
        replans = 0
        while True:
            try:
                stale = self._changed_since_plan(current)
            except _Unverified as exc:
                error = f"cannot re-read before writing: {exc}"
                return (
                    current,
                    replans,
                    self._unwritten(current, exc.index, "failed", error, dry_run, replans),
                )
            if stale is None:
                return current, replans, None
            index, why = stale
            if replans >= MAX_REPLANS:
                return (
                    current,
                    replans,
                    self._unwritten(current, index, "conflict", why, dry_run, replans),
                )
            replans += 1
            fresh = self.plan(current.action, current.model, to_revision=current.to_revision)
            if fresh.refused or fresh.signature() != current.signature():
                reason = fresh.refusal or "the objects changed since the plan"
                error = f"{why}; re-read and re-planned: {reason} — confirm the new plan"
                return (
                    current,
                    replans,
                    self._unwritten(
                        current, index, "conflict", error, dry_run, replans, new_plan=fresh
                    ),
                )
            # The same changes on fresh objects: go on with the fresh preconditions.
            current = replace(current, steps=fresh.steps)

    def _unwritten(
        self,
        plan: Plan,
        index: int,
        status: Status,
        error: str,
        dry_run: bool,
        replans: int,
        new_plan: Plan | None = None,
    ) -> Result:
        """A run stopped before its first write: step ``index`` is why, none was tried."""
        steps = tuple(
            StepResult(j, "failed", None, error) if j == index else StepResult(j, "not_done")
            for j in range(len(plan.steps))
        )
        message = "nothing was written" if not dry_run else "the dry run failed"
        return Result(status, plan, steps, message, dry_run, replans, new_plan)

    def _run(self, plan: Plan, dry_run: bool) -> Result:
        current, replans, stopped = self._check_before_writing(plan, dry_run)
        if stopped is not None:
            return stopped
        outcomes: list[StepResult] = []
        i = 0
        while i < len(current.steps):
            step = current.steps[i]
            try:
                detail, real = self._execute(current, step, dry_run)
            except _Conflict as exc:
                if replans >= MAX_REPLANS:
                    return self._stop(current, outcomes, i, "conflict", str(exc), dry_run, replans)
                replans += 1
                fresh = self.plan(current.action, current.model, to_revision=current.to_revision)
                # In a dry run nothing was written, so the fresh plan must equal the whole
                # plan; otherwise it must equal what is left of it.
                expected = current if dry_run else replace(current, steps=current.steps[i:])
                if fresh.refused or fresh.signature() != expected.signature():
                    why = fresh.refusal or "the objects changed since the plan"
                    return self._stop(
                        current,
                        outcomes,
                        i,
                        "conflict",
                        f"{exc}; re-read and re-planned: {why} — confirm the new plan",
                        dry_run,
                        replans,
                        new_plan=fresh,
                    )
                fresh_steps = fresh.steps[i:] if dry_run else fresh.steps
                current = replace(current, steps=current.steps[:i] + fresh_steps)
                continue
            except Exception as exc:  # noqa: BLE001 - every failure is reported, never raised
                message = (
                    str(exc)
                    if isinstance(exc, KubeError | registry.RegistryError | retrain.RetrainError)
                    else error_text(exc)
                )
                return self._stop(current, outcomes, i, "failed", redact(message), dry_run, replans)
            outcome: Outcome = ("validated" if dry_run else "done") if real else "skipped"
            outcomes.append(StepResult(i, outcome, redact(detail)))
            i += 1
        status: Status = "dry_run" if dry_run else "applied"
        message = f"{replans} re-plan(s) after a conflict" if replans else ""
        return Result(status, current, tuple(outcomes), message, dry_run, replans)

    def _stop(
        self,
        plan: Plan,
        outcomes: list[StepResult],
        index: int,
        kind: str,
        error: str,
        dry_run: bool,
        replans: int,
        new_plan: Plan | None = None,
    ) -> Result:
        """End a run at step ``index``: it failed; the later steps were never tried."""
        steps = [*outcomes, StepResult(index, "failed", None, error)]
        steps += [StepResult(j, "not_done") for j in range(index + 1, len(plan.steps))]
        written = any(r.outcome == "done" for r in outcomes)
        status: Status
        if written:
            status = "partial"
            done = "; ".join(plan.steps[r.index].summary for r in outcomes if r.outcome == "done")
            missing = "; ".join(plan.steps[j].summary for j in range(index, len(plan.steps)))
            message = f"half-done: done: {done}. NOT done: {missing}. Retry the missing step(s)."
        else:
            status = "conflict" if kind == "conflict" else "failed"
            message = "nothing was written" if not dry_run else "the dry run failed"
        return Result(status, plan, tuple(steps), message, dry_run, replans, new_plan)


def _drift(state: ModelState | None) -> dict[str, Any] | None:
    if state is None or state.drift is None:
        return None
    return {"share": state.drift.share, "drifted": list(state.drift.drifted)}
