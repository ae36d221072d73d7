"""Real-shaped Kubernetes manifests for the API stand-in, as builder functions.

Shapes follow the upstream objects: apps/v1 Deployment (a KServe-style model
server container with probes and resources), batch/v1 CronJob with jobTemplate,
serving.kserve.io/v1beta1 InferenceService (predictor.model.storageUri,
canaryTrafficPercent; status.components.predictor.{latestReadyRevision,
latestRolledoutRevision, previousRolledoutRevision, traffic[]}, the Knative-style
conditions), argoproj.io/v1alpha1 Rollout (canary steps setWeight/pause; status
currentPodHash, stableRS, currentStepIndex, canary.weights, pauseConditions,
phase/message, abort) and the ReplicaSets Argo owns.

Every object carries ``mltui.io/model=<registered model>`` so discovery finds it.
Versions can be put where DESIGN.md §4 reads them from, via ``version_in``:
"annotation" (pod template annotation ``mltui.io/model-version``), "label"
(``app.kubernetes.io/version``), "env" (``MODEL_VERSION``), "image" (the tag).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import Any

from tests.support.kube_controller import pod_template_hash

MODEL_LABEL = "mltui.io/model"
TRACK_LABEL = "mltui.io/track"
VERSION_LABEL = "app.kubernetes.io/version"
VERSION_ANNOTATION = "mltui.io/model-version"
ALL_VERSION_PLACES = ("annotation", "label", "env", "image")
T0 = "2026-11-29T10:00:00Z"
"""Timestamp used in conditions and pause conditions (fixed, so objects compare)."""


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def pod_template(
    app: str,
    *,
    model: str,
    version: str,
    image: str = "ghcr.io/acme/model-server",
    tag: str | None = None,
    version_in: Iterable[str] = ("label", "env", "image"),
    track: str = "stable",
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A pod template running one model server container."""
    places = set(version_in)
    labels = {"app": app, MODEL_LABEL: model, TRACK_LABEL: track}
    if "label" in places:
        labels[VERSION_LABEL] = version
    metadata: dict[str, Any] = {"labels": labels}
    if "annotation" in places:
        metadata["annotations"] = {VERSION_ANNOTATION: version}
    variables = [{"name": "MODEL_NAME", "value": model}]
    if "env" in places:
        variables.append({"name": "MODEL_VERSION", "value": version})
    variables += [{"name": k, "value": v} for k, v in (env or {}).items()]
    if tag is None:
        tag = f"v{version}" if "image" in places else "runtime-1.14"
    return {
        "metadata": metadata,
        "spec": {
            "containers": [
                {
                    "name": "model",
                    "image": f"{image}:{tag}",
                    "imagePullPolicy": "IfNotPresent",
                    "args": ["--model_name", model, "--http_port", "8080"],
                    "env": variables,
                    "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                    "readinessProbe": {
                        "httpGet": {"path": "/v2/health/ready", "port": "http"},
                        "periodSeconds": 5,
                    },
                    "livenessProbe": {
                        "httpGet": {"path": "/v2/health/live", "port": "http"},
                        "periodSeconds": 10,
                    },
                    "resources": {
                        "requests": {"cpu": "250m", "memory": "512Mi"},
                        "limits": {"cpu": "1", "memory": "1Gi"},
                    },
                }
            ],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
        },
    }


def deployment(
    name: str,
    *,
    namespace: str = "ml",
    model: str | None = None,
    version: str = "1",
    replicas: int = 3,
    track: str = "stable",
    image: str = "ghcr.io/acme/model-server",
    tag: str | None = None,
    version_in: Iterable[str] = ("label", "env", "image"),
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    paused: bool = False,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An apps/v1 Deployment serving ``model`` at ``version`` (status comes from the controller)."""
    model = model or name
    places = set(version_in)
    meta_labels = {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/part-of": "ml-platform",
        MODEL_LABEL: model,
        TRACK_LABEL: track,
    }
    if "label" in places:
        meta_labels[VERSION_LABEL] = version
    meta_labels.update(labels or {})
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": meta_labels},
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
            "selector": {"matchLabels": {"app": name, TRACK_LABEL: track}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
            "template": pod_template(
                name,
                model=model,
                version=version,
                image=image,
                tag=tag,
                version_in=places,
                track=track,
                env=env,
            ),
        },
    }
    if annotations:
        obj["metadata"]["annotations"] = dict(annotations)
    if paused:
        obj["spec"]["paused"] = True
    return obj


def canary_deployment(stable: str, **kwargs: Any) -> dict[str, Any]:
    """The canary Deployment ``<stable>-canary`` (track=canary, 1 replica by default)."""
    kwargs.setdefault("replicas", 1)
    kwargs.setdefault("model", stable)
    return deployment(f"{stable}-canary", track="canary", **kwargs)


def cronjob(
    name: str,
    *,
    namespace: str = "ml",
    model: str,
    schedule: str = "0 3 * * *",
    image: str = "ghcr.io/acme/train:2026.11",
) -> dict[str, Any]:
    """A batch/v1 CronJob that retrains ``model`` (mltui's ``retrain = { cronjob = … }``)."""
    labels = {"app.kubernetes.io/name": name, MODEL_LABEL: model}
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "schedule": schedule,
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "suspend": False,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 1,
            "jobTemplate": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "backoffLimit": 2,
                    "activeDeadlineSeconds": 7200,
                    "ttlSecondsAfterFinished": 86400,
                    "template": {
                        "metadata": {"labels": dict(labels)},
                        "spec": {
                            "restartPolicy": "Never",
                            "serviceAccountName": "trainer",
                            "containers": [
                                {
                                    "name": "train",
                                    "image": image,
                                    "command": ["python", "-m", "train"],
                                    "args": ["--model", model, "--register"],
                                    "env": [
                                        {
                                            "name": "MLFLOW_TRACKING_URI",
                                            "value": "http://mlflow.ml:5000",
                                        },
                                        {"name": "REGISTERED_MODEL", "value": model},
                                    ],
                                    "resources": {"requests": {"cpu": "1", "memory": "2Gi"}},
                                }
                            ],
                        },
                    },
                },
            },
        },
        "status": {},
    }


def _kserve_conditions(
    ready: bool | None, reason: str | None, message: str | None
) -> list[dict[str, Any]]:
    value = {True: "True", False: "False", None: "Unknown"}[ready]
    out = []
    for type_ in (
        "IngressReady",
        "LatestDeploymentReady",
        "PredictorConfigurationReady",
        "PredictorReady",
        "PredictorRouteReady",
        "Ready",
        "RoutesReady",
    ):
        cond: dict[str, Any] = {"type": type_, "status": "True", "lastTransitionTime": T0}
        if type_ in ("Ready", "PredictorReady", "LatestDeploymentReady") and value != "True":
            cond["status"] = value
            cond["reason"] = reason or "RevisionMissing"
            cond["message"] = message or "Configuration is waiting for a Revision to become ready."
            if type_ == "LatestDeploymentReady":
                cond["severity"] = "Info"
        out.append(cond)
    return out


def inference_service(
    name: str,
    *,
    namespace: str = "ml",
    model: str | None = None,
    version: str = "1",
    storage_uri: str | None = None,
    model_format: str = "sklearn",
    canary_traffic_percent: int | None = None,
    revision: int = 1,
    stable_version: str | None = None,
    ready: bool | None = True,
    reason: str | None = None,
    message: str | None = None,
    observed_generation: int | None = 1,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A serverless KServe InferenceService whose latest revision serves ``version``.

    With ``canary_traffic_percent`` (and ``revision`` > 1) the status splits traffic
    between the latest revision (the canary) and the previously rolled-out one, as
    KServe reports it; ``stable_version`` then goes into the ``mltui.io/model-version``
    annotation (the version of the rolled-out revision).
    """
    model = model or name
    storage_uri = storage_uri or f"s3://models/{model}/v{version}"
    latest = f"{name}-predictor-{revision:05d}"
    previous = f"{name}-predictor-{revision - 1:05d}" if revision > 1 else None
    host = f"{name}-{namespace}.example.com"
    split = canary_traffic_percent is not None and previous is not None
    annotations = dict(annotations or {})
    annotations.setdefault("serving.kserve.io/deploymentMode", "Serverless")
    if stable_version is not None:
        annotations[VERSION_ANNOTATION] = stable_version
    predictor: dict[str, Any] = {
        "minReplicas": 1,
        "maxReplicas": 3,
        "model": {
            "modelFormat": {"name": model_format},
            "protocolVersion": "v2",
            "storageUri": storage_uri,
            "resources": {
                "requests": {"cpu": "250m", "memory": "512Mi"},
                "limits": {"cpu": "1", "memory": "1Gi"},
            },
        },
    }
    if canary_traffic_percent is not None:
        predictor["canaryTrafficPercent"] = canary_traffic_percent
    if split:
        traffic = [
            {
                "latestRevision": True,
                "percent": canary_traffic_percent,
                "revisionName": latest,
                "tag": "latest",
                "url": f"http://latest-{name}-predictor-{namespace}.example.com",
            },
            {
                "latestRevision": False,
                "percent": 100 - (canary_traffic_percent or 0),
                "revisionName": previous,
                "tag": "prev",
                "url": f"http://prev-{name}-predictor-{namespace}.example.com",
            },
        ]
        rolled_out = previous
    else:
        traffic = [{"latestRevision": True, "percent": 100, "revisionName": latest}]
        rolled_out = latest
    component: dict[str, Any] = {
        "address": {"url": f"http://{name}-predictor.{namespace}.svc.cluster.local"},
        "latestCreatedRevision": latest,
        "latestReadyRevision": latest if ready else (previous or latest),
        "latestRolledoutRevision": rolled_out,
        "traffic": traffic,
        "url": f"http://{name}-predictor-{namespace}.example.com",
    }
    if previous is not None:
        component["previousRolledoutRevision"] = previous
    status: dict[str, Any] = {
        "address": {"url": f"http://{name}.{namespace}.svc.cluster.local"},
        "components": {"predictor": component},
        "conditions": _kserve_conditions(ready, reason, message),
        "deploymentMode": "Serverless",
        "modelStatus": {
            "copies": {"failedCopies": 0 if ready is not False else 1, "totalCopies": 1},
            "states": {"activeModelState": "Loaded", "targetModelState": "Loaded"},
            "transitionStatus": "UpToDate" if ready else "InProgress",
        },
        "url": f"http://{host}",
    }
    if observed_generation is not None:
        status["observedGeneration"] = observed_generation
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {MODEL_LABEL: model, "app.kubernetes.io/part-of": "ml-platform"},
            "annotations": annotations,
        },
        "spec": {"predictor": predictor},
        "status": status,
    }


DEFAULT_STEPS: tuple[dict[str, Any], ...] = (
    {"setWeight": 20},
    {"pause": {}},
    {"setWeight": 50},
    {"pause": {"duration": "10m"}},
    {"setWeight": 80},
    {"pause": {"duration": "10m"}},
)


def rollout(
    name: str,
    *,
    namespace: str = "ml",
    model: str | None = None,
    version: str = "2",
    stable_version: str | None = None,
    state: str = "healthy",
    replicas: int = 5,
    steps: Sequence[dict[str, Any]] = DEFAULT_STEPS,
    step_index: int | None = None,
    traffic_routing: bool = True,
    revision: int = 2,
    version_in: Iterable[str] = ("label", "env", "image"),
    spec_paused: bool = False,
) -> dict[str, Any]:
    """An Argo Rollout (canary strategy) whose spec template serves ``version``.

    ``state``: ``healthy`` (fully promoted: stableRS == currentPodHash),
    ``paused`` (canary at a pause step, CanaryPauseStep), ``progressing`` (canary at
    a setWeight step), ``degraded`` (aborted: status.abort, RolloutAborted).
    ``stable_version`` is what the stable ReplicaSet serves while a canary is in flight.
    """
    model = model or name
    template = pod_template(
        name, model=model, version=version, version_in=version_in, track="stable"
    )
    current_hash = pod_template_hash(template)
    stable_template = pod_template(
        name, model=model, version=stable_version or version, version_in=version_in
    )
    stable_hash = current_hash if state == "healthy" else pod_template_hash(stable_template)
    steps = [copy.deepcopy(s) for s in steps]
    canary: dict[str, Any] = {
        "steps": steps,
        "canaryService": f"{name}-canary",
        "stableService": f"{name}-stable",
    }
    if traffic_routing:
        canary["trafficRouting"] = {"nginx": {"stableIngress": f"{name}-ingress"}}
    if step_index is None:
        step_index = {"healthy": len(steps), "paused": 1, "progressing": 2, "degraded": 0}[state]
    weight = _set_weight(steps, step_index)

    status: dict[str, Any] = {
        "observedGeneration": "1",
        "currentPodHash": current_hash,
        "stableRS": stable_hash,
        "currentStepIndex": step_index,
        "currentStepHash": pod_template_hash({"steps": steps}),
        "replicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
        "HPAReplicas": replicas,
        "selector": f"app={name}",
        "conditions": [
            {
                "type": "Available",
                "status": "True",
                "reason": "AvailableReason",
                "message": "Rollout has minimum availability",
                "lastTransitionTime": T0,
                "lastUpdateTime": T0,
            },
        ],
    }
    if state == "healthy":
        status.update(updatedReplicas=replicas, phase="Healthy", message="")
        status["conditions"] += [
            {
                "type": "Completed",
                "status": "True",
                "reason": "RolloutCompleted",
                "message": f"Rollout completed update to revision {revision} ({current_hash}): "
                "Completed all steps",
                "lastTransitionTime": T0,
                "lastUpdateTime": T0,
            },
            {
                "type": "Healthy",
                "status": "True",
                "reason": "RolloutHealthy",
                "message": "Rollout is healthy",
                "lastTransitionTime": T0,
                "lastUpdateTime": T0,
            },
            {
                "type": "Progressing",
                "status": "True",
                "reason": "NewReplicaSetAvailable",
                "message": "Rollout is healthy",
                "lastTransitionTime": T0,
                "lastUpdateTime": T0,
            },
        ]
    elif state == "paused":
        status.update(
            updatedReplicas=1,
            phase="Paused",
            message="CanaryPauseStep",
            controllerPause=True,
            pauseConditions=[{"reason": "CanaryPauseStep", "startTime": T0}],
        )
        status["conditions"] += [
            {
                "type": "Paused",
                "status": "True",
                "reason": "RolloutPaused",
                "message": "Rollout is paused",
                "lastTransitionTime": T0,
                "lastUpdateTime": T0,
            },
            {
                "type": "Progressing",
                "status": "Unknown",
                "reason": "RolloutPaused",
                "message": "Rollout is paused",
                "lastTransitionTime": T0,
                "lastUpdateTime": T0,
            },
        ]
    elif state == "progressing":
        status.update(
            updatedReplicas=max(1, replicas // 2),
            phase="Progressing",
            message="more replicas need to be updated",
        )
        status["conditions"] += [
            {
                "type": "Progressing",
                "status": "True",
                "reason": "ReplicaSetUpdated",
                "message": f'ReplicaSet "{name}-{current_hash}" is progressing.',
                "lastTransitionTime": T0,
                "lastUpdateTime": T0,
            },
        ]
    elif state == "degraded":
        weight = 0
        status.update(
            updatedReplicas=0,
            phase="Degraded",
            abort=True,
            abortedAt=T0,
            message=f"RolloutAborted: Rollout aborted update to revision {revision}",
        )
        status["conditions"] += [
            {
                "type": "Progressing",
                "status": "False",
                "reason": "RolloutAborted",
                "message": f"Rollout aborted update to revision {revision}",
                "lastTransitionTime": T0,
                "lastUpdateTime": T0,
            },
        ]
    else:
        raise ValueError(f"unknown rollout state {state!r}")
    if traffic_routing:
        canary_weight = 0 if state == "healthy" else weight
        status["canary"] = {
            "weights": {
                "canary": {
                    "podTemplateHash": current_hash,
                    "weight": canary_weight,
                    "serviceName": f"{name}-canary",
                },
                "stable": {
                    "podTemplateHash": stable_hash,
                    "weight": 100 - canary_weight,
                    "serviceName": f"{name}-stable",
                },
            }
        }
    else:
        status["canary"] = {}
    spec: dict[str, Any] = {
        "replicas": replicas,
        "revisionHistoryLimit": 3,
        "selector": {"matchLabels": {"app": name}},
        "strategy": {"canary": canary},
        "template": template,
    }
    if spec_paused:
        spec["paused"] = True
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "generation": 1,
            "labels": {MODEL_LABEL: model, "app.kubernetes.io/name": name},
            "annotations": {"rollout.argoproj.io/revision": str(revision)},
        },
        "spec": spec,
        "status": status,
    }


def _set_weight(steps: Sequence[dict[str, Any]], index: int) -> int:
    """Argo's current setWeight: the last setWeight at or before ``index``; 100 past the end."""
    if index >= len(steps):
        return 100
    for step in reversed(steps[: index + 1]):
        if "setWeight" in step:
            return int(step["setWeight"])
    return 0


def argo_replicaset(
    rollout_obj: dict[str, Any],
    *,
    version: str,
    revision: int,
    replicas: int,
    version_in: Iterable[str] = ("label", "env", "image"),
) -> dict[str, Any]:
    """A ReplicaSet owned by an Argo Rollout, serving ``version`` (history entries)."""
    name = rollout_obj["metadata"]["name"]
    ns = rollout_obj["metadata"]["namespace"]
    model = rollout_obj["metadata"]["labels"][MODEL_LABEL]
    template = pod_template(name, model=model, version=version, version_in=version_in)
    h = pod_template_hash(template)
    template["metadata"]["labels"]["rollouts-pod-template-hash"] = h
    owner = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "name": name,
        "uid": rollout_obj["metadata"].get("uid", f"uid-{name}"),
        "controller": True,
        "blockOwnerDeletion": True,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{name}-{h}",
            "namespace": ns,
            "labels": dict(template["metadata"]["labels"]),
            "annotations": {
                "rollout.argoproj.io/revision": str(revision),
                "rollout.argoproj.io/desired-replicas": str(rollout_obj["spec"]["replicas"]),
            },
            "ownerReferences": [owner],
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name, "rollouts-pod-template-hash": h}},
            "template": template,
        },
        "status": {
            "replicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "fullyLabeledReplicas": replicas,
            "observedGeneration": 1,
        },
    }
