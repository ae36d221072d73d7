"""Promote and roll back KServe InferenceServices and Argo Rollouts on the stand-in.

The stand-in has no KServe or Argo controller: the tests assert on the fields the
actions write (canaryTrafficPercent; status.promoteFull / status.abort through the
status subresource; the Rollout template for undo) and that nothing else changed.
"""

from __future__ import annotations

from typing import Any

import pytest

from mltui.actions.engine import ActionEngine
from mltui.actions.kube import template_version
from mltui.actions.plan import LAST_ACTION_ANNOTATION, plan_text, result_text
from tests.support import manifests as m
from tests.support.actions import changed_fields, make_config, planned_fields

MODEL = "churn-classifier"
ISVC = "inferenceservices.serving.kserve.io ml/churn"
ROLLOUT = "argoproj.io"


def _config(kind: str, kube: Any, uri: str | None) -> Any:
    return make_config(
        f"""
[[models]]
name = "churn"
registered_model = "{MODEL}"
target = {{ kind = "{kind}", name = "churn" }}
""",
        kubeconfig=kube.kubeconfig,
        mlflow_uri=uri,
    )


def _aliases(uri: str) -> dict[str, str]:
    from mlflow import MlflowClient

    model = MlflowClient(tracking_uri=uri, registry_uri=uri).get_registered_model(MODEL)
    return {k: str(v) for k, v in model.aliases.items()}


# ---------------------------------------------------------------- KServe


def _isvc(kube: Any, percent: int | None = 10) -> None:
    kube.put(
        m.inference_service(
            "churn",
            model=MODEL,
            version="4",
            storage_uri=f"models:/{MODEL}/4",
            canary_traffic_percent=percent,
            revision=2,
        )
    )


def test_kserve_promote_removes_canary_traffic_percent_only(
    kube: Any, mlflow_store: Any, audit_log: Any
) -> None:
    _isvc(kube)
    engine = ActionEngine(_config("InferenceService", kube, mlflow_store.tracking_uri))
    plan = engine.plan("promote", "churn")
    assert plan.refusal is None, plan_text(plan)
    before = kube.get("InferenceService", "ml", "churn")

    result = engine.apply(plan)

    assert result.status == "applied", result_text(result)
    after = kube.get("InferenceService", "ml", "churn")
    assert "canaryTrafficPercent" not in after["spec"]["predictor"]
    assert changed_fields(before, after) == planned_fields(plan, ISVC)
    assert set(planned_fields(plan, ISVC)) == {
        "spec.predictor.canaryTrafficPercent",
        f'metadata.annotations["{LAST_ACTION_ANNOTATION}"]',
    }
    # The version comes from storageUri models:/churn-classifier/4.
    assert _aliases(mlflow_store.tracking_uri)["champion"] == "4"


def test_kserve_rollback_sets_canary_traffic_to_zero_and_champion_back(
    kube: Any, mlflow_store: Any, audit_log: Any
) -> None:
    """Promote, then roll back: canaryTrafficPercent 0 and champion back to the tagged v3."""
    _isvc(kube)
    engine = ActionEngine(_config("InferenceService", kube, mlflow_store.tracking_uri))
    assert engine.apply(engine.plan("promote", "churn")).status == "applied"
    plan = engine.plan("rollback", "churn")
    before = kube.get("InferenceService", "ml", "churn")

    result = engine.apply(plan)

    assert result.status == "applied", result_text(result)
    after = kube.get("InferenceService", "ml", "churn")
    assert after["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert changed_fields(before, after) == planned_fields(plan, ISVC)
    assert _aliases(mlflow_store.tracking_uri)["champion"] == "3"
    # Rolled back already: a second rollback has nothing to do.
    again = engine.plan("rollback", "churn")
    assert again.refusal is not None and "already rolled back" in again.refusal


def test_kserve_promote_without_canary_is_refused(kube: Any, audit_log: Any) -> None:
    _isvc(kube, percent=None)
    plan = ActionEngine(_config("InferenceService", kube, None)).plan("promote", "churn")
    assert plan.refusal is not None and "no canary in flight" in plan.refusal


def test_kserve_forbidden_names_the_permission(kube: Any, audit_log: Any) -> None:
    _isvc(kube)
    kube.deny("patch", "inferenceservices")
    engine = ActionEngine(_config("InferenceService", kube, None))
    result = engine.apply(engine.plan("promote", "churn"))
    assert result.status == "failed"
    assert 'verb "patch"' in (result.error or "")
    assert 'apiGroup "serving.kserve.io"' in (result.error or "")


# ---------------------------------------------------------------- Argo Rollouts


def _rollout(kube: Any, state: str) -> dict[str, Any]:
    """A Rollout at v4 (stable v3 while in flight) with ReplicaSets for revisions 1..3."""
    stored = kube.put(
        m.rollout("churn", model=MODEL, version="4", stable_version="3", state=state, revision=3)
    )
    for version, revision in (("2", 1), ("3", 2), ("4", 3)):
        kube.put(m.argo_replicaset(stored, version=version, revision=revision, replicas=1))
    return stored


def _ro_fields(plan: Any) -> dict[str, Any]:
    return {
        c.field: (c.old, c.new)
        for c in plan.changes
        if c.object.startswith("rollouts.argoproj.io ml/churn")
    }


def test_argo_promote_sets_promote_full_through_the_status_subresource(
    kube: Any, mlflow_store: Any, audit_log: Any
) -> None:
    _rollout(kube, "paused")
    engine = ActionEngine(_config("Rollout", kube, mlflow_store.tracking_uri))
    plan = engine.plan("promote", "churn")
    assert plan.refusal is None, plan_text(plan)
    before = kube.get("Rollout", "ml", "churn")
    kube.clear_log()

    result = engine.apply(plan)

    assert result.status == "applied", result_text(result)
    after = kube.get("Rollout", "ml", "churn")
    assert after["status"]["promoteFull"] is True
    assert any(
        r.method == "PATCH" and r.path.endswith("/rollouts/churn/status") for r in kube.requests
    )
    # Only the planned fields changed (status included: compare it too, it is ours here).
    diff = changed_fields(before, after)
    diff.update(
        {f"status.{k}": v for k, v in changed_fields(before["status"], after["status"]).items()}
    )
    assert diff == _ro_fields(plan)
    assert _aliases(mlflow_store.tracking_uri)["champion"] == "4"


def test_argo_rollback_aborts_a_rollout_in_flight(
    kube: Any, mlflow_store: Any, audit_log: Any
) -> None:
    _rollout(kube, "paused")
    engine = ActionEngine(_config("Rollout", kube, mlflow_store.tracking_uri))
    plan = engine.plan("rollback", "churn")
    assert [s.verb for s in plan.steps][:2] == ["patch status", "patch"], plan_text(plan)
    before = kube.get("Rollout", "ml", "churn")

    result = engine.apply(plan)

    assert result.status == "applied", result_text(result)
    after = kube.get("Rollout", "ml", "churn")
    assert after["status"]["abort"] is True
    assert after["spec"] == before["spec"]
    # The stable ReplicaSet serves v3, already the champion: no registry step.
    assert not [s for s in plan.steps if s.system == "mlflow"]
    assert _aliases(mlflow_store.tracking_uri)["champion"] == "3"


def test_argo_undo_restores_the_previous_revision_template(
    kube: Any, mlflow_store: Any, audit_log: Any
) -> None:
    """A healthy Rollout: undo patches spec.template to the previous ReplicaSet's (hash label
    stripped), as kubectl argo rollouts undo; --to-revision picks an older one."""
    _rollout(kube, "healthy")
    rs_v3 = next(
        rs
        for rs in kube.objects("ReplicaSet", "ml")
        if template_version(rs["spec"]["template"]) == "3"
    )
    engine = ActionEngine(_config("Rollout", kube, mlflow_store.tracking_uri))
    plan = engine.plan("rollback", "churn")
    before = kube.get("Rollout", "ml", "churn")

    result = engine.apply(plan)

    assert result.status == "applied", result_text(result)
    after = kube.get("Rollout", "ml", "churn")
    expected = rs_v3["spec"]["template"]
    expected["metadata"]["labels"].pop("rollouts-pod-template-hash")
    assert after["spec"]["template"] == expected
    assert changed_fields(before, after) == _ro_fields(plan)
    assert _aliases(mlflow_store.tracking_uri)["champion"] == "3"

    older = engine.plan("rollback", "churn", to_revision="1")
    assert older.refusal is None and "revision 1" in older.steps[0].summary
    assert engine.apply(older).status == "applied"
    assert template_version(kube.get("Rollout", "ml", "churn")["spec"]["template"]) == "2"


def test_argo_promote_when_fully_promoted_is_refused(kube: Any, audit_log: Any) -> None:
    _rollout(kube, "healthy")
    plan = ActionEngine(_config("Rollout", kube, None)).plan("promote", "churn")
    assert plan.refusal is not None and "fully promoted" in plan.refusal


@pytest.mark.parametrize(
    ("denied", "status"),
    # Denied status subresource: nothing written. Denied main resource: promoted, but the
    # annotation (second step) could not be written -> half-done, said so.
    [("rollouts/status", "failed"), ("rollouts", "partial")],
)
def test_argo_forbidden_patch_names_the_resource(
    kube: Any, audit_log: Any, denied: str, status: str
) -> None:
    _rollout(kube, "paused")
    kube.deny("patch", denied)
    engine = ActionEngine(_config("Rollout", kube, None))
    result = engine.apply(engine.plan("promote", "churn"))
    assert result.status == status, result_text(result)
    assert f'resource "{denied}"' in (result.error or "")
    assert audit_log.read()[-1]["status"] == status
