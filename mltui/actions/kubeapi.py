"""The few Kubernetes API calls the actions make, through the real ``kubernetes`` client.

Objects travel as plain dicts (``_preload_content=False`` + ``json.loads``): the
actions copy pod templates verbatim, and custom resources (KServe, Argo) have no
generated models anyway. Every call carries a timeout; every failure becomes a
:class:`KubeError` whose message is scrubbed of secrets and, for a 403, names the
missing permission (verb, resource, namespace).

``kubernetes`` is imported lazily: ``mltui --check`` and ``--help`` never pay for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mltui import secrets
from mltui.config import Config

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"


@dataclass(frozen=True)
class Resource:
    """A kind of object: its API group/version and plural, e.g. apps/v1 deployments."""

    api: str
    """"apps/v1", "batch/v1", "serving.kserve.io/v1beta1", "argoproj.io/v1alpha1"."""
    plural: str

    @property
    def group(self) -> str:
        return self.api.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api.rpartition("/")[2]

    def qualified(self) -> str:
        """kubectl's spelling: "deployments.apps", "inferenceservices.serving.kserve.io"."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def object(self, namespace: str, name: str) -> str:
        return f"{self.qualified()} {namespace}/{name}"


DEPLOYMENTS = Resource("apps/v1", "deployments")
REPLICASETS = Resource("apps/v1", "replicasets")
CRONJOBS = Resource("batch/v1", "cronjobs")
JOBS = Resource("batch/v1", "jobs")
INFERENCESERVICES = Resource("serving.kserve.io/v1beta1", "inferenceservices")
ROLLOUTS = Resource("argoproj.io/v1alpha1", "rollouts")

_CUSTOM = {INFERENCESERVICES, ROLLOUTS}


class KubeError(Exception):
    """A failed Kubernetes call, phrased for the operator (already redacted)."""

    def __init__(self, message: str, status: int | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def forbidden(self) -> bool:
        return self.status == 403

    @property
    def not_found(self) -> bool:
        return self.status == 404


def _server_message(body: Any) -> str:
    """The ``message`` of a Kubernetes Status body, or the body's first line."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not body:
        return ""
    try:
        data = json.loads(body)
        if isinstance(data, dict) and data.get("message"):
            return str(data["message"])
    except ValueError:
        pass
    return str(body).strip().splitlines()[0][:300]


class KubeApi:
    """One cluster (kube context): reads and writes as dicts, each with a timeout."""

    def __init__(self, config: Config, context: str | None = None) -> None:
        kube = config.kubernetes
        self.kubeconfig = kube.kubeconfig if kube is not None else None
        self.timeout = kube.timeout if kube is not None else 5.0
        self.default_namespace = kube.namespace if kube is not None else None
        self.requested_context = context or (kube.context if kube is not None else None)
        self._client: Any = None
        self.context: str | None = None
        self.user: str | None = None
        self.context_namespace: str | None = None

    # ------------------------------------------------------------ connection

    def client(self) -> Any:
        """The ``ApiClient`` for this context, created on first use."""
        if self._client is None:
            from kubernetes import client as k8s
            from kubernetes import config as kconfig

            try:
                contexts, active = kconfig.list_kube_config_contexts(config_file=self.kubeconfig)
                chosen = next(
                    (c for c in contexts if c.get("name") == self.requested_context), active
                )
                if self.requested_context and chosen.get("name") != self.requested_context:
                    raise KubeError(
                        f'kube context "{self.requested_context}" is not in the kubeconfig'
                    )
                self.context = chosen.get("name")
                self.user = (chosen.get("context") or {}).get("user")
                self.context_namespace = (chosen.get("context") or {}).get("namespace")
                configuration = k8s.Configuration()
                kconfig.load_kube_config(
                    config_file=self.kubeconfig,
                    context=self.context,
                    client_configuration=configuration,
                    persist_config=False,
                )
            except KubeError:
                raise
            except Exception as exc:  # noqa: BLE001 - a bad kubeconfig is a user-facing error
                raise KubeError(f"cannot load kubeconfig: {secrets.error_text(exc)}") from None
            for value in (configuration.api_key or {}).values():
                secrets.register(str(value).removeprefix("Bearer ").strip())
            secrets.register(configuration.password)
            # One quick retry at most: an operator waits on these calls.
            configuration.retries = 1
            self._client = k8s.ApiClient(configuration)
        return self._client

    def namespace(self, explicit: str | None) -> str:
        """The namespace for a target: its own, else [kubernetes] namespace, else the context's."""
        if explicit:
            return explicit
        if self.default_namespace:
            return self.default_namespace
        self.client()
        return self.context_namespace or "default"

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass
            self._client = None

    # ------------------------------------------------------------ calls

    def _call(
        self,
        verb: str,
        res: Resource,
        namespace: str,
        fn: Any,
        *args: Any,
        sub: str | None = None,
        **kw: Any,
    ) -> Any:
        from kubernetes.client.exceptions import ApiException

        try:
            response = fn(*args, _preload_content=False, _request_timeout=self.timeout, **kw)
            data = response.data
            return json.loads(data) if data else {}
        except ApiException as exc:
            raise self._api_error(exc, verb, res, namespace, sub) from None
        except KubeError:
            raise
        except Exception as exc:  # noqa: BLE001 - connection refused, timeouts, TLS
            raise KubeError(
                f"{verb} {res.qualified()} in {namespace}: {secrets.error_text(exc)}"
            ) from None

    def _api_error(
        self, exc: Any, verb: str, res: Resource, namespace: str, sub: str | None
    ) -> KubeError:
        status = getattr(exc, "status", None)
        message = secrets.redact(_server_message(getattr(exc, "body", None)) or exc.reason or "")
        resource = res.plural + (f"/{sub}" if sub else "")
        if status == 403:
            who = f'kube user "{self.user}"' if self.user else "the kube user"
            group = res.group or "core"
            text = (
                f'forbidden: {who} may not {verb} {resource} in namespace "{namespace}" — '
                f'missing RBAC permission: verb "{verb}" on resource "{resource}" '
                f'(apiGroup "{group}") in namespace "{namespace}"'
            )
            if self.context:
                text += f' (context "{self.context}")'
            return KubeError(text + (f". Server: {message}" if message else ""), 403, "Forbidden")
        if status == 409:
            return KubeError(f"conflict: {message or 'the object changed'}", 409, "Conflict")
        if status == 404:
            return KubeError(f"not found: {message or res.qualified()}", 404, "NotFound")
        return KubeError(
            f"{verb} {resource} in {namespace}: HTTP {status}: {message}",
            status,
            getattr(exc, "reason", None),
        )

    def _typed(self, res: Resource) -> Any:
        from kubernetes import client as k8s

        api = self.client()
        if res.api == "apps/v1":
            return k8s.AppsV1Api(api)
        if res.api == "batch/v1":
            return k8s.BatchV1Api(api)
        return k8s.CustomObjectsApi(api)

    def get(self, res: Resource, namespace: str, name: str) -> dict[str, Any]:
        api = self._typed(res)
        if res == DEPLOYMENTS:
            return self._call(
                "get", res, namespace, api.read_namespaced_deployment, name, namespace
            )
        if res == CRONJOBS:
            return self._call("get", res, namespace, api.read_namespaced_cron_job, name, namespace)
        if res == JOBS:
            return self._call("get", res, namespace, api.read_namespaced_job, name, namespace)
        if res in _CUSTOM:
            return self._call(
                "get",
                res,
                namespace,
                api.get_namespaced_custom_object,
                res.group,
                res.version,
                namespace,
                res.plural,
                name,
            )
        raise ValueError(f"unsupported resource {res}")

    def list(
        self, res: Resource, namespace: str, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        api = self._typed(res)
        if res == REPLICASETS:
            data = self._call(
                "list",
                res,
                namespace,
                api.list_namespaced_replica_set,
                namespace,
                label_selector=label_selector,
            )
            return list(data.get("items") or [])
        raise ValueError(f"unsupported resource {res}")

    def patch(
        self,
        res: Resource,
        namespace: str,
        name: str,
        body: Any,
        content_type: str,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        api = self._typed(res)
        kw: dict[str, Any] = {"_content_type": content_type}
        if dry_run:
            kw["dry_run"] = "All"
        if res == DEPLOYMENTS and subresource is None:
            return self._call(
                "patch",
                res,
                namespace,
                api.patch_namespaced_deployment,
                name,
                namespace,
                body,
                **kw,
            )
        if res in _CUSTOM:
            fn = (
                api.patch_namespaced_custom_object_status
                if subresource == "status"
                else api.patch_namespaced_custom_object
            )
            return self._call(
                "patch",
                res,
                namespace,
                fn,
                res.group,
                res.version,
                namespace,
                res.plural,
                name,
                body,
                sub=subresource,
                **kw,
            )
        raise ValueError(f"unsupported patch of {res} {subresource or ''}")

    def create(
        self, res: Resource, namespace: str, body: dict[str, Any], *, dry_run: bool = False
    ) -> dict[str, Any]:
        api = self._typed(res)
        kw: dict[str, Any] = {"dry_run": "All"} if dry_run else {}
        if res == JOBS:
            return self._call(
                "create", res, namespace, api.create_namespaced_job, namespace, body, **kw
            )
        raise ValueError(f"unsupported create of {res}")
