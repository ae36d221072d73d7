"""The Kubernetes collector: rollout state of every model's cluster target.

Uses the official ``kubernetes`` client (sync ``ApiClient``, one per kube context,
imported lazily) and reads objects as plain JSON (``_preload_content=False``), so
objects with missing optional fields never fail a strict model parse and 500 models
cost no pydantic work. Requests are bounded:

- **one LIST per kind per namespace** (per context): Deployments, ReplicaSets (for
  revision history and stable versions), InferenceServices, Rollouts — only the
  kinds and namespaces the targets use — never one GET per model; the LISTs run
  concurrently across contexts and namespaces;
- every call has ``_request_timeout`` (``[kubernetes] timeout``, default 5 s); the
  client retries a dropped connection once and never sleeps on Retry-After; the
  whole poll waits at most the timeout for its LISTs;
- each LIST is indexed once per poll (objects by name, ReplicaSets by owner), so a
  model costs a few dict lookups and its own objects: a poll is linear in the fleet.

A failed LIST (403, 500, timeout…) becomes an error on the models it would have
served — a 403 names the verb, the resource and the namespace — and the others
still arrive. The rules that turn objects into states live in ``kube_rollout.py``.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mltui import secrets
from mltui.collectors.base import Source, SourceError
from mltui.collectors.kube_rollout import (
    ReplicaSetIndex,
    argo_rollout,
    deployment_rollout,
    inference_service_rollout,
)
from mltui.config import Config, KubernetesConfig, ModelConfig, Target
from mltui.fleet import Rollout
from mltui.secrets import error_text

IMPORT_ALLOWANCE_S = 5.0
"""Extra deadline for the poll that first imports ``kubernetes``."""

MODEL_LABEL = "mltui.io/model"
TRACK_LABEL = "mltui.io/track"


@dataclass(frozen=True)
class Kind:
    """A listable kind: its API group, version and plural."""

    name: str
    group: str
    version: str
    plural: str

    @property
    def resource(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


KINDS: dict[str, Kind] = {
    "Deployment": Kind("Deployment", "apps", "v1", "deployments"),
    "ReplicaSet": Kind("ReplicaSet", "apps", "v1", "replicasets"),
    "InferenceService": Kind(
        "InferenceService", "serving.kserve.io", "v1beta1", "inferenceservices"
    ),
    "Rollout": Kind("Rollout", "argoproj.io", "v1alpha1", "rollouts"),
}

# Which kinds a target kind needs listed (ReplicaSets carry history and stable versions).
NEEDS = {
    "Deployment": ("Deployment", "ReplicaSet"),
    "Rollout": ("Rollout", "ReplicaSet"),
    "InferenceService": ("InferenceService",),
}

# Discovery prefers the most specific kind when one model has several objects.
DISCOVERY_ORDER = ("InferenceService", "Rollout", "Deployment")

ListKey = tuple[str, str, str]
"""(context, kind, namespace)"""


@dataclass(frozen=True)
class Placement:
    """Where a model's target lives, resolved against the kubeconfig."""

    context: str
    namespace: str
    kind: str
    name: str
    canary: str | None


class ListError(Exception):
    """A LIST that failed, phrased for the user."""


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    """An object's metadata, or {} when it is missing or not a mapping."""
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


class _Indexed:
    """Lookups into one poll's LISTs, each index built once, on first use.

    A poll answers every model from the same few LISTs; rebuilding a name index (or
    scanning every ReplicaSet) per model made a 1,000-model poll quadratic. Here each
    LIST is indexed once, so every per-model step is a dict lookup plus the model's
    own objects.
    """

    def __init__(self, lists: dict[ListKey, list[dict[str, Any]] | ListError]) -> None:
        self._lists = lists
        self._by_name: dict[ListKey, dict[str, dict[str, Any]]] = {}
        self._owners: dict[ListKey, ReplicaSetIndex | None] = {}

    def by_name(self, key: ListKey) -> dict[str, dict[str, Any]]:
        """The objects of one LIST by name (empty if that LIST failed or was not made)."""
        if key not in self._by_name:
            objects = self._lists.get(key)
            self._by_name[key] = {
                str(_meta(o).get("name")): o for o in (objects if isinstance(objects, list) else [])
            }
        return self._by_name[key]

    def replicasets(self, key: ListKey) -> ReplicaSetIndex | None:
        """The ReplicaSets of one LIST grouped by owner; None if that LIST failed."""
        if key not in self._owners:
            objects = self._lists.get(key)
            self._owners[key] = ReplicaSetIndex(objects) if isinstance(objects, list) else None
        return self._owners[key]


class KubernetesSource(Source[Rollout]):
    """Rollout state for Deployment, InferenceService and Argo Rollout targets."""

    name = "kubernetes"

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.kube: KubernetesConfig = config.kubernetes or KubernetesConfig()
        self._clients: dict[str, Any] = {}
        self._contexts: dict[str, dict[str, Any]] | None = None
        self._current: str | None = None
        self._client_lock = threading.Lock()

    @property
    def timeout(self) -> float:
        return float(self.kube.timeout)

    @property
    def deadline(self) -> float:
        # The first poll also imports the kubernetes client (a second or more on a
        # busy machine): without this, a short timeout reports a healthy cluster as
        # timed out on the first poll of `--check`.
        extra = IMPORT_ALLOWANCE_S if "kubernetes.client" not in sys.modules else 0.0
        return self.timeout + 1.0 + extra

    # ------------------------------------------------------------ kubeconfig

    @property
    def kubeconfig_path(self) -> str:
        return (
            self.kube.kubeconfig
            or os.environ.get("KUBECONFIG")
            or os.path.expanduser("~/.kube/config")
        )

    def _load_contexts(self) -> dict[str, dict[str, Any]]:
        if self._contexts is None:
            from kubernetes import config as kube_config

            try:
                contexts, active = kube_config.list_kube_config_contexts(
                    config_file=self.kubeconfig_path
                )
            except Exception as exc:  # missing file, bad YAML: say which file
                raise SourceError(
                    f"cannot read kubeconfig {self.kubeconfig_path}: {error_text(exc)}"
                ) from None
            self._contexts = {c["name"]: c.get("context") or {} for c in contexts or []}
            self._current = (active or {}).get("name")
        return self._contexts

    def default_context(self) -> str:
        contexts = self._load_contexts()
        name = self.kube.context or self._current
        if not name:
            raise SourceError(
                f"no current context in {self.kubeconfig_path}; set [kubernetes] context"
            )
        if name not in contexts:
            raise SourceError(f'context "{name}" not found in {self.kubeconfig_path}')
        return name

    def placement(self, model: ModelConfig) -> Placement:
        """Resolve a model's target to (context, namespace, kind, name); SourceError if it can't be."""
        target = model.target
        assert target is not None and target.kind != "alias"
        contexts = self._load_contexts()
        context = target.context or self.default_context()
        if context not in contexts:
            raise SourceError(f'context "{context}" not found in {self.kubeconfig_path}')
        namespace = (
            target.namespace
            or self.kube.namespace
            or contexts[context].get("namespace")
            or "default"
        )
        return Placement(context, namespace, target.kind, target.name or model.name, target.canary)

    def client(self, context: str) -> Any:
        """The ApiClient of ``context``, built once: bounded retries, token registered as secret."""
        with self._client_lock:
            if context in self._clients:
                return self._clients[context]
            import urllib3
            from kubernetes import client as kube_client
            from kubernetes import config as kube_config

            configuration = kube_client.Configuration()
            # One retry for a dropped keep-alive connection; never for a status
            # code, and never a sleep on Retry-After (a poll must end in time).
            configuration.retries = urllib3.Retry(
                total=1,
                connect=1,
                read=1,
                status=0,
                other=0,
                redirect=0,
                respect_retry_after_header=False,
                raise_on_status=False,
            )
            api = kube_config.new_client_from_config(
                config_file=self.kubeconfig_path,
                context=context,
                persist_config=False,
                client_configuration=configuration,
            )
            for value in (configuration.api_key or {}).values():
                secrets.register(str(value))
                secrets.register(str(value).removeprefix("Bearer ").strip())
            secrets.register(configuration.password)
            self._clients[context] = api
            return api

    # ------------------------------------------------------------------ LIST

    def list_objects(
        self, context: str, kind: str, namespace: str | None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        """One LIST of ``kind`` in ``namespace`` (None: all namespaces), as JSON dicts."""
        from kubernetes import client as kube_client

        spec = KINDS[kind]
        api = self.client(context)
        opts: dict[str, Any] = {"_request_timeout": self.timeout, "_preload_content": False}
        if label_selector:
            opts["label_selector"] = label_selector
        self.count_request()
        response: Any  # a raw urllib3 response (_preload_content=False)
        try:
            if kind == "Deployment":
                apps = kube_client.AppsV1Api(api)
                response = (
                    apps.list_namespaced_deployment(namespace, **opts)
                    if namespace
                    else apps.list_deployment_for_all_namespaces(**opts)
                )
            elif kind == "ReplicaSet":
                apps = kube_client.AppsV1Api(api)
                response = (
                    apps.list_namespaced_replica_set(namespace, **opts)
                    if namespace
                    else apps.list_replica_set_for_all_namespaces(**opts)
                )
            else:
                custom = kube_client.CustomObjectsApi(api)
                response = (
                    custom.list_namespaced_custom_object(
                        spec.group, spec.version, namespace, spec.plural, **opts
                    )
                    if namespace
                    else custom.list_cluster_custom_object(
                        spec.group, spec.version, spec.plural, **opts
                    )
                )
            try:
                data = json.loads(response.data)
            finally:
                response.release_conn()
        except kube_client.ApiException as exc:
            raise ListError(self._describe(exc, context, spec, namespace)) from None
        except ValueError as exc:
            raise ListError(
                f"{context}: malformed JSON listing {spec.resource}: {error_text(exc)}"
            ) from None
        except Exception as exc:  # connection refused, timeouts, TLS…
            raise ListError(f"{context}: cannot list {spec.resource}: {error_text(exc)}") from None
        items = data.get("items") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise ListError(f"{context}: unexpected answer listing {spec.resource}")
        return [i for i in items if isinstance(i, dict)]

    @staticmethod
    def _describe(exc: Any, context: str, spec: Kind, namespace: str | None) -> str:
        where = f'in namespace "{namespace}"' if namespace else "across all namespaces"
        server = ""
        try:
            server = json.loads(exc.body or "{}").get("message") or ""
        except (ValueError, AttributeError):
            server = ""
        status = exc.status
        if status == 403:
            text = f"forbidden: cannot list {spec.resource} {where} (context {context})"
        elif status == 401:
            text = f"unauthorized: the credentials of context {context} were refused"
        elif status == 404:
            text = f"{spec.resource} not served by context {context} (is the CRD installed?)"
        else:
            text = f"HTTP {status} {exc.reason or ''} listing {spec.resource} {where} (context {context})".replace(
                "  ", " "
            )
        if server and server not in text:
            text += f": {server}"
        return secrets.redact(text)

    def _list_all(self, keys: Sequence[ListKey]) -> dict[ListKey, list[dict[str, Any]] | ListError]:
        """Run the LISTs concurrently; each ends in its items or its error, within the timeout."""
        out: dict[ListKey, list[dict[str, Any]] | ListError] = {}
        if not keys:
            return out
        pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=min(8, len(keys)), thread_name_prefix="mltui-kube"
        )
        try:
            futures = {pool.submit(self.list_objects, *key): key for key in keys}
            done, _ = concurrent.futures.wait(futures, timeout=self.timeout + 0.5)
            for future, key in futures.items():
                if future not in done:
                    out[key] = ListError(
                        f"{key[0]}: listing {KINDS[key[1]].resource} timed out after {self.timeout:g}s"
                    )
                    continue
                try:
                    out[key] = future.result()
                except ListError as exc:
                    out[key] = exc
                except Exception as exc:  # noqa: BLE001 - every failure is a value
                    out[key] = ListError(error_text(exc))
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return out

    # ----------------------------------------------------------------- fetch

    def fetch(self, models: Sequence[ModelConfig]) -> tuple[dict[str, Rollout], dict[str, str]]:
        values: dict[str, Rollout] = {}
        errors: dict[str, str] = {}
        placed: dict[str, Placement] = {}
        cluster_models = [m for m in models if m.target is not None and m.target.kind != "alias"]
        for model in cluster_models:
            try:
                placed[model.name] = self.placement(model)
            except SourceError as exc:
                errors[model.name] = str(exc)
        broken: dict[str, str] = {}
        for context in {p.context for p in placed.values()}:
            try:
                self.client(context)
            except Exception as exc:  # noqa: BLE001 - a broken context fails only its models
                broken[context] = f"context {context}: {error_text(exc)}"
        keys: dict[ListKey, None] = {}  # ordered set: one LIST per (context, kind, namespace)
        for name, p in placed.items():
            if p.context in broken:
                errors[name] = broken[p.context]
                continue
            for kind in NEEDS[p.kind]:
                keys[(p.context, kind, p.namespace)] = None
        lists = self._list_all(list(keys))
        indexed = _Indexed(lists)

        for name, p in placed.items():
            if name in errors:
                continue
            key = (p.context, p.kind, p.namespace)
            objects = lists.get(key)
            if isinstance(objects, ListError):
                errors[name] = str(objects)
                continue
            by_name = indexed.by_name(key)
            obj = by_name.get(p.name)
            if obj is None:
                errors[name] = f'{p.kind} "{p.namespace}/{p.name}" not found (context {p.context})'
                continue
            replicasets = indexed.replicasets((p.context, "ReplicaSet", p.namespace))
            try:
                if p.kind == "Deployment":
                    values[name] = deployment_rollout(
                        obj,
                        canary=by_name.get(p.canary) if p.canary else None,
                        replicasets=replicasets,
                        context=p.context,
                    )
                elif p.kind == "Rollout":
                    values[name] = argo_rollout(obj, replicasets=replicasets, context=p.context)
                else:
                    values[name] = inference_service_rollout(obj, context=p.context)
            except Exception as exc:  # noqa: BLE001 - a malformed object fails only its model
                errors[name] = f"cannot read {p.kind} {p.namespace}/{p.name}: {error_text(exc)}"
        if not values and errors and all(isinstance(v, ListError) for v in lists.values()):
            # Nothing answered (or nothing could be asked): the source itself is down.
            raise SourceError(next(iter(errors.values())))
        return values, errors

    # ------------------------------------------------------------- discovery

    def discover_targets(self, models: list[ModelConfig]) -> list[ModelConfig]:
        """Give models without a target the object labelled ``mltui.io/model=<registered model>``.

        One LIST per kind across all namespaces of the default context, with the
        label-exists selector; kinds the cluster does not serve (or forbids) are skipped.
        """
        if all(m.target is not None for m in models):
            return list(models)
        context = self.default_context()
        found: dict[str, list[dict[str, Any]]] = {}
        pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=len(DISCOVERY_ORDER), thread_name_prefix="mltui-kube"
        )
        try:
            futures = {
                pool.submit(self.list_objects, context, kind, None, MODEL_LABEL): kind
                for kind in DISCOVERY_ORDER
            }
            done, _ = concurrent.futures.wait(futures, timeout=self.timeout + 0.5)
            for future in done:
                try:
                    found[futures[future]] = future.result()
                except Exception:  # noqa: BLE001 - a kind we cannot list is a kind we skip
                    found[futures[future]] = []
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

        # Index each kind's objects by their model label once: matching every model
        # against every labelled object was O(models x objects).
        labelled: dict[str, dict[str, list[tuple[int, dict[str, Any]]]]] = {}
        for kind, objects in found.items():
            by_label = labelled.setdefault(kind, {})
            for position, obj in enumerate(objects):
                labels = _meta(obj).get("labels")
                value = labels.get(MODEL_LABEL) if isinstance(labels, dict) else None
                if isinstance(value, str):
                    by_label.setdefault(value, []).append((position, obj))

        out = []
        for model in models:
            if model.target is not None:
                out.append(model)
                continue
            target = self._match(model, labelled)
            out.append(model.model_copy(update={"target": target}) if target else model)
        return out

    @staticmethod
    def _match(
        model: ModelConfig, labelled: dict[str, dict[str, list[tuple[int, dict[str, Any]]]]]
    ) -> Target | None:
        """The target of ``model`` among the labelled objects (indexed kind -> label value)."""
        wanted = {model.registry_name, model.name}
        for kind in DISCOVERY_ORDER:
            by_label = labelled.get(kind, {})
            # Both wanted names, back in LIST order (the first stable object wins).
            hits = [
                obj
                for _, obj in sorted(
                    (hit for value in wanted for hit in by_label.get(value, ())),
                    key=lambda hit: hit[0],
                )
            ]
            if not hits:
                continue

            def is_canary(o: dict[str, Any]) -> bool:
                meta = _meta(o)
                return (meta.get("labels") or {}).get(TRACK_LABEL) == "canary" or str(
                    meta.get("name", "")
                ).endswith("-canary")

            stable = [o for o in hits if not is_canary(o)] or hits
            chosen = stable[0]["metadata"]
            canary = None
            if kind == "Deployment":
                canaries = [
                    o
                    for o in hits
                    if is_canary(o) and o["metadata"].get("namespace") == chosen.get("namespace")
                ]
                canary = canaries[0]["metadata"]["name"] if canaries else None
            return Target(
                kind=kind,  # type: ignore[arg-type]
                name=chosen["name"],
                namespace=chosen.get("namespace"),
                canary=canary,
            )
        return None

    def close(self) -> None:
        with self._client_lock:
            for api in self._clients.values():
                try:
                    api.close()
                except Exception:  # noqa: BLE001 - closing is best effort
                    pass
            self._clients.clear()
