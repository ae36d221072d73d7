"""``mltui promote|rollback|retrain MODEL``: print the plan, confirm, apply, report.

Exit codes: 0 applied (or the dry run passed) · 1 refused or nothing to do (also a
"no" at the prompt, or no TTY without ``--yes``) · 2 failed, half-done or
conflicting · 3 config or usage error (unknown model, read-only).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from mltui.actions.plan import ACTIONS, Plan, Result, plan_text, result_text
from mltui.config import Config, ModelConfig

EXIT_APPLIED, EXIT_REFUSED, EXIT_FAILED, EXIT_USAGE = 0, 1, 2, 3


def _emit_json(plan: Plan, result: Result | None, **extra: Any) -> None:
    out = {
        "plan": plan.to_json(),
        "result": result.to_json() if result is not None else None,
        **extra,
    }
    click.echo(json.dumps(out, indent=2, sort_keys=True, default=str))


def _exit_code(result: Result) -> int:
    if result.ok:
        return EXIT_APPLIED
    if result.status == "refused":
        return EXIT_REFUSED
    return EXIT_FAILED


def _find_model(config: Config, name: str) -> ModelConfig | None:
    found = config.model(name)
    if found is not None or config.models:
        return found
    # No [[models]]: the fleet is discovered from MLflow (and matched to the cluster).
    from mltui.collectors.collect import FleetCollector

    collector = FleetCollector(config)
    try:
        return next((m for m in collector.models() if m.name == name), None)
    finally:
        collector.close()


def _state_for_retrain(config: Config, model: ModelConfig) -> Any:
    """The model's versions and drift for the webhook body (errors leave fields empty)."""
    from mltui.collectors.collect import FleetCollector, configured_sources

    wanted = [s for s in configured_sources(config) if s in ("mlflow", "kubernetes", "drift")]
    if not wanted:
        return None
    collector = FleetCollector(config.model_copy(update={"models": [model]}))
    try:
        return collector.collect(only=wanted).model(model.name)
    except Exception:  # noqa: BLE001 - the body then says "unknown"; retraining goes on
        return None
    finally:
        collector.close()


def _partial_hint(action: str, model: str, result: Result, kind: str | None) -> str:
    missing = "; ".join(f"[{s.system}] {s.summary}" for s in result.not_done)
    if action == "promote":
        # A promote re-plans from the live state, so a new run plans only what is missing.
        return f"mltui: not done: {missing}. Run `mltui promote {model}` again: it plans only what is missing."
    if action == "rollback" and kind == "Deployment":
        # The rollback recorded on the Deployment what it wrote and the champion it saw,
        # so a new run finishes it instead of undoing the cluster once more.
        return (
            f"mltui: not done: {missing}. Run `mltui rollback {model}` again: it plans only "
            "what is missing (the cluster is not rolled back twice)."
        )
    # Elsewhere a second rollback could roll the cluster back once more: finish by hand.
    return f"mltui: not done: {missing}. Finish these step(s) by hand (they are in the audit log)."


def _confirm(plan: Plan) -> bool:
    """Ask on the terminal: y/N, or the model's name for protected targets."""
    if plan.protected:
        typed = click.prompt(
            f"{plan.model} is protected. Type the model name to {plan.action}",
            default="",
            show_default=False,
            err=True,
        )
        return bool(typed.strip() == plan.model)
    return click.confirm(f"Apply this {plan.action}?", default=False, err=True)


def run_action(
    config: Config,
    action: str,
    model: str,
    *,
    yes: bool,
    dry_run: bool,
    fmt: str,
    to_revision: str | None,
) -> int:
    """The action subcommands (wired in mltui.cli); returns the exit code."""
    as_json = fmt == "json"
    if action not in ACTIONS:
        click.echo(f"mltui: unknown action {action}", err=True)
        return EXIT_USAGE
    if config.read_only:
        click.echo(
            f"mltui: {action} refused: read-only (read_only in the config or --read-only)", err=True
        )
        return EXIT_USAGE
    model_config = _find_model(config, model)
    if model_config is None:
        known = ", ".join(m.name for m in config.models) or "none configured"
        click.echo(f'mltui: unknown model "{model}" (known: {known})', err=True)
        return EXIT_USAGE
    if action in ("promote", "rollback") and model_config.target is None:
        click.echo(f'mltui: model "{model}" has no target in the config', err=True)
        return EXIT_USAGE
    if action == "retrain" and model_config.retrain is None:
        click.echo(f'mltui: model "{model}" has no retrain in the config', err=True)
        return EXIT_USAGE
    if to_revision is not None and action != "rollback":
        click.echo("mltui: --to-revision goes with rollback", err=True)
        return EXIT_USAGE

    from mltui.actions.engine import ActionEngine

    engine = ActionEngine(config)
    try:
        state = _state_for_retrain(config, model_config) if action == "retrain" else None
        plan = engine.plan(action, model, to_revision=to_revision, state=state, model=model_config)
        if not as_json:
            click.echo(plan_text(plan))
        if plan.refused:
            if as_json:
                _emit_json(plan, None)
            return EXIT_REFUSED
        if not dry_run and not yes:
            if not sys.stdin.isatty():
                click.echo(
                    "mltui: not applied: no terminal to confirm on; pass --yes to apply", err=True
                )
                if as_json:
                    _emit_json(plan, None, refused="no terminal to confirm on; pass --yes")
                return EXIT_REFUSED
            if not _confirm(plan):
                click.echo("mltui: cancelled; nothing was written", err=True)
                return EXIT_REFUSED
        result = engine.apply(plan, dry_run=dry_run)
        if not as_json:
            click.echo(result_text(result))
        if result.status == "conflict" and result.new_plan is not None and not as_json:
            click.echo("the fresh plan (run the command again to apply it):")
            click.echo(plan_text(result.new_plan))
        if result.status == "partial" and not as_json and sys.stdin.isatty() and not yes:
            if click.confirm("Retry the missing step(s) now?", default=False, err=True):
                retried = engine.retry(result)
                click.echo(result_text(retried))
                return _exit_code(retried)
        if result.status == "partial" and not as_json:
            kind = model_config.target.kind if model_config.target is not None else None
            click.echo(_partial_hint(action, model, result, kind), err=True)
        if as_json:
            _emit_json(result.plan, result)
        return _exit_code(result)
    finally:
        engine.close()
