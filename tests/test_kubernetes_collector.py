"""KubernetesSource against the API stand-in, through the real ``kubernetes`` client."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from mltui import secrets
from mltui.collectors.kube_rollout import ReplicaSetIndex
from mltui.collectors.kubernetes import KubernetesSource
from mltui.config import Config
from mltui.fleet import Rollout
from tests.harness.kubernetes import KubeHandle
from tests.support import manifests as m
from tests.support.kube_standin import DEFAULT_TOKEN, Fault


def make_config(kube: KubeHandle, models: list[dict[str, Any]], **kube_opts: Any) -> Config:
    kube_opts.setdefault("timeout", "2s")
    return Config.model_validate(
        {
            "kubernetes": {"kubeconfig": str(kube.kubeconfig), **kube_opts},
            "models": models,
        }
    )


def model(name: str, kind: str, target_name: str | None = None, **target: Any) -> dict[str, Any]:
    return {"name": name, "target": {"kind": kind, "name": target_name or name, **target}}


def poll(config: Config) -> tuple[dict[str, Rollout], dict[str, str], Any]:
    source = KubernetesSource(config)
    try:
        result = source.poll(config.models)
    finally:
        source.close()
    return dict(result.values), dict(result.errors), result.status


def test_deployment_states(kube: KubeHandle) -> None:
    for name in ("healthy", "progressing", "paused", "degraded"):
        kube.put(m.deployment(name, version="1", replicas=4))
    kube.set_controller_mode("hold", "ml", "progressing")
    kube.set_controller_mode("fail", "ml", "degraded")
    for name in ("healthy", "progressing", "degraded"):
        kube.put(m.deployment(name, version="2", replicas=4))
    kube.put(m.deployment("paused", version="2", replicas=4, paused=True))

    config = make_config(
        kube, [model(n, "Deployment") for n in ("healthy", "progressing", "paused", "degraded")]
    )
    values, errors, status = poll(config)
    assert status.status == "ok" and errors == {}
    assert {n: r.state for n, r in values.items()} == {
        "healthy": "healthy",
        "progressing": "progressing",
        "paused": "paused",
        "degraded": "degraded",
    }
    healthy = values["healthy"]
    assert (healthy.desired, healthy.updated, healthy.ready, healthy.available) == (4, 4, 4, 4)
    assert healthy.revision == "2" and healthy.serving_version == "2"
    assert [(h.revision, h.version, h.replicas) for h in healthy.history] == [
        ("2", "2", 4),
        ("1", "1", 0),
    ]
    assert (
        healthy.stable_hash is not None
        and healthy.history[0].name == f"healthy-{healthy.stable_hash}"
    )
    assert (
        healthy.resource_version
        == kube.get("Deployment", "ml", "healthy")["metadata"]["resourceVersion"]
    )
    assert values["progressing"].updated == 3
    assert values["progressing"].message == "3 out of 4 new replicas have been updated"
    assert values["degraded"].message == 'deployment "degraded" exceeded its progress deadline'
    assert {c.type: c.reason for c in values["degraded"].conditions}[
        "Progressing"
    ] == "ProgressDeadlineExceeded"
    # spec change the controller has not observed yet → progressing
    kube.set_controller_mode("off", "ml", "healthy")
    kube.put(m.deployment("healthy", version="3", replicas=4))
    values, _, _ = poll(config)
    assert values["healthy"].state == "progressing"
    assert values["healthy"].message == "waiting for deployment spec update to be observed"


def test_serving_version_order(kube: KubeHandle) -> None:
    def versioned(name: str, places: tuple[str, ...]) -> dict[str, Any]:
        d = m.deployment(name, version_in=(), tag="runtime-1.14")
        tmpl = d["spec"]["template"]
        if "annotation" in places:
            tmpl["metadata"]["annotations"] = {"mltui.io/model-version": "10"}
        if "label" in places:
            tmpl["metadata"]["labels"]["app.kubernetes.io/version"] = "11"
        if "env" in places:
            tmpl["spec"]["containers"][0]["env"].append({"name": "MODEL_VERSION", "value": "12"})
        if "image" in places:
            tmpl["spec"]["containers"][0]["image"] = "registry:5000/acme/churn:v13@sha256:abc"
        return d

    cases = {
        "all": (("annotation", "label", "env", "image"), "10"),
        "label-env-image": (("label", "env", "image"), "11"),
        "env-image": (("env", "image"), "12"),
        "image": (("image",), "13"),
        "runtime-tag": ((), "runtime-1.14"),
    }
    for name, (places, _) in cases.items():
        kube.put(versioned(name, places))
    values, errors, _ = poll(make_config(kube, [model(n, "Deployment") for n in cases]))
    assert errors == {}
    assert {n: r.serving_version for n, r in values.items()} == {
        n: v for n, (_, v) in cases.items()
    }


def test_deployment_canary_weight(kube: KubeHandle) -> None:
    kube.put(m.deployment("churn", model="churn-classifier", version="3", replicas=3))
    kube.put(m.canary_deployment("churn", model="churn-classifier", version="4", replicas=1))
    config = make_config(kube, [model("churn", "Deployment", canary="churn-canary")])
    values, _, _ = poll(config)
    churn = values["churn"]
    assert (churn.serving_version, churn.canary_version, churn.canary_weight) == ("3", "4", 25)
    assert churn.state == "progressing" and churn.canary_hash is not None
    assert churn.canary_hash != churn.stable_hash
    # the canary scaled to 0 (promoted or rolled back): no canary in flight
    kube.put(m.canary_deployment("churn", model="churn-classifier", version="4", replicas=0))
    values, _, _ = poll(config)
    assert (
        values["churn"].canary_weight,
        values["churn"].canary_version,
        values["churn"].state,
    ) == (None, None, "healthy")


def test_inference_service_states(kube: KubeHandle) -> None:
    kube.put(m.inference_service("healthy", version="3"))
    kube.put(
        m.inference_service(
            "canary", version="4", canary_traffic_percent=10, revision=2, stable_version="3"
        )
    )
    kube.put(
        m.inference_service("stopped", version="3", annotations={"serving.kserve.io/stop": "true"})
    )
    kube.put(
        m.inference_service(
            "failed",
            version="5",
            ready=False,
            reason="RevisionFailed",
            message="Container failed with: OOMKilled",
        )
    )
    kube.put(m.inference_service("models-uri", storage_uri="models:/fraud-detector/8"))
    names = ["healthy", "canary", "stopped", "failed", "models-uri"]
    values, errors, _ = poll(make_config(kube, [model(n, "InferenceService") for n in names]))
    assert errors == {}
    assert {n: r.state for n, r in values.items()} == {
        "healthy": "healthy",
        "canary": "progressing",
        "stopped": "paused",
        "failed": "degraded",
        "models-uri": "healthy",
    }
    canary = values["canary"]
    assert (canary.serving_version, canary.canary_version, canary.canary_weight) == ("3", "4", 10)
    assert (canary.stable_hash, canary.canary_hash) == (
        "canary-predictor-00001",
        "canary-predictor-00002",
    )
    assert [h.revision for h in canary.history] == ["2", "1"]
    assert values["healthy"].serving_version == "3" and values["healthy"].canary_weight is None
    assert values["failed"].message == "RevisionFailed: Container failed with: OOMKilled"
    assert values["models-uri"].serving_version == "8"


def test_argo_rollout_states(kube: KubeHandle) -> None:
    cases = {
        "healthy": "healthy",
        "paused": "paused",
        "progressing": "progressing",
        "degraded": "degraded",
    }
    for name, state in cases.items():
        ro = kube.put(m.rollout(name, state=state, version="5", stable_version="4", revision=2))
        kube.put(
            m.argo_replicaset(ro, version="4", revision=1, replicas=0 if state == "healthy" else 4)
        )
        kube.put(
            m.argo_replicaset(ro, version="5", revision=2, replicas=5 if state == "healthy" else 1)
        )
    kube.put(
        m.rollout(
            "basic",
            state="paused",
            version="5",
            stable_version="4",
            traffic_routing=False,
            step_index=1,
        )
    )
    values, errors, _ = poll(make_config(kube, [model(n, "Rollout") for n in [*cases, "basic"]]))
    assert errors == {}
    assert {n: values[n].state for n in cases} == cases
    paused = values["paused"]
    assert (paused.serving_version, paused.canary_version, paused.canary_weight) == ("4", "5", 20)
    assert (paused.step, paused.steps, paused.message) == (1, 6, "CanaryPauseStep")
    assert paused.stable_hash != paused.canary_hash and paused.canary_hash is not None
    assert [(h.revision, h.version) for h in paused.history] == [("2", "5"), ("1", "4")]
    assert values["progressing"].canary_weight == 50
    healthy = values["healthy"]
    assert (healthy.serving_version, healthy.canary_weight, healthy.canary_hash) == (
        "5",
        None,
        None,
    )
    assert healthy.revision == "2"
    assert values["degraded"].message == "RolloutAborted: Rollout aborted update to revision 2"
    assert values["degraded"].canary_weight == 0
    # without traffic routing the weight is the current setWeight step's
    assert values["basic"].canary_weight == 20
    # a status.abort patched in, before the controller reacts, already reads as degraded
    client_api = kube.api_client()
    from kubernetes import client

    client.CustomObjectsApi(client_api).patch_namespaced_custom_object_status(
        "argoproj.io", "v1alpha1", "ml", "rollouts", "paused", {"status": {"abort": True}}
    )
    values, _, _ = poll(make_config(kube, [model("paused", "Rollout")]))
    assert values["paused"].state == "degraded"


def test_forbidden_namespace_leaves_the_others_intact(kube: KubeHandle) -> None:
    kube.put(m.deployment("churn"))
    kube.put(m.deployment("fraud", namespace="team-b"))
    kube.deny("list", "deployments", "team-b")
    config = make_config(
        kube, [model("churn", "Deployment"), model("fraud", "Deployment", namespace="team-b")]
    )
    values, errors, status = poll(config)
    assert status.status == "ok"
    assert values["churn"].state == "healthy" and "fraud" not in values
    assert errors["fraud"].startswith(
        'forbidden: cannot list deployments.apps in namespace "team-b"'
    )
    assert (
        'cannot list resource "deployments" in API group "apps" in the namespace "team-b"'
        in errors["fraud"]
    )


def test_missing_object_is_a_model_error(kube: KubeHandle) -> None:
    kube.put(m.deployment("churn"))
    values, errors, status = poll(
        make_config(kube, [model("churn", "Deployment"), model("gone", "Deployment")])
    )
    assert status.status == "ok" and "churn" in values
    assert errors == {"gone": 'Deployment "ml/gone" not found (context standin)'}


def test_server_errors_become_values_within_the_timeout(kube: KubeHandle) -> None:
    kube.put(m.deployment("churn"))
    kube.put(m.inference_service("fraud"))
    config = make_config(
        kube, [model("churn", "Deployment"), model("fraud", "InferenceService")], timeout="1s"
    )

    kube.fail_next(500, times=None)
    started = time.monotonic()
    values, errors, status = poll(config)
    assert time.monotonic() - started < 1.5
    assert status.status == "error" and values == {}
    assert "HTTP 500" in (status.error or "")
    kube.clear_faults()

    # one kind failing fails only its models
    kube.fail_next(500, times=None, path="/inferenceservices")
    values, errors, status = poll(config)
    assert status.status == "ok" and "churn" in values
    assert errors["fraud"].startswith("HTTP 500")
    kube.clear_faults()

    # a hung server: the poll ends at the timeout, not when the server answers
    kube.inject(Fault("slow", delay=4.0, times=None))
    started = time.monotonic()
    values, errors, status = poll(config)
    assert time.monotonic() - started < 2.0
    assert status.status == "error" and "timed out" in (status.error or "")
    kube.clear_faults()

    kube.inject(Fault("truncate", times=None))
    values, errors, status = poll(config)
    assert status.status == "error" and "malformed JSON" in (status.error or "")
    kube.clear_faults()

    kube.inject(Fault("reset", times=None))
    values, errors, status = poll(config)
    assert status.status == "error" and values == {}
    kube.clear_faults()
    values, errors, status = poll(config)
    assert status.status == "ok" and set(values) == {"churn", "fraud"}


def test_requests_per_poll_do_not_grow_with_the_fleet(kube: KubeHandle) -> None:
    """One LIST per kind per namespace: the same 5 requests for 10 and for 500 models."""

    def fleet(n: int) -> list[dict[str, Any]]:
        models = []
        for i in range(n):
            if i % 5 in (0, 1):
                models.append(model(f"d{i}", "Deployment"))
            elif i % 5 in (2, 3):
                models.append(model(f"i{i}", "InferenceService"))
            else:
                models.append(model(f"r{i}", "Rollout", namespace="team-b"))
        return models

    big = fleet(500)
    for spec in big:
        name, kind = spec["name"], spec["target"]["kind"]
        if kind == "Deployment":
            kube.put(m.deployment(name, replicas=1))
        elif kind == "InferenceService":
            kube.put(m.inference_service(name))
        else:
            kube.put(m.rollout(name, namespace="team-b"))
    counts = {}
    for n in (10, 500):
        config = make_config(kube, fleet(n))
        kube.clear_log()
        values, errors, status = poll(config)
        assert errors == {} and len(values) == n
        counts[n] = (kube.request_count(), status.requests)
    # ml: deployments, replicasets, inferenceservices; team-b: rollouts, replicasets
    assert counts == {10: (5, 5), 500: (5, 5)}


def test_multi_context_fleet(kube_pair: tuple[KubeHandle, KubeHandle]) -> None:
    us, eu = kube_pair
    us.put(m.deployment("churn", version="3"))
    eu.put(m.deployment("churn", version="4"))
    eu.put(m.rollout("fraud", state="paused", version="2", stable_version="1"))
    config = make_config(
        us,
        [
            model("churn-us", "Deployment", "churn"),
            model("churn-eu", "Deployment", "churn", context="prod-eu"),
            model("fraud-eu", "Rollout", "fraud", context="prod-eu"),
        ],
    )
    values, errors, status = poll(config)
    assert errors == {} and status.status == "ok"
    assert (values["churn-us"].context, values["churn-us"].serving_version) == ("prod-us", "3")
    assert (values["churn-eu"].context, values["churn-eu"].serving_version) == ("prod-eu", "4")
    assert values["fraud-eu"].state == "paused"
    assert us.request_count() == 2 and eu.request_count() == 3
    # one cluster down: its models get errors, the other cluster's still arrive
    eu.stop()
    values, errors, status = poll(config)
    assert status.status == "ok" and set(values) == {"churn-us"}
    assert set(errors) == {"churn-eu", "fraud-eu"}
    assert all("prod-eu" in e for e in errors.values())
    # --context (or [kubernetes] context) switches the default context
    # (the only cluster asked is down: that is a source error)
    values, errors, status = poll(
        make_config(us, [model("churn", "Deployment")], context="prod-eu")
    )
    assert values == {} and status.status == "error" and "prod-eu" in (status.error or "")


def test_discover_targets_by_model_label(kube: KubeHandle) -> None:
    kube.put(m.deployment("churn", model="churn-classifier"))
    kube.put(m.canary_deployment("churn", model="churn-classifier"))
    kube.put(m.inference_service("fraud-isvc", model="fraud-detector", namespace="team-b"))
    kube.put(m.rollout("ranker", model="ranker"))
    config = Config.model_validate(
        {
            "kubernetes": {"kubeconfig": str(kube.kubeconfig)},
            "models": [
                {"name": "churn", "registered_model": "churn-classifier"},
                {"name": "fraud-detector"},
                {"name": "ranker"},
                {"name": "orphan"},
                model("fixed", "Deployment", "churn"),
            ],
        }
    )
    source = KubernetesSource(config)
    kube.clear_log()
    found = {mc.name: mc.target for mc in source.discover_targets(list(config.models))}
    assert kube.request_count() == 3
    assert all(r.query.get("labelSelector") == "mltui.io/model" for r in kube.requests)
    churn, fraud, ranker = found["churn"], found["fraud-detector"], found["ranker"]
    assert churn is not None and (churn.kind, churn.name, churn.namespace, churn.canary) == (
        "Deployment",
        "churn",
        "ml",
        "churn-canary",
    )
    assert fraud is not None and (fraud.kind, fraud.name, fraud.namespace) == (
        "InferenceService",
        "fraud-isvc",
        "team-b",
    )
    assert ranker is not None and (ranker.kind, ranker.name) == ("Rollout", "ranker")
    assert found["orphan"] is None and found["fixed"] is not None
    discovered = [
        mc for mc in source.discover_targets(list(config.models)) if mc.target is not None
    ]
    values, errors = source.fetch(discovered)
    source.close()
    assert errors == {} and values["churn"].canary_weight == 25


def test_kubeconfig_token_is_a_registered_secret(kube: KubeHandle) -> None:
    kube.put(m.deployment("churn"))
    values, _, _ = poll(make_config(kube, [model("churn", "Deployment")]))
    assert "churn" in values
    assert secrets.redact(f"token {DEFAULT_TOKEN} leaked") == "token *** leaked"


def test_missing_kubeconfig_is_a_source_error(tmp_path: Any) -> None:
    config = Config.model_validate(
        {
            "kubernetes": {"kubeconfig": str(tmp_path / "nope")},
            "models": [model("churn", "Deployment")],
        }
    )
    values, errors, status = poll(config)
    assert status.status == "error" and "cannot read kubeconfig" in (status.error or "")


def test_fleet_collect_carries_rollouts_and_errors(kube: KubeHandle) -> None:
    from mltui.collectors.collect import FleetCollector

    kube.put(m.deployment("churn", version="3"))
    kube.put(m.deployment("fraud", namespace="team-b"))
    kube.deny("list", "deployments", "team-b")
    config = make_config(
        kube, [model("churn", "Deployment"), model("fraud", "Deployment", namespace="team-b")]
    )
    collector = FleetCollector(config)
    try:
        snapshot = collector.collect()
    finally:
        collector.close()
    assert snapshot.source("kubernetes").status == "ok"
    assert snapshot.source("kubernetes").requests == 4  # (deployments + replicasets) x 2 namespaces
    churn, fraud = snapshot.model("churn"), snapshot.model("fraud")
    assert churn is not None and churn.rollout is not None and churn.serving_version == "3"
    assert fraud is not None and fraud.rollout is None and "forbidden" in fraud.errors["kubernetes"]


# ------------------------------------------------ work per poll is linear in the fleet


class _CountedMeta(dict[str, Any]):
    """An object's ``metadata`` that counts which keys the collector reads."""

    reads: Counter[str] = Counter()

    def get(self, key: str, default: Any = None) -> Any:
        _CountedMeta.reads[key] += 1
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        _CountedMeta.reads[key] += 1
        return super().__getitem__(key)


class _CountingSource(KubernetesSource):
    """The real source over the real stand-in; listed objects' metadata count their reads."""

    def list_objects(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        items = super().list_objects(*args, **kwargs)
        for item in items:
            item["metadata"] = _CountedMeta(item["metadata"])
        return items


def _name(i: int) -> str:
    return f"d{i:03d}"


def test_each_listed_object_is_read_a_bounded_number_of_times_at_10_and_500_models(
    kube: KubeHandle,
) -> None:
    """Objects are indexed once per LIST: per-model steps never scan the whole namespace.

    Before, every Deployment scanned every ReplicaSet for its owner and every model
    rebuilt the name index: O(models x objects) reads, ~275,000 here at 500 models.
    """
    n_max = 500
    for i in range(n_max):
        kube.put(m.deployment(_name(i), version="1"))
        if i % 7 == 0:  # a second revision: history ("2", "1")
            kube.put(m.deployment(_name(i), version="2"))
        if i % 10 == 0:
            kube.put(m.canary_deployment(_name(i), version="9", replicas=1))
    listed_rses = [rs["metadata"]["name"] for rs in kube.objects("ReplicaSet", "ml")]
    listed = len(kube.objects("Deployment", "ml")) + len(listed_rses)
    assert len(listed_rses) == n_max + n_max // 7 + 1 + n_max // 10

    for n in (10, n_max):
        models = []
        for i in range(n):
            target: dict[str, Any] = {"canary": f"{_name(i)}-canary"} if i % 10 == 0 else {}
            models.append(model(_name(i), "Deployment", **target))
        config = make_config(kube, models)
        source = _CountingSource(config)
        try:
            _CountedMeta.reads.clear()
            values, errors = source.fetch(config.models)
        finally:
            source.close()
        assert errors == {} and len(values) == n

        # Every ReplicaSet's owners are read once per poll, whatever the fleet size.
        assert _CountedMeta.reads["ownerReferences"] == len(listed_rses)
        # Names: the index reads each listed object once; each model its own few.
        assert _CountedMeta.reads["name"] <= listed + 6 * n, _CountedMeta.reads

        for i in range(n):
            name = _name(i)
            rollout = values[name]
            versions = tuple(r.version for r in rollout.history)
            assert versions == (("2", "1") if i % 7 == 0 else ("1",)), name
            # Its own ReplicaSets only: "d010-<hash>", never "d010-canary-<hash>" or "d100-…".
            own = {rs for rs in listed_rses if rs.rsplit("-", 1)[0] == name}
            assert {r.name for r in rollout.history} == own, name
            assert rollout.stable_hash == rollout.history[0].name.rsplit("-", 1)[1]
            if i % 10 == 0:
                (canary_rs,) = [rs for rs in listed_rses if rs.startswith(f"{name}-canary-")]
                assert (rollout.canary_version, rollout.canary_weight) == ("9", 25)
                assert rollout.canary_hash == canary_rs.rsplit("-", 1)[1]
            else:
                assert rollout.canary_hash is None and rollout.canary_weight is None


def test_discovery_reads_each_labelled_object_a_bounded_number_of_times(
    kube: KubeHandle,
) -> None:
    """Models are matched to labelled objects through an index, not a scan per model."""
    n = 300
    for i in range(n):
        kube.put(m.deployment(_name(i), model=f"model-{i}"))
        if i % 10 == 0:
            kube.put(m.canary_deployment(_name(i), model=f"model-{i}"))
    objects = n + n // 10
    config = Config.model_validate(
        {
            "kubernetes": {"kubeconfig": str(kube.kubeconfig)},
            "models": [{"name": f"model-{i}"} for i in range(n)] + [{"name": "orphan"}],
        }
    )
    source = _CountingSource(config)
    try:
        _CountedMeta.reads.clear()
        found = {mc.name: mc.target for mc in source.discover_targets(list(config.models))}
    finally:
        source.close()
    # The index reads each object's labels once; a model reads its own hits' labels.
    assert _CountedMeta.reads["labels"] <= objects + 2 * (n + n // 10), _CountedMeta.reads
    assert found["orphan"] is None
    for i in range(n):
        target = found[f"model-{i}"]
        assert target is not None
        assert (target.kind, target.name, target.namespace) == ("Deployment", _name(i), "ml")
        assert target.canary == (f"{_name(i)}-canary" if i % 10 == 0 else None)


def test_replicaset_index_groups_by_owner_and_skips_malformed_references() -> None:
    def rs(name: str, refs: Any) -> dict[str, Any]:
        return {"metadata": {"name": name, "ownerReferences": refs}}

    owner = {"kind": "Deployment", "name": "churn"}
    listed = [
        rs("churn-a", [owner]),
        rs("churn-b", [owner, dict(owner)]),  # the same owner named twice: listed once
        rs("shared", [owner, {"kind": "Rollout", "name": "churn"}]),
        rs("other", [{"kind": "Deployment", "name": "fraud"}]),
        rs("bad-1", "Deployment/churn"),
        rs("bad-2", [None, "churn", {"kind": ["Deployment"], "name": "churn"}]),
        rs("bad-3", {"kind": "Deployment", "name": "churn"}),
        {"metadata": None},
        {},
    ]
    index = ReplicaSetIndex(listed)
    names = [r["metadata"]["name"] for r in index.owned_by("Deployment", "churn")]
    assert names == ["churn-a", "churn-b", "shared"]  # LIST order
    assert [r["metadata"]["name"] for r in index.owned_by("Rollout", "churn")] == ["shared"]
    assert [r["metadata"]["name"] for r in index.owned_by("Deployment", "fraud")] == ["other"]
    assert index.owned_by("Deployment", "nope") == []
