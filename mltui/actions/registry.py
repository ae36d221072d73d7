"""The MLflow half of promote and rollback: moving the ``champion`` alias.

Promote moves ``champion`` to the promoted version and first tags that version with
``mltui.previous_champion = <old champion>``; rollback reads the tag back. So the
registry itself remembers the way back, and rollback needs no local state.

MLflow has no compare-and-set for aliases. Each step carries the champion seen at
plan time as a precondition; the engine re-reads it just before writing and treats
a difference as a conflict (re-plan), like a 409 from Kubernetes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from mltui import secrets
from mltui.actions.plan import Change, Step
from mltui.config import Config

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_CHAMPION_TAG = "mltui.previous_champion"


class RegistryError(Exception):
    """An MLflow call failed (message redacted)."""


class RegistryConflict(RegistryError):
    """The alias moved between plan and apply."""


def make_client(config: Config) -> Any:
    """The collector's bounded ``MlflowClient`` (seconds, not MLflow's minutes of retries)."""
    from mltui.collectors.mlflow_client import MlflowUnavailable
    from mltui.collectors.mlflow_client import make_client as bounded_client

    try:
        return bounded_client(config)
    except MlflowUnavailable as exc:
        raise RegistryError(f"MLflow: {secrets.redact(exc)}") from None


@dataclass(frozen=True)
class RegistryState:
    """What the plan needs to know about one registered model."""

    name: str
    aliases: dict[str, str] = field(default_factory=dict)
    previous_champion: str | None = None
    """The tag on the champion version: where a rollback goes."""

    @property
    def champion(self) -> str | None:
        return self.aliases.get(CHAMPION)

    @property
    def challenger(self) -> str | None:
        return self.aliases.get(CHALLENGER)


def _wrap(client: Any, what: str, exc: Exception) -> RegistryError:
    """A secret-free error naming what failed ("connection refused", "did not answer")."""
    from mltui.collectors.mlflow_client import describe_error

    uri = getattr(client, "_registry_uri", None)
    timeout = float(os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT") or 5)
    return RegistryError(f"MLflow: {what}: {describe_error(exc, uri, timeout)}")


def read_state(client: Any, name: str) -> RegistryState:
    """Aliases from the registered model (search_model_versions leaves them empty)."""
    try:
        model = client.get_registered_model(name)
    except Exception as exc:  # noqa: BLE001 - any MLflow failure is a value for the plan
        raise _wrap(client, f'reading registered model "{name}"', exc) from None
    aliases = {str(k): str(v) for k, v in (getattr(model, "aliases", None) or {}).items()}
    previous = None
    champion = aliases.get(CHAMPION)
    if champion:
        try:
            mv = client.get_model_version(name, champion)
            previous = (mv.tags or {}).get(PREVIOUS_CHAMPION_TAG)
        except Exception as exc:  # noqa: BLE001
            raise _wrap(client, f"reading version {champion} of {name}", exc) from None
    return RegistryState(name, aliases, previous)


def _alias_step(state: RegistryState, version: str, summary: str) -> Step:
    return Step(
        system="mlflow",
        object=f"registered model {state.name}",
        verb="set alias",
        summary=summary,
        request={"op": "set_alias", "name": state.name, "alias": CHAMPION, "version": version},
        precondition={CHAMPION: state.champion or ""},
        changes=(
            Change(
                "mlflow",
                f"registered model {state.name}",
                f"alias {CHAMPION}",
                state.champion,
                version,
            ),
        ),
    )


def plan_promote(state: RegistryState, version: str | None) -> tuple[list[Step], list[str]]:
    """Steps moving champion to ``version`` (tagging it with the old champion first)."""
    if version is None:
        return [], ["the promoted model version is unknown: the champion alias is not moved"]
    if version == state.champion:
        return [], [f"champion already points to version {version}"]
    steps: list[Step] = []
    if state.champion:
        steps.append(
            Step(
                system="mlflow",
                object=f"model version {state.name}/{version}",
                verb="set tag",
                summary=f"remember v{state.champion} as the previous champion (for rollback)",
                request={
                    "op": "set_tag",
                    "name": state.name,
                    "version": version,
                    "key": PREVIOUS_CHAMPION_TAG,
                    "value": state.champion,
                },
                precondition={CHAMPION: state.champion},
                changes=(
                    Change(
                        "mlflow",
                        f"model version {state.name}/{version}",
                        f"tag {PREVIOUS_CHAMPION_TAG}",
                        None,
                        state.champion,
                    ),
                ),
            )
        )
    steps.append(
        _alias_step(state, version, f"move champion v{state.champion or '-'} → v{version}")
    )
    return steps, []


def rollback_version(state: RegistryState, served_after: str | None) -> str | None:
    """Where champion goes back to: what the cluster will serve, else the recorded previous champion."""
    return served_after or state.previous_champion


def plan_rollback(state: RegistryState, version: str | None) -> tuple[list[Step], list[str]]:
    if version is None:
        return [], [
            f"no previous champion recorded on v{state.champion} (tag {PREVIOUS_CHAMPION_TAG}): "
            "the champion alias is not moved"
        ]
    if version == state.champion:
        return [], [f"champion already points to version {version}"]
    return [
        _alias_step(state, version, f"move champion back v{state.champion or '-'} → v{version}")
    ], []


def stale_step(client: Any, steps: Iterable[tuple[int, Step]]) -> tuple[int, str] | None:
    """The first planned registry write whose champion moved since the plan, or None.

    Reads each registered model's aliases once. Run by the engine before the first
    write of an apply (next to the cluster's resourceVersion check), so a moved alias
    stops the action before the cluster is touched. Read errors raise RegistryError.
    """
    seen: dict[str, str] = {}
    for index, step in steps:
        expected = step.precondition.get(CHAMPION)
        if step.system != "mlflow" or expected is None:
            continue
        name = step.request["name"]
        if name not in seen:
            try:
                model = client.get_registered_model(name)
            except Exception as exc:  # noqa: BLE001
                raise _wrap(client, f'reading "{name}" before writing', exc) from None
            seen[name] = str((getattr(model, "aliases", None) or {}).get(CHAMPION) or "")
        if seen[name] != expected:
            return index, (
                f"champion of {name} moved since the plan "
                f"(planned from v{expected or '-'}, now v{seen[name] or '-'})"
            )
    return None


def apply_step(client: Any, step: Step, *, dry_run: bool) -> str:
    """Check the precondition, then write (or, in a dry run, only check)."""
    req = step.request
    name = req["name"]
    try:
        model = client.get_registered_model(name)
        current = str((getattr(model, "aliases", None) or {}).get(CHAMPION) or "")
        client.get_model_version(name, req["version"])  # the version must exist
    except Exception as exc:  # noqa: BLE001
        raise _wrap(client, f'reading "{name}" before writing', exc) from None
    expected = step.precondition.get(CHAMPION)
    if expected is not None and current != expected:
        raise RegistryConflict(
            f"champion of {name} moved since the plan (planned from v{expected or '-'}, now v{current or '-'})"
        )
    if dry_run:
        return "checked (MLflow has no dry run: nothing written)"
    try:
        if req["op"] == "set_tag":
            client.set_model_version_tag(name, req["version"], req["key"], req["value"])
            return f"tag {req['key']}={req['value']} on v{req['version']}"
        client.set_registered_model_alias(name, req["alias"], req["version"])
        return f"{req['alias']} → v{req['version']}"
    except Exception as exc:  # noqa: BLE001
        raise _wrap(client, f"{step.verb} on {name}", exc) from None
