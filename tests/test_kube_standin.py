"""The Kubernetes API stand-in, driven by the real ``kubernetes`` client.

These pin the server semantics that mltui's collector and actions rely on:
selectors, the three patch types, status/scale subresources, 409 on stale
resourceVersion, 403 with the real message, dryRun=All, faults, and the
Deployment controller's ReplicaSets and revisions.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiException

from tests.harness.kubernetes import KubeHandle
from tests.support import manifests as m
from tests.support.kube_standin import Fault


@pytest.fixture
def apps(kube: KubeHandle) -> client.AppsV1Api:
    return client.AppsV1Api(kube.api_client())


@pytest.fixture
def custom(kube: KubeHandle) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube.api_client())


def _status(exc: ApiException) -> dict[str, Any]:
    body = json.loads(exc.body)
    assert body["kind"] == "Status" and body["code"] == exc.status
    return body


def _revisions(kube: KubeHandle, deployment: str) -> dict[str, str]:
    """ReplicaSet name -> revision for one Deployment's ReplicaSets."""
    return {
        rs["metadata"]["name"]: rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
        for rs in kube.objects("ReplicaSet", "ml")
        if rs["metadata"]["ownerReferences"][0]["name"] == deployment
    }


def test_token_from_kubeconfig_is_required(kube: KubeHandle) -> None:
    kube.put(m.deployment("churn"))
    raw = client.ApiClient(client.Configuration(host=kube.url))  # no token
    with pytest.raises(ApiException) as err:
        client.AppsV1Api(raw).list_namespaced_deployment("ml")
    assert err.value.status == 401
    assert (
        client.AppsV1Api(kube.api_client()).list_namespaced_deployment("ml").items[0].metadata.name
        == "churn"
    )


def test_list_with_label_and_field_selectors(kube: KubeHandle, apps: client.AppsV1Api) -> None:
    kube.put(m.deployment("churn", model="churn-classifier"))
    kube.put(m.canary_deployment("churn", model="churn-classifier"))
    kube.put(m.deployment("fraud"))
    kube.put(m.deployment("ranker", namespace="search"))

    def names(**kw: Any) -> list[str]:
        return sorted(d.metadata.name for d in apps.list_namespaced_deployment("ml", **kw).items)

    assert names() == ["churn", "churn-canary", "fraud"]
    assert names(label_selector="mltui.io/model=churn-classifier") == ["churn", "churn-canary"]
    assert names(label_selector="mltui.io/model==churn-classifier,mltui.io/track!=canary") == [
        "churn"
    ]
    assert names(label_selector="mltui.io/model in (fraud, ranker)") == ["fraud"]
    assert names(label_selector="mltui.io/model notin (fraud)") == ["churn", "churn-canary"]
    assert names(label_selector="mltui.io/model") == ["churn", "churn-canary", "fraud"]
    assert names(label_selector="!mltui.io/model") == []
    assert names(field_selector="metadata.name=fraud") == ["fraud"]
    everywhere = apps.list_deployment_for_all_namespaces(field_selector="metadata.namespace=search")
    assert [d.metadata.name for d in everywhere.items] == ["ranker"]
    assert len(apps.list_deployment_for_all_namespaces().items) == 4
    with pytest.raises(ApiException) as err:
        apps.list_namespaced_deployment("ml", label_selector="a in (b")
    assert err.value.status == 400


def test_controller_creates_replicasets_with_revisions(
    kube: KubeHandle, apps: client.AppsV1Api
) -> None:
    created = apps.create_namespaced_deployment("ml", m.deployment("churn", version="1"))
    assert created.metadata.generation == 1
    assert created.status.ready_replicas == 3 and created.status.observed_generation == 1
    first = _revisions(kube, "churn")
    assert list(first.values()) == ["1"]
    rs = kube.get("ReplicaSet", "ml", next(iter(first)))
    assert rs is not None
    h = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"churn-{h}"
    assert rs["spec"]["selector"]["matchLabels"]["pod-template-hash"] == h
    assert rs["metadata"]["ownerReferences"][0]["uid"] == created.metadata.uid

    def set_image(tag: str) -> Any:
        patch = {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "model", "image": f"ghcr.io/acme/model-server:{tag}"}
                        ]
                    }
                }
            }
        }
        return apps.patch_namespaced_deployment("churn", "ml", patch)

    second = set_image("v2")
    assert second.metadata.generation == 2
    assert second.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    revs = _revisions(kube, "churn")
    assert sorted(revs.values()) == ["1", "2"]
    replicas = {
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]: rs["spec"]["replicas"]
        for rs in kube.objects("ReplicaSet", "ml")
    }
    assert replicas == {"1": 0, "2": 3}

    # The v1 template comes back: its ReplicaSet is re-used and becomes revision 3.
    third = set_image("v1")
    assert third.metadata.annotations["deployment.kubernetes.io/revision"] == "3"
    old = kube.get("ReplicaSet", "ml", next(iter(first)))
    assert old is not None
    assert old["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert old["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    assert len(_revisions(kube, "churn")) == 2

    # Deleting the Deployment garbage-collects its ReplicaSets.
    apps.delete_namespaced_deployment("churn", "ml")
    assert _revisions(kube, "churn") == {}


def test_controller_modes_hold_fail_and_off(kube: KubeHandle) -> None:
    kube.put(m.deployment("churn", version="1", replicas=4))
    kube.set_controller_mode("hold", "ml", "churn")
    d = kube.put(m.deployment("churn", version="2", replicas=4))
    assert d["status"]["updatedReplicas"] == 3 and d["status"]["replicas"] == 4
    assert {c["type"]: c["reason"] for c in d["status"]["conditions"]}[
        "Progressing"
    ] == "NewReplicaSetCreated"
    kube.set_controller_mode("fail", "ml", "churn")
    d = kube.get("Deployment", "ml", "churn")
    assert d is not None
    progressing = next(c for c in d["status"]["conditions"] if c["type"] == "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "ProgressDeadlineExceeded")
    kube.set_controller_mode("complete", "ml", "churn")
    d = kube.get("Deployment", "ml", "churn")
    assert d is not None and d["status"]["updatedReplicas"] == 4
    kube.set_controller_mode("off", "ml", "churn")
    d = kube.put(m.deployment("churn", version="3", replicas=4))
    assert d["metadata"]["generation"] == 3 and d["status"]["observedGeneration"] == 2


def test_three_patch_types(
    kube: KubeHandle, apps: client.AppsV1Api, custom: client.CustomObjectsApi
) -> None:
    kube.put(m.deployment("churn", version="1"))
    # strategic merge (the client's default for a dict body): env merged by name
    patched = apps.patch_namespaced_deployment(
        "churn",
        "ml",
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "model", "env": [{"name": "MODEL_VERSION", "value": "7"}]}
                        ]
                    }
                }
            }
        },
    )
    env = {e.name: e.value for e in patched.spec.template.spec.containers[0].env}
    assert env == {"MODEL_NAME": "churn", "MODEL_VERSION": "7"}
    assert patched.spec.template.spec.containers[0].image == "ghcr.io/acme/model-server:v1"
    # JSON patch (a list body), with a test op guarding the resourceVersion
    rv = patched.metadata.resource_version
    patched = apps.patch_namespaced_deployment(
        "churn",
        "ml",
        [
            {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
            {"op": "replace", "path": "/spec/replicas", "value": 5},
        ],
    )
    assert patched.spec.replicas == 5
    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_deployment(
            "churn", "ml", [{"op": "test", "path": "/metadata/resourceVersion", "value": rv}]
        )
    assert err.value.status == 422
    # merge patch on a custom object: null removes the key
    kube.put(
        m.inference_service(
            "churn", version="4", canary_traffic_percent=10, revision=2, stable_version="3"
        )
    )
    isvc = custom.patch_namespaced_custom_object(
        "serving.kserve.io",
        "v1beta1",
        "ml",
        "inferenceservices",
        "churn",
        {"spec": {"predictor": {"canaryTrafficPercent": None}}},
    )
    assert "canaryTrafficPercent" not in isvc["spec"]["predictor"]
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == "s3://models/churn/v4"
    assert isvc["metadata"]["generation"] == 2
    # custom resources refuse strategic merge, like the real server
    with pytest.raises(ApiException) as err:
        custom.patch_namespaced_custom_object(
            "serving.kserve.io",
            "v1beta1",
            "ml",
            "inferenceservices",
            "churn",
            {"spec": {}},
            _content_type="application/strategic-merge-patch+json",
        )
    assert err.value.status == 415


def test_status_and_scale_subresources(
    kube: KubeHandle, apps: client.AppsV1Api, custom: client.CustomObjectsApi
) -> None:
    kube.put(m.rollout("fraud", state="paused", version="5", stable_version="4"))
    before = kube.get("Rollout", "ml", "fraud")
    assert before is not None
    # a status write through the main resource is ignored …
    custom.patch_namespaced_custom_object(
        "argoproj.io", "v1alpha1", "ml", "rollouts", "fraud", {"status": {"promoteFull": True}}
    )
    after_main = kube.get("Rollout", "ml", "fraud")
    assert after_main is not None and "promoteFull" not in after_main["status"]
    # … and lands through /status, without bumping the generation
    out = custom.patch_namespaced_custom_object_status(
        "argoproj.io", "v1alpha1", "ml", "rollouts", "fraud", {"status": {"promoteFull": True}}
    )
    assert out["status"]["promoteFull"] is True
    assert out["metadata"]["generation"] == before["metadata"]["generation"]
    assert int(out["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])
    assert out["spec"] == before["spec"]

    kube.put(m.canary_deployment("churn", version="2"))
    scale = apps.patch_namespaced_deployment_scale("churn-canary", "ml", {"spec": {"replicas": 0}})
    assert scale.spec.replicas == 0
    canary = kube.get("Deployment", "ml", "churn-canary")
    assert (
        canary is not None
        and canary["spec"]["replicas"] == 0
        and canary["status"]["readyReplicas"] == 0
    )


def test_stale_resource_version_is_a_conflict(kube: KubeHandle, apps: client.AppsV1Api) -> None:
    kube.put(m.deployment("churn"))
    read = apps.read_namespaced_deployment("churn", "ml")
    kube.put(m.deployment("churn", replicas=4))  # someone else writes in between
    read.spec.replicas = 6
    with pytest.raises(ApiException) as err:
        apps.replace_namespaced_deployment("churn", "ml", read)
    body = _status(err.value)
    assert err.value.status == 409 and body["reason"] == "Conflict"
    assert body["message"].startswith(
        'Operation cannot be fulfilled on deployments.apps "churn": the object has been modified'
    )
    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_deployment(
            "churn",
            "ml",
            {
                "metadata": {"resourceVersion": read.metadata.resource_version},
                "spec": {"replicas": 6},
            },
        )
    assert err.value.status == 409
    stored = kube.get("Deployment", "ml", "churn")
    assert stored is not None and stored["spec"]["replicas"] == 4


def test_denied_verbs_answer_403_with_the_real_message(
    kube: KubeHandle, apps: client.AppsV1Api, custom: client.CustomObjectsApi
) -> None:
    kube.put(m.deployment("churn"))
    kube.put(m.deployment("churn", namespace="team-b"))
    kube.put(m.rollout("fraud"))
    kube.deny("patch", "deployments", "ml")
    kube.deny("patch", "rollouts/status")
    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_deployment("churn", "ml", {"spec": {"replicas": 1}})
    body = _status(err.value)
    assert err.value.status == 403 and body["reason"] == "Forbidden"
    assert body["message"] == (
        'deployments.apps "churn" is forbidden: User "system:serviceaccount:ml:mltui" cannot patch '
        'resource "deployments" in API group "apps" in the namespace "ml"'
    )
    assert body["details"] == {"name": "churn", "group": "apps", "kind": "deployments"}
    # other verbs and namespaces are untouched
    assert apps.read_namespaced_deployment("churn", "ml").metadata.name == "churn"
    assert (
        apps.patch_namespaced_deployment("churn", "team-b", {"spec": {"replicas": 1}}).spec.replicas
        == 1
    )
    with pytest.raises(ApiException) as err:
        custom.patch_namespaced_custom_object_status(
            "argoproj.io", "v1alpha1", "ml", "rollouts", "fraud", {"status": {"abort": True}}
        )
    assert (
        'cannot patch resource "rollouts/status" in API group "argoproj.io"'
        in _status(err.value)["message"]
    )


def test_dry_run_validates_and_stores_nothing(kube: KubeHandle, apps: client.AppsV1Api) -> None:
    kube.put(m.deployment("churn", version="1"))
    before = kube.get("Deployment", "ml", "churn")
    out = apps.patch_namespaced_deployment("churn", "ml", {"spec": {"replicas": 9}}, dry_run="All")
    assert out.spec.replicas == 9
    assert kube.get("Deployment", "ml", "churn") == before
    created = apps.create_namespaced_deployment("ml", m.deployment("fraud"), dry_run="All")
    assert created.metadata.name == "fraud" and kube.get("Deployment", "ml", "fraud") is None
    bad = m.deployment("broken")
    bad["spec"]["template"]["metadata"]["labels"]["app"] = "other"
    with pytest.raises(ApiException) as err:
        apps.create_namespaced_deployment("ml", bad, dry_run="All")
    assert err.value.status == 422 and "selector" in _status(err.value)["message"]
    assert len(kube.objects("ReplicaSet", "ml")) == 1


def test_job_from_cronjob_with_generate_name(kube: KubeHandle) -> None:
    batch = client.BatchV1Api(kube.api_client())
    kube.put(m.cronjob("churn-retrain", model="churn-classifier"))
    cj = batch.read_namespaced_cron_job("churn-retrain", "ml")
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "generateName": "churn-retrain-manual-",
            "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "CronJob",
                    "name": "churn-retrain",
                    "uid": cj.metadata.uid,
                    "controller": True,
                }
            ],
        },
        "spec": client.ApiClient().sanitize_for_serialization(cj.spec.job_template.spec),
    }
    out = batch.create_namespaced_job("ml", job)
    assert (
        out.metadata.name.startswith("churn-retrain-manual-")
        and len(out.metadata.name) == len("churn-retrain-manual-") + 5
    )
    assert out.status.active == 1
    assert out.spec.template.metadata.labels["batch.kubernetes.io/job-name"] == out.metadata.name
    done = kube.finish_job("ml", out.metadata.name)
    assert done["status"]["succeeded"] == 1
    assert (
        batch.read_namespaced_job(out.metadata.name, "ml").status.conditions[-1].type == "Complete"
    )


def test_faults_and_request_log(kube: KubeHandle) -> None:
    apps = client.AppsV1Api(kube.api_client(retries=False))
    kube.put(m.deployment("churn"))
    kube.clear_log()
    kube.fail_next(500)
    with pytest.raises(ApiException) as err:
        apps.list_namespaced_deployment("ml")
    assert err.value.status == 500
    kube.fail_next(429, retry_after=7)
    with pytest.raises(ApiException) as err:
        apps.list_namespaced_deployment("ml")
    assert err.value.status == 429 and err.value.headers["Retry-After"] == "7"
    kube.inject(Fault("truncate"))
    raw = apps.list_namespaced_deployment("ml", _preload_content=False)
    with pytest.raises(ValueError):
        json.loads(raw.data)
    assert len(apps.list_namespaced_deployment("ml").items) == 1
    assert kube.request_count("GET", "/apis/apps/v1/namespaces/ml/deployments") == 4
    assert [r.status for r in kube.requests] == [500, 429, 200, 200]
