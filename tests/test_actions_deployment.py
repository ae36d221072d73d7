"""Promote and roll back a Deployment (+ canary) on the Kubernetes stand-in, with a real MLflow store.

The stand-in runs a Deployment controller that makes ReplicaSets with
``deployment.kubernetes.io/revision`` and ``pod-template-hash`` exactly as the real
one does (reusing an old ReplicaSet, and bumping its revision, when a template
comes back), so the rollback assertions follow kubectl's rollback.go by hand.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from mltui.actions.engine import READ_ONLY, ActionEngine
from mltui.actions.kube import template_version
from mltui.actions.plan import LAST_ACTION_ANNOTATION, plan_text, result_text
from tests.support import manifests as m
from tests.support.actions import (
    apply_holding_first_patch,
    changed_fields,
    make_config,
    planned_fields,
)

MODEL = "churn-classifier"
STABLE = "deployments.apps ml/churn"
CANARY = "deployments.apps ml/churn-canary"
TARGET = """
[[models]]
name = "churn"
registered_model = "churn-classifier"
target = { kind = "Deployment", name = "churn", canary = "churn-canary" }
"""


def _setup(kube: Any, stable: str = "3", canary: str | None = "4") -> None:
    kube.put(m.deployment("churn", model=MODEL, version=stable))
    if canary is not None:
        kube.put(m.canary_deployment("churn", model=MODEL, version=canary))


def _aliases(uri: str) -> dict[str, str]:
    from mlflow import MlflowClient

    aliases = MlflowClient(tracking_uri=uri, registry_uri=uri).get_registered_model(MODEL).aliases
    return {k: str(v) for k, v in aliases.items()}


def _tags(uri: str, version: str) -> dict[str, str]:
    from mlflow import MlflowClient

    return dict(
        MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version(MODEL, version).tags
    )


@pytest.fixture
def engine_for(kube: Any, mlflow_store: Any, audit_log: Any):  # type: ignore[no-untyped-def]
    def make(**kw: Any) -> ActionEngine:
        config = make_config(
            TARGET, kubeconfig=kube.kubeconfig, mlflow_uri=mlflow_store.tracking_uri, **kw
        )
        return ActionEngine(config)

    return make


def test_promote_changes_exactly_the_planned_fields_and_moves_champion(
    kube: Any, mlflow_store: Any, engine_for: Any, audit_log: Any
) -> None:
    """Promote copies the canary's template (keeping the stable selector labels), scales the
    canary to 0, tags v4 with the previous champion and moves champion 3 → 4 — nothing else."""
    _setup(kube)
    engine = engine_for()
    plan = engine.plan("promote", "churn")
    assert plan.refusal is None, plan_text(plan)
    assert [s.system for s in plan.steps] == ["kubernetes", "kubernetes", "mlflow", "mlflow"]
    before = {n: kube.get("Deployment", "ml", n) for n in ("churn", "churn-canary")}

    result = engine.apply(plan)

    assert result.status == "applied", result_text(result)
    after = {n: kube.get("Deployment", "ml", n) for n in ("churn", "churn-canary")}
    assert changed_fields(before["churn"], after["churn"]) == planned_fields(plan, STABLE)
    assert changed_fields(before["churn-canary"], after["churn-canary"]) == planned_fields(
        plan, CANARY
    )
    assert set(planned_fields(plan, CANARY)) == {
        "spec.replicas",
        f'metadata.annotations["{LAST_ACTION_ANNOTATION}"]',
    }
    # The stable pods run the canary's containers but keep the stable selector's labels.
    template = after["churn"]["spec"]["template"]
    assert template["spec"] == before["churn-canary"]["spec"]["template"]["spec"]
    assert template["metadata"]["labels"]["app"] == "churn"
    assert template["metadata"]["labels"]["mltui.io/track"] == "stable"
    assert template_version(template) == "4"
    assert after["churn-canary"]["spec"]["replicas"] == 0
    last = json.loads(after["churn"]["metadata"]["annotations"][LAST_ACTION_ANNOTATION])
    assert (
        last["action"] == "promote"
        and last["model"] == "churn"
        and last["kube_user"] == "mltui-test"
    )
    # The registry: champion moved, the way back remembered on the new champion.
    assert _aliases(mlflow_store.tracking_uri) == {"champion": "4", "challenger": "4"}
    assert _tags(mlflow_store.tracking_uri, "4")["mltui.previous_champion"] == "3"
    # Audited: attempt then result, same id.
    records = audit_log.read()
    assert [r["phase"] for r in records] == ["attempt", "result"]
    assert records[0]["id"] == records[1]["id"] and records[1]["status"] == "applied"
    assert records[0]["kube_context"] == "standin" and records[0]["kube_user"] == "mltui-test"


def test_rollback_after_promote_restores_the_original_template_and_champion(
    kube: Any, mlflow_store: Any, engine_for: Any
) -> None:
    """Promote then rollback: the stable template is byte-for-byte the original, champion is 3 again."""
    _setup(kube)
    original = kube.get("Deployment", "ml", "churn")["spec"]["template"]
    engine = engine_for()
    assert engine.apply(engine.plan("promote", "churn")).status == "applied"
    assert _aliases(mlflow_store.tracking_uri)["champion"] == "4"

    plan = engine.plan("rollback", "churn")
    assert plan.refusal is None, plan_text(plan)
    before = kube.get("Deployment", "ml", "churn")
    result = engine.apply(plan)

    assert result.status == "applied", result_text(result)
    after = kube.get("Deployment", "ml", "churn")
    assert after["spec"]["template"] == original
    assert changed_fields(before, after) == planned_fields(plan, STABLE)
    assert _aliases(mlflow_store.tracking_uri)["champion"] == "3"
    # The canary stays at 0 (already there: no step for it).
    assert kube.get("Deployment", "ml", "churn-canary")["spec"]["replicas"] == 0
    assert not planned_fields(plan, CANARY)


def _history(kube: Any) -> dict[str, dict[str, Any]]:
    """Four revisions v1..v4 of churn (no canary); returns version -> template as put."""
    templates = {}
    annotations = {
        "kubectl.kubernetes.io/last-applied-configuration": '{"kind":"Deployment"}',
        "team": "ml",
    }
    for version in ("1", "2", "3", "4"):
        obj = m.deployment("churn", model=MODEL, version=version, annotations=annotations)
        templates[version] = obj["spec"]["template"]
        kube.put(obj)
    return templates


def _rs_revisions(kube: Any) -> dict[str, str]:
    """version served -> revision annotation of each ReplicaSet of churn."""
    return {
        template_version(rs["spec"]["template"]) or "?": rs["metadata"]["annotations"][
            "deployment.kubernetes.io/revision"
        ]
        for rs in kube.objects("ReplicaSet", "ml")
    }


def test_rollback_follows_kubectl_on_a_multi_revision_history(kube: Any, engine_for: Any) -> None:
    """kubectl rollout undo: previous revision, then ping-pong back, then --to-revision 1."""
    templates = _history(kube)
    assert _rs_revisions(kube) == {"1": "1", "2": "2", "3": "3", "4": "4"}
    engine = engine_for()

    # undo → revision 3 (the second newest); the controller reuses its ReplicaSet as revision 5.
    result = engine.apply(engine.plan("rollback", "churn"))
    assert result.status == "applied", result_text(result)
    dep = kube.get("Deployment", "ml", "churn")
    assert dep["spec"]["template"] == templates["3"]
    # kubectl replaces the annotations: the skip-listed ones from the Deployment, the rest from
    # the ReplicaSet (whose only annotations are skip-listed), so "team" goes, as with kubectl.
    assert dep["metadata"]["annotations"].keys() == {
        "kubectl.kubernetes.io/last-applied-configuration",
        "deployment.kubernetes.io/revision",
        LAST_ACTION_ANNOTATION,
    }
    assert _rs_revisions(kube) == {"1": "1", "2": "2", "3": "5", "4": "4"}

    # undo again → the second newest is now revision 4 (v4): kubectl's ping-pong.
    plan = engine.plan("rollback", "churn")
    assert "revision 4" in plan.steps[0].summary
    assert engine.apply(plan).status == "applied"
    assert kube.get("Deployment", "ml", "churn")["spec"]["template"] == templates["4"]

    # --to-revision 1
    plan = engine.plan("rollback", "churn", to_revision="1")
    assert "revision 1" in plan.steps[0].summary
    assert engine.apply(plan).status == "applied"
    assert kube.get("Deployment", "ml", "churn")["spec"]["template"] == templates["1"]
    assert _rs_revisions(kube)["1"] == "7"

    # A revision not in the history is refused with kubectl's words.
    missing = engine.plan("rollback", "churn", to_revision="99")
    assert missing.refusal == "unable to find specified revision 99 in history"
    # Already at the target revision: kubectl skips.
    same = engine.plan("rollback", "churn", to_revision="7")
    assert same.refusal is not None and "already matches revision 7" in same.refusal


def test_rollback_without_history_is_refused(kube: Any, engine_for: Any) -> None:
    _setup(kube, canary=None)
    plan = engine_for().plan("rollback", "churn")
    assert plan.refusal == 'no rollout history found for deployment "churn"'
    assert not plan.steps


def test_promote_without_a_canary_in_flight_is_refused(kube: Any, engine_for: Any) -> None:
    _setup(kube)
    canary = kube.get("Deployment", "ml", "churn-canary")
    canary["spec"]["replicas"] = 0
    kube.put(canary)
    plan = engine_for().plan("promote", "churn")
    assert plan.refusal is not None and "no canary in flight" in plan.refusal


def test_dry_run_sends_dry_run_all_and_writes_nothing(
    kube: Any, mlflow_store: Any, engine_for: Any
) -> None:
    """Every PATCH carries dryRun=All; no stored object and no alias changes."""
    _setup(kube)
    engine = engine_for()
    plan = engine.plan("promote", "churn")
    objects = {k: kube.objects(k, "ml") for k in ("Deployment", "ReplicaSet")}
    kube.clear_log()

    result = engine.apply(plan, dry_run=True)

    assert result.status == "dry_run", result_text(result)
    assert [r.outcome for r in result.steps] == ["validated"] * 4
    patches = [r for r in kube.requests if r.method == "PATCH"]
    assert len(patches) == 2 and all(r.query.get("dryRun") == "All" for r in patches)
    assert {k: kube.objects(k, "ml") for k in ("Deployment", "ReplicaSet")} == objects
    assert _aliases(mlflow_store.tracking_uri) == {"champion": "3", "challenger": "4"}
    assert "mltui.previous_champion" not in _tags(mlflow_store.tracking_uri, "4")


def test_a_concurrent_unrelated_change_is_caught_before_writing_and_replanned(
    kube: Any, engine_for: Any
) -> None:
    """Someone scales the stable Deployment after the plan: the check before the first write
    sees its resourceVersion moved, the engine re-reads, finds the same changes, applies them
    with the fresh resourceVersions (no 409 needed), and the scale survives."""
    _setup(kube)
    engine = engine_for()
    plan = engine.plan("promote", "churn")
    stable = kube.get("Deployment", "ml", "churn")
    stable["spec"]["replicas"] = 5
    kube.put(stable)
    kube.clear_log()

    result = engine.apply(plan)

    assert result.status == "applied", result_text(result)
    assert result.replans == 1
    codes = [r.status for r in kube.requests if r.method == "PATCH"]
    assert codes == [200, 200]
    after = kube.get("Deployment", "ml", "churn")
    assert after["spec"]["replicas"] == 5
    assert template_version(after["spec"]["template"]) == "4"


def test_a_change_racing_the_write_still_gets_409_then_a_replan_not_an_overwrite(
    kube: Any, engine_for: Any
) -> None:
    """The scale lands after the engine's check, while its first write is on the wire: the
    write's own resourceVersion guard gets 409, the re-plan finds the same changes, and they
    are applied on top of the scale."""
    _setup(kube)
    engine = engine_for()
    plan = engine.plan("promote", "churn")
    kube.clear_log()

    def scale() -> None:
        stable = kube.get("Deployment", "ml", "churn")
        stable["spec"]["replicas"] = 5
        kube.put(stable)

    result = apply_holding_first_patch(kube, engine, plan, scale)

    assert result.status == "applied", result_text(result)
    assert result.replans == 1
    codes = [r.status for r in kube.requests if r.method == "PATCH"]
    assert codes == [409, 200, 200]
    after = kube.get("Deployment", "ml", "churn")
    assert after["spec"]["replicas"] == 5
    assert template_version(after["spec"]["template"]) == "4"


def test_a_changed_canary_stops_the_promote_before_the_stable_deployment_is_written(
    kube: Any, mlflow_store: Any, engine_for: Any, audit_log: Any
) -> None:
    """Only the canary changes (v4 → v5) between plan and apply. The stable Deployment is
    written first and its own resourceVersion did not move, so only a check of every planned
    object keeps it from getting the v4 template half a promote ahead of the canary: conflict,
    no PATCH at all, the stable object byte-for-byte as it was, the fresh plan (v5) returned."""
    _setup(kube)
    engine = engine_for()
    plan = engine.plan("promote", "churn")
    assert plan.refusal is None, plan_text(plan)
    stable_before = kube.get("Deployment", "ml", "churn")
    kube.put(m.canary_deployment("churn", model=MODEL, version="5"))
    kube.clear_log()

    result = engine.apply(plan)

    assert result.status == "conflict", result_text(result)
    assert [s.outcome for s in result.steps] == ["not_done", "failed", "not_done", "not_done"]
    assert "churn-canary changed since the plan" in (result.steps[1].error or "")
    assert result.message == "nothing was written"
    assert kube.request_count(method="PATCH") == 0
    assert kube.get("Deployment", "ml", "churn") == stable_before  # resourceVersion included
    assert result.new_plan is not None
    assert any(c.new == "ghcr.io/acme/model-server:v5" for c in result.new_plan.changes)
    assert _aliases(mlflow_store.tracking_uri)["champion"] == "3"
    assert "mltui.previous_champion" not in _tags(mlflow_store.tracking_uri, "4")
    assert audit_log.read()[-1]["status"] == "conflict"


def test_a_concurrent_change_to_a_planned_field_stops_with_the_fresh_plan(
    kube: Any, mlflow_store: Any, engine_for: Any
) -> None:
    """The canary moves to v5 after the operator confirmed v4: nothing is written, the
    result carries the fresh plan (v5) to confirm."""
    _setup(kube)
    engine = engine_for()
    plan = engine.plan("promote", "churn")
    stable_before = kube.get("Deployment", "ml", "churn")
    kube.put(m.deployment("churn", model=MODEL, version="3", replicas=4))  # bumps resourceVersion
    kube.put(m.canary_deployment("churn", model=MODEL, version="5"))

    result = engine.apply(plan)

    assert result.status == "conflict", result_text(result)
    assert result.new_plan is not None
    assert any(c.new == "ghcr.io/acme/model-server:v5" for c in result.new_plan.changes)
    after = kube.get("Deployment", "ml", "churn")
    assert after["spec"]["template"] == stable_before["spec"]["template"]
    assert _aliases(mlflow_store.tracking_uri)["champion"] == "3"


def test_forbidden_patch_names_the_missing_permission(
    kube: Any, engine_for: Any, audit_log: Any
) -> None:
    _setup(kube)
    kube.deny("patch", "deployments", "ml")
    engine = engine_for()
    result = engine.apply(engine.plan("promote", "churn"))

    assert result.status == "failed"
    error = result.error or ""
    assert 'verb "patch"' in error and 'resource "deployments"' in error
    assert 'apiGroup "apps"' in error and 'namespace "ml"' in error
    assert "kube-standin-token" not in error
    assert kube.get("Deployment", "ml", "churn-canary")["spec"]["replicas"] == 1
    assert audit_log.read()[-1]["status"] == "failed"


def test_forbidden_read_is_a_refusal_naming_the_permission(kube: Any, engine_for: Any) -> None:
    _setup(kube)
    kube.deny("list", "replicasets")
    plan = engine_for().plan("rollback", "churn")
    assert plan.refusal is not None
    assert 'verb "list"' in plan.refusal and 'resource "replicasets"' in plan.refusal


def test_read_only_refuses_and_writes_nothing(kube: Any, engine_for: Any, audit_log: Any) -> None:
    _setup(kube)
    engine = engine_for(read_only=True)
    kube.clear_log()
    for action in ("promote", "rollback", "retrain"):
        plan = engine.plan(action, "churn")  # type: ignore[arg-type]
        assert plan.refusal == READ_ONLY and not plan.steps
    # Even a plan made elsewhere is refused by a read-only engine.
    plan = engine_for().plan("promote", "churn")
    assert engine.apply(plan).status == "refused"
    assert kube.request_count(method="PATCH") == 0
    assert kube.get("Deployment", "ml", "churn-canary")["spec"]["replicas"] == 1
    assert audit_log.read() == []


def test_half_done_when_mlflow_dies_after_the_cluster_write(
    kube: Any, mlflow_server_factory: Any, audit_log: Any, tmp_path: Any
) -> None:
    """The cluster is promoted, the MLflow server is gone: reported and audited as half-done,
    and the missing registry steps can be retried once MLflow is back."""
    from tests.support.mlflow_server import start_mlflow_server

    _setup(kube)
    server = mlflow_server_factory()
    engine = ActionEngine(make_config(TARGET, kubeconfig=kube.kubeconfig, mlflow_uri=server.url))
    plan = engine.plan("promote", "churn")
    assert [s.system for s in plan.steps] == ["kubernetes", "kubernetes", "mlflow", "mlflow"]

    # MLflow dies while the first cluster write is on the wire (after the engine checked
    # every object: an MLflow already down at apply time stops it before any write).
    result = apply_holding_first_patch(kube, engine, plan, server.kill)

    assert result.status == "partial", result_text(result)
    assert [r.outcome for r in result.steps] == ["done", "done", "failed", "not_done"]
    assert [s.system for s in result.not_done] == ["mlflow", "mlflow"]
    text = result_text(result)
    assert "HALF-DONE" in text and "NOT done" in text and "move champion" in text
    assert template_version(kube.get("Deployment", "ml", "churn")["spec"]["template"]) == "4"
    record = audit_log.read()[-1]
    assert record["status"] == "partial"
    assert record["result"]["not_done"] == [s.summary for s in result.not_done]

    # MLflow back (same store, new port): retry only the missing steps.
    revived = start_mlflow_server(server.data, tmp_path / "revived")
    try:
        again = ActionEngine(
            make_config(TARGET, kubeconfig=kube.kubeconfig, mlflow_uri=revived.url)
        )
        kube.clear_log()
        retried = again.retry(result)
        assert retried.status == "applied", result_text(retried)
        assert kube.request_count(method="PATCH") == 0
        assert _aliases(server.data.tracking_uri)["champion"] == "4"
    finally:
        revived.stop()


def test_rerunning_a_half_done_rollback_finishes_it_without_rolling_back_again(
    kube: Any, mlflow_server_factory: Any, audit_log: Any, tmp_path: Any
) -> None:
    """Promote v4, then a rollback whose MLflow step fails (MLflow drops out during the cluster
    write): the cluster is back on v3, champion still 4. `mltui rollback churn --yes` again
    must not undo the cluster a second time (kubectl's undo would go back to v4): it plans
    only the champion move. While MLflow is still down it refuses rather than guess. Once
    the rollback is complete, a new rollback is an ordinary undo again."""
    from click.testing import CliRunner

    from mltui.cli import main
    from tests.support.fault_proxy import FaultProxy

    _setup(kube)
    server = mlflow_server_factory()
    proxy = FaultProxy("127.0.0.1", server.port).start()
    uri = server.url
    config = tmp_path / "config.toml"
    config.write_text(
        f'[kubernetes]\nkubeconfig = "{kube.kubeconfig}"\ntimeout = "3s"\n'
        f'[mlflow]\ntracking_uri = "{proxy.url}"\ntimeout = "2s"\n' + TARGET
    )
    original = kube.get("Deployment", "ml", "churn")["spec"]["template"]

    def cli_rollback() -> Any:
        return CliRunner().invoke(
            main, ["rollback", "churn", "--yes", "--config", str(config)], catch_exceptions=False
        )

    engine = ActionEngine(make_config(TARGET, kubeconfig=kube.kubeconfig, mlflow_uri=proxy.url))
    try:
        assert engine.apply(engine.plan("promote", "churn")).status == "applied"
        assert _aliases(uri)["champion"] == "4"
        plan = engine.plan("rollback", "churn")
        assert [s.system for s in plan.steps] == ["kubernetes", "mlflow"], plan_text(plan)
        half = apply_holding_first_patch(kube, engine, plan, lambda: proxy.set("refuse"))
        assert half.status == "partial", result_text(half)
        assert kube.get("Deployment", "ml", "churn")["spec"]["template"] == original
        assert _aliases(uri)["champion"] == "4"
        rolled_back = kube.get("Deployment", "ml", "churn")

        # MLflow still down: refused (exit 1), nothing written.
        kube.clear_log()
        out = cli_rollback()
        assert out.exit_code == 1, out.output
        assert "may have left the champion alias unmoved" in out.output
        assert kube.request_count(method="PATCH") == 0

        # MLflow back: only the champion move is planned and applied; the cluster is untouched.
        proxy.set("pass")
        out = cli_rollback()
        assert out.exit_code == 0, out.output
        assert "finishing the rollback" in out.output
        assert "move champion back v4 → v3" in out.output
        assert "[kubernetes]" not in out.output
        assert kube.request_count(method="PATCH") == 0
        assert kube.get("Deployment", "ml", "churn") == rolled_back
        assert _aliases(uri)["champion"] == "3"
        assert [r["status"] for r in audit_log.read() if r["phase"] == "result"] == [
            "applied",
            "partial",
            "applied",
        ]

        # Complete now: the next rollback is kubectl's undo again (back to v4), whole.
        again = engine.plan("rollback", "churn")
        assert [s.system for s in again.steps] == ["kubernetes", "mlflow"], plan_text(again)
        assert "(v3 → v4)" in again.steps[0].summary
    finally:
        engine.close()
        proxy.stop()
