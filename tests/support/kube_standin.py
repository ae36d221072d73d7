"""A Kubernetes API server stand-in that the real ``kubernetes`` client talks to.

No control plane can be installed on the test machines, so this speaks enough of
the REST API over HTTP (stdlib ``ThreadingHTTPServer``) for mltui's collector and
actions, with the server's real semantics where they matter:

- GET / LIST (one namespace or all) with ``labelSelector`` and ``fieldSelector``;
  POST (``generateName``), PUT, DELETE (cascading to owned objects), PATCH as JSON
  patch, merge patch and strategic merge (custom resources refuse strategic merge
  with 415, as the real server does); ``/status`` and ``/scale`` subresources;
- a global ``resourceVersion`` bumped on every write, 409 Conflict when a write
  carries a stale one; ``metadata.generation`` bumped on spec changes; status
  changes only through ``/status``; ``dryRun=All`` validates and stores nothing;
- bearer-token auth (401 without it), 403 Forbidden with the real message for what
  a test :meth:`KubeStandin.deny`-s, injectable faults (:class:`Fault`), a request
  log, and a Deployment controller (``kube_controller.py``).

Error bodies are real ``Status`` objects, so ``ApiException`` parses them.
Tests reach the store directly with :meth:`put` / :meth:`get` / :meth:`objects`.
"""

from __future__ import annotations

import copy
import json
import random
import socket
import struct
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support import kube_controller
from tests.support.kube_controller import DeploymentController, now_rfc3339
from tests.support.kube_patch import (
    PatchError,
    json_patch,
    merge_patch,
    parse_field_selector,
    parse_label_selector,
    strategic_merge,
)

DEFAULT_TOKEN = "kube-standin-token-7f3a9c2e51d84b06"
DEFAULT_USER = "system:serviceaccount:ml:mltui"


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    builtin: bool = True
    """Built-in types accept strategic merge; custom resources do not."""
    scale: bool = False

    @property
    def key(self) -> str:
        """ "deployments.apps", "pods" — RBAC/kubectl's resource.group spelling."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


RESOURCES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "namespaces", "Namespace", namespaced=False),
    ResourceType("", "v1", "pods", "Pod"),
    ResourceType("apps", "v1", "deployments", "Deployment", scale=True),
    ResourceType("apps", "v1", "replicasets", "ReplicaSet", scale=True),
    ResourceType("batch", "v1", "cronjobs", "CronJob"),
    ResourceType("batch", "v1", "jobs", "Job"),
    ResourceType(
        "serving.kserve.io", "v1beta1", "inferenceservices", "InferenceService", builtin=False
    ),
    ResourceType("argoproj.io", "v1alpha1", "rollouts", "Rollout", builtin=False, scale=True),
)
_BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}


def resource_type(name: str) -> ResourceType:
    """Look a type up by kind ("Deployment"), plural ("deployments") or key ("deployments.apps")."""
    for r in RESOURCES:
        if name in (r.kind, r.plural, r.key, r.kind.lower()):
            return r
    raise KeyError(f"the stand-in does not serve {name!r}")


@dataclass
class Request:
    """One request the stand-in received."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str | None = None
    body: Any = None
    status: int | None = None


@dataclass
class Fault:
    """A failure to inject into matching requests.

    kind: ``status`` (answer ``status`` with a Status body; ``retry_after`` adds the
    header), ``slow`` (sleep ``delay`` seconds, then answer normally), ``truncate``
    (a valid HTTP response whose JSON body is cut in half), ``reset`` (TCP RST).
    ``times`` = None: forever. ``method``/``path`` (substring) narrow the match.
    """

    kind: str = "status"
    status: int = 500
    retry_after: int | None = None
    delay: float = 0.0
    times: int | None = 1
    method: str | None = None
    path: str | None = None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path is None or self.path in path
        )


@dataclass(frozen=True)
class Denial:
    verb: str
    """get, list, create, update, patch, delete, or * for all."""
    resource: str
    """Plural, optionally with subresource ("rollouts/status"); * for all."""
    namespace: str | None = None
    """None: every namespace (and the cluster scope)."""

    def matches(self, verb: str, resource: str, namespace: str | None) -> bool:
        return (
            self.verb in ("*", verb)
            and self.resource in ("*", resource)
            and (self.namespace is None or self.namespace == namespace)
        )


class ApiError(Exception):
    """An error answer: HTTP code and a Status body."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            out["details"] = self.details
        return out


_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
}


def _qualified(rt: ResourceType) -> str:
    return rt.key


class KubeStandin:
    """The stand-in server, its object store and its knobs. Thread-safe."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        user: str = DEFAULT_USER,
        name: str = "standin",
        namespaces: tuple[str, ...] = ("default", "kube-system", "ml"),
    ) -> None:
        self.token, self.user, self.name = token, user, name
        self.controller = DeploymentController()
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self.denials: list[Denial] = []
        self._store: dict[str, dict[tuple[str, str], dict[str, Any]]] = {
            r.key: {} for r in RESOURCES
        }
        self._rv = 100
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        for ns in namespaces:
            self.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    # ------------------------------------------------------------ lifecycle

    def start(self, host: str = "127.0.0.1", port: int = 0) -> KubeStandin:
        standin = self

        class Handler(_Handler):
            pass

        Handler.standin = standin
        server = _Server((host, port), Handler)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"kube-{self.name}",
        )
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # ----------------------------------------------------- store, for tests

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or replace ``obj`` as-is (status included), as a controller would.

        An object without ``status`` keeps the stored one.
        No auth, no conflict check; the namespace is created when missing; a
        Deployment goes through the controller. Returns the stored copy.
        """
        obj = copy.deepcopy(obj)
        rt = self._type_of(obj)
        with self._lock:
            meta = obj.setdefault("metadata", {})
            ns = meta.get("namespace", "default") if rt.namespaced else ""
            if rt.namespaced:
                meta["namespace"] = ns
                if ("", ns) not in self._store["namespaces"]:
                    self.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
            old = self._store[rt.key].get((ns, meta["name"]))
            if old is None:
                self._defaults(rt, obj)
            else:
                if "status" not in obj and "status" in old:
                    obj["status"] = copy.deepcopy(old["status"])
                meta["uid"] = old["metadata"]["uid"]
                meta["creationTimestamp"] = old["metadata"]["creationTimestamp"]
                meta["generation"] = old["metadata"].get("generation", 1) + (
                    1 if self._spec_of(obj) != self._spec_of(old) else 0
                )
            self._after_write(rt, obj, created=old is None)
            self.raw_save(rt.key, obj)
            return copy.deepcopy(obj)

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """A copy of the stored object, or None."""
        rt = resource_type(kind)
        with self._lock:
            obj = self._store[rt.key].get((namespace or "" if rt.namespaced else "", name))
            return copy.deepcopy(obj) if obj is not None else None

    def objects(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Copies of every stored object of ``kind`` (in ``namespace``), sorted by name."""
        with self._lock:
            return copy.deepcopy(self.raw_list(resource_type(kind).key, namespace))

    def remove(self, kind: str, namespace: str | None, name: str) -> None:
        rt = resource_type(kind)
        with self._lock:
            self.raw_delete(rt.key, namespace or "", name)

    def finish_job(self, namespace: str, name: str, succeeded: bool = True) -> dict[str, Any]:
        """Let the Job controller mark a Job complete (or failed)."""
        with self._lock:
            job = self._store["jobs.batch"][(namespace, name)]
            kube_controller.finish_job(job, succeeded)
            self.raw_save("jobs.batch", job)
            return copy.deepcopy(job)

    def set_controller_mode(
        self, mode: str, namespace: str | None = None, name: str | None = None
    ) -> None:
        """Switch the Deployment controller (complete|hold|fail|off), for one or all Deployments,
        and reconcile the affected Deployments now."""
        if mode not in kube_controller.MODES:
            raise ValueError(f"mode is one of {kube_controller.MODES}")
        with self._lock:
            if name is None:
                self.controller.mode = mode  # type: ignore[assignment]
            else:
                self.controller.modes[(namespace or "default", name)] = mode  # type: ignore[assignment]
            for (ns, n), deploy in list(self._store["deployments.apps"].items()):
                if name is None or (ns, n) == (namespace, name):
                    self.controller.reconcile(self, deploy)
                    self.raw_save("deployments.apps", deploy)

    # ------------------------------------------------------------ policies

    def deny(self, verb: str, resource: str, namespace: str | None = None) -> None:
        """Answer 403 to ``verb`` on ``resource`` (plural, or "plural/subresource")."""
        self.denials.append(
            Denial(verb, resource.split(".")[0] if "/" not in resource else resource, namespace)
        )

    def allow_all(self) -> None:
        self.denials.clear()

    def inject(self, fault: Fault) -> None:
        self.faults.append(fault)

    def fail_next(
        self,
        status: int = 500,
        times: int | None = 1,
        *,
        path: str | None = None,
        method: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        """The next ``times`` matching requests get ``status`` (None: until clear_faults)."""
        self.inject(
            Fault(
                "status",
                status=status,
                times=times,
                path=path,
                method=method,
                retry_after=retry_after,
            )
        )

    def clear_faults(self) -> None:
        self.faults.clear()

    def request_count(self, method: str | None = None, path: str | None = None) -> int:
        """How many logged requests match ``method`` and contain ``path``."""
        with self._lock:
            return sum(
                1
                for r in self.requests
                if (method is None or r.method == method) and (path is None or path in r.path)
            )

    def clear_log(self) -> None:
        with self._lock:
            self.requests.clear()

    # --------------------------------------------- raw store (controller use)

    def raw_list(self, key: str, namespace: str | None) -> list[dict[str, Any]]:
        items = self._store[key].items()
        return [o for (ns, _), o in sorted(items) if namespace is None or ns == namespace]

    def raw_save(self, key: str, obj: dict[str, Any]) -> None:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        self._store[key][(obj["metadata"].get("namespace", ""), obj["metadata"]["name"])] = obj

    def raw_delete(
        self, key: str, namespace: str, name: str, cascade: bool = True
    ) -> dict[str, Any] | None:
        obj = self._store[key].pop((namespace, name), None)
        if obj is not None:
            self._rv += 1
            if cascade:
                uid = obj["metadata"].get("uid")
                for other_key, objects in self._store.items():
                    for (ns, n), other in list(objects.items()):
                        if any(
                            o.get("uid") == uid
                            for o in other["metadata"].get("ownerReferences", [])
                        ):
                            self.raw_delete(other_key, ns, n)
        return obj

    # ----------------------------------------------------------- internals

    @staticmethod
    def _type_of(obj: dict[str, Any]) -> ResourceType:
        api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
        for r in RESOURCES:
            if r.kind == kind and r.api_version == api_version:
                return r
        raise ApiError(
            400, "BadRequest", f'no kind "{kind}" is registered for version "{api_version}"'
        )

    @staticmethod
    def _spec_of(obj: dict[str, Any]) -> Any:
        return {
            k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")
        }

    def _defaults(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        """What the API server fills in on create."""
        meta = obj["metadata"]
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        if rt.kind != "Namespace":
            meta["generation"] = 1
        if rt.kind == "Namespace":
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj.setdefault("status", {"phase": "Active"})
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
        elif rt.kind == "Deployment":
            spec = obj.setdefault("spec", {})
            spec.setdefault("replicas", 1)
            spec.setdefault("revisionHistoryLimit", 10)
            spec.setdefault("progressDeadlineSeconds", 600)
            spec.setdefault(
                "strategy",
                {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
                },
            )
        elif rt.kind == "Job":
            spec = obj.setdefault("spec", {})
            spec.setdefault("backoffLimit", 6)
            spec.setdefault("completions", 1)
            spec.setdefault("parallelism", 1)
            spec.setdefault("completionMode", "NonIndexed")
            spec.setdefault("suspend", False)
            if "selector" not in spec and not spec.get("manualSelector"):
                uid = meta["uid"]
                spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
                labels = (
                    spec.setdefault("template", {})
                    .setdefault("metadata", {})
                    .setdefault("labels", {})
                )
                labels.update(
                    {
                        "batch.kubernetes.io/controller-uid": uid,
                        "batch.kubernetes.io/job-name": meta["name"],
                        "controller-uid": uid,
                        "job-name": meta["name"],
                    }
                )
        elif rt.kind == "CronJob":
            spec = obj.setdefault("spec", {})
            spec.setdefault("concurrencyPolicy", "Allow")
            spec.setdefault("suspend", False)
            spec.setdefault("successfulJobsHistoryLimit", 3)
            spec.setdefault("failedJobsHistoryLimit", 1)

    def _after_write(self, rt: ResourceType, obj: dict[str, Any], created: bool) -> None:
        """Controllers that react to a stored write (inside the write, for determinism)."""
        if rt.kind == "Deployment":
            self.controller.reconcile(self, obj)
        elif rt.kind == "Job" and created and not obj.get("status"):
            kube_controller.start_job(obj)

    @staticmethod
    def _validate(rt: ResourceType, obj: dict[str, Any]) -> None:
        """The few validation rules the tests lean on (422 Invalid, as the server says it)."""
        meta = obj.get("metadata", {})
        name = meta.get("name", "")
        causes: list[tuple[str, str]] = []
        if not name:
            causes.append(("metadata.name", "Required value: name or generateName is required"))
        if rt.kind in ("Deployment", "ReplicaSet"):
            spec = obj.get("spec", {})
            selector = spec.get("selector", {}).get("matchLabels")
            labels = spec.get("template", {}).get("metadata", {}).get("labels", {})
            if not selector:
                causes.append(("spec.selector", "Required value"))
            elif any(labels.get(k) != v for k, v in selector.items()):
                causes.append(
                    (
                        "spec.template.metadata.labels",
                        "Invalid value: `selector` does not match template `labels`",
                    )
                )
            containers = spec.get("template", {}).get("spec", {}).get("containers") or []
            if not containers:
                causes.append(("spec.template.spec.containers", "Required value"))
            for i, c in enumerate(containers):
                if not c.get("image"):
                    causes.append((f"spec.template.spec.containers[{i}].image", "Required value"))
            if int(spec.get("replicas", 0)) < 0:
                causes.append(
                    ("spec.replicas", "Invalid value: must be greater than or equal to 0")
                )
        if rt.kind == "Job":
            policy = obj.get("spec", {}).get("template", {}).get("spec", {}).get("restartPolicy")
            if policy not in ("Never", "OnFailure"):
                causes.append(
                    (
                        "spec.template.spec.restartPolicy",
                        f'Unsupported value: "{policy or ""}": supported values: "OnFailure", "Never"',
                    )
                )
        if rt.kind == "InferenceService":
            pct = obj.get("spec", {}).get("predictor", {}).get("canaryTrafficPercent")
            if pct is not None and not (isinstance(pct, int) and 0 <= pct <= 100):
                causes.append(
                    (
                        "spec.predictor.canaryTrafficPercent",
                        "Invalid value: must be between 0 and 100",
                    )
                )
        if causes:
            text = ", ".join(f"{f}: {m}" for f, m in causes)
            raise ApiError(
                422,
                "Invalid",
                f'{rt.kind}.{rt.group or "core"} "{name}" is invalid: {text}'.replace(".core", ""),
                {
                    "name": name,
                    "group": rt.group,
                    "kind": rt.kind,
                    "causes": [
                        {"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in causes
                    ],
                },
            )

    # ---------------------------------------------------------- HTTP logic

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes | None, Fault | None]:
        """Process one request: (status, headers, body or None, fault to act out)."""
        split = urlsplit(raw_path)
        path = split.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        content_type = (headers.get("content-type") or "").split(";")[0].strip() or None
        record = Request(method, path, query, content_type)
        try:
            record.body = json.loads(body) if body else None
        except ValueError:
            record.body = body.decode(errors="replace")
        with self._lock:
            self.requests.append(record)
            fault = next((f for f in self.faults if f.matches(method, path)), None)
            if fault is not None and fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
        extra: dict[str, str] = {}
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.delay)
            fault = None
        if fault is not None and fault.kind == "status":
            code = fault.status
            if fault.retry_after is not None:
                extra["Retry-After"] = str(fault.retry_after)
            err = ApiError(
                code,
                _REASONS.get(code, "InternalError"),
                "Too many requests, please try again later."
                if code == 429
                else "Internal error occurred: injected fault",
                {"retryAfterSeconds": fault.retry_after} if fault.retry_after else None,
            )
            record.status = code
            return code, extra, json.dumps(err.body()).encode(), None
        try:
            code, payload = self._dispatch(method, path, query, headers, content_type, record.body)
        except ApiError as err:
            code, payload = err.code, err.body()
        except Exception as exc:  # a bug in the stand-in: answer like a real 500
            code, payload = 500, ApiError(500, "InternalError", f"stand-in error: {exc!r}").body()
        record.status = code
        return code, extra, json.dumps(payload).encode(), fault

    def _dispatch(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        content_type: str | None,
        body: Any,
    ) -> tuple[int, Any]:
        parts = [p for p in path.split("/") if p]
        if path in ("/version", "/healthz", "/readyz", "/livez"):
            if path == "/version":
                return 200, {
                    "major": "1",
                    "minor": "33",
                    "gitVersion": "v1.33.0-mltui-standin",
                    "platform": "linux/amd64",
                    "goVersion": "go1.24.0",
                    "compiler": "gc",
                }
            return 200, "ok"
        if headers.get("authorization") != f"Bearer {self.token}":
            raise ApiError(401, "Unauthorized", "Unauthorized")
        discovery = self._discovery(parts)
        if discovery is not None:
            return 200, discovery
        rt, namespace, name, sub = self._route(parts)
        verb = self._verb(method, name)
        self._authorize(verb, rt, namespace, name, sub)
        dry_run = query.get("dryRun")
        if dry_run not in (None, "All"):
            raise ApiError(
                400, "BadRequest", f'Invalid dry run value "{dry_run}": dryRun must be "All"'
            )
        with self._lock:
            if (
                namespace
                and rt.kind != "Namespace"
                and ("", namespace) not in self._store["namespaces"]
                and verb == "create"
            ):
                raise ApiError(
                    404,
                    "NotFound",
                    f'namespaces "{namespace}" not found',
                    {"name": namespace, "kind": "namespaces"},
                )
            if verb == "list":
                return 200, self._list(rt, namespace, query)
            if verb == "create":
                return 201, self._create(rt, namespace, body, dry_run is not None)
            current = self._store[rt.key].get((namespace or "", name or ""))
            if current is None:
                raise ApiError(
                    404,
                    "NotFound",
                    f'{_qualified(rt)} "{name}" not found',
                    {"name": name, "group": rt.group, "kind": rt.plural},
                )
            if verb == "get":
                return 200, self._view(rt, current, sub)
            if verb == "delete":
                if dry_run is None:
                    cascade = query.get("propagationPolicy") != "Orphan"
                    self.raw_delete(rt.key, namespace or "", name or "", cascade=cascade)
                return 200, {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": {
                        "name": name,
                        "group": rt.group,
                        "kind": rt.plural,
                        "uid": current["metadata"]["uid"],
                    },
                }
            if verb == "update":
                return 200, self._write(rt, current, sub, body, dry_run is not None, replace=True)
            if verb == "patch":
                return 200, self._patch(rt, current, sub, body, content_type, dry_run is not None)
        raise ApiError(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )

    def _discovery(self, parts: list[str]) -> Any:
        if parts == ["api"]:
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}
                ],
            }
        if parts == ["apis"]:
            groups: dict[str, str] = {}
            for r in RESOURCES:
                if r.group:
                    groups[r.group] = r.version
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [
                    {
                        "name": g,
                        "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                        "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v},
                    }
                    for g, v in groups.items()
                ],
            }
        gv = None
        if len(parts) == 2 and parts[0] == "api":
            gv = ("", parts[1])
        elif len(parts) == 3 and parts[0] == "apis":
            gv = (parts[1], parts[2])
        if gv is not None:
            found = [r for r in RESOURCES if (r.group, r.version) == gv]
            if not found:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            resources = []
            for r in found:
                verbs = [
                    "create",
                    "delete",
                    "deletecollection",
                    "get",
                    "list",
                    "patch",
                    "update",
                    "watch",
                ]
                resources.append(
                    {
                        "name": r.plural,
                        "singularName": r.kind.lower(),
                        "namespaced": r.namespaced,
                        "kind": r.kind,
                        "verbs": verbs,
                    }
                )
                resources.append(
                    {
                        "name": f"{r.plural}/status",
                        "singularName": "",
                        "namespaced": r.namespaced,
                        "kind": r.kind,
                        "verbs": ["get", "patch", "update"],
                    }
                )
                if r.scale:
                    resources.append(
                        {
                            "name": f"{r.plural}/scale",
                            "singularName": "",
                            "namespaced": r.namespaced,
                            "group": "autoscaling",
                            "version": "v1",
                            "kind": "Scale",
                            "verbs": ["get", "patch", "update"],
                        }
                    )
            return {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": f"{gv[0]}/{gv[1]}" if gv[0] else gv[1],
                "resources": resources,
            }
        return None

    @staticmethod
    def _route(parts: list[str]) -> tuple[ResourceType, str | None, str | None, str | None]:
        """(type, namespace, name, subresource) of an API path."""
        if parts and parts[0] == "api" and len(parts) >= 3:
            group, version, rest = "", parts[1], parts[2:]
        elif parts and parts[0] == "apis" and len(parts) >= 4:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        rt = _BY_PATH.get((group, version, rest[0]))
        if rt is None or len(rest) > 3:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) >= 2 else None
        sub = rest[2] if len(rest) == 3 else None
        if sub not in (None, "status") and not (sub == "scale" and rt.scale):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return rt, namespace, name, sub

    @staticmethod
    def _verb(method: str, name: str | None) -> str:
        if name is None:
            return {"GET": "list", "POST": "create", "DELETE": "deletecollection"}.get(
                method, "unsupported"
            )
        return {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(
            method, "unsupported"
        )

    def _authorize(
        self, verb: str, rt: ResourceType, namespace: str | None, name: str | None, sub: str | None
    ) -> None:
        resource = f"{rt.plural}/{sub}" if sub else rt.plural
        if not any(d.matches(verb, resource, namespace) for d in self.denials):
            return
        who = f'{_qualified(rt)} "{name}"' if name else _qualified(rt)
        where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
        message = (
            f'{who} is forbidden: User "{self.user}" cannot {verb} resource "{resource}" '
            f'in API group "{rt.group}" {where}'
        )
        details: dict[str, Any] = {"group": rt.group, "kind": rt.plural}
        if name:
            details["name"] = name
        raise ApiError(403, "Forbidden", message, details)

    def _list(
        self, rt: ResourceType, namespace: str | None, query: dict[str, str]
    ) -> dict[str, Any]:
        try:
            label_match = parse_label_selector(query.get("labelSelector"))
            field_match = parse_field_selector(query.get("fieldSelector"))
        except ValueError as exc:
            raise ApiError(400, "BadRequest", str(exc)) from None
        items = [
            copy.deepcopy(o)
            for o in self.raw_list(rt.key, namespace if rt.namespaced else None)
            if label_match(o["metadata"].get("labels") or {}) and field_match(o)
        ]
        return {
            "kind": f"{rt.kind}List",
            "apiVersion": rt.api_version,
            "metadata": {"resourceVersion": str(self._rv)},
            "items": items,
        }

    def _view(self, rt: ResourceType, obj: dict[str, Any], sub: str | None) -> dict[str, Any]:
        if sub == "scale":
            selector = obj.get("spec", {}).get("selector", {}).get("matchLabels", {})
            return {
                "kind": "Scale",
                "apiVersion": "autoscaling/v1",
                "metadata": {
                    k: obj["metadata"][k]
                    for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                },
                "spec": {"replicas": obj.get("spec", {}).get("replicas", 1)},
                "status": {
                    "replicas": obj.get("status", {}).get("replicas", 0),
                    "selector": ",".join(f"{k}={v}" for k, v in sorted(selector.items())),
                },
            }
        return copy.deepcopy(obj)

    def _create(
        self, rt: ResourceType, namespace: str | None, body: Any, dry_run: bool
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body of the request must be a JSON object")
        obj = copy.deepcopy(body)
        if obj.get("kind") != rt.kind:
            raise ApiError(
                400,
                "BadRequest",
                f"the API version in the data ({obj.get('apiVersion')}) does not match the expected API version ({rt.api_version})",
            )
        meta = obj.setdefault("metadata", {})
        if rt.namespaced:
            if meta.get("namespace") not in (None, "", namespace):
                raise ApiError(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on the request",
                )
            meta["namespace"] = namespace
        if not meta.get("name") and meta.get("generateName"):
            alphabet = "bcdfghjklmnpqrstvwxz2456789"
            meta["name"] = meta["generateName"] + "".join(random.choice(alphabet) for _ in range(5))
        meta.pop("resourceVersion", None)
        self._validate(rt, obj)
        if (namespace or "", meta["name"]) in self._store[rt.key]:
            raise ApiError(
                409,
                "AlreadyExists",
                f'{_qualified(rt)} "{meta["name"]}" already exists',
                {"name": meta["name"], "group": rt.group, "kind": rt.plural},
            )
        if rt.kind != "Namespace":
            obj.pop("status", None)  # status is the controllers' business
        self._defaults(rt, obj)
        if dry_run:
            return obj
        self._after_write(rt, obj, created=True)
        self.raw_save(rt.key, obj)
        return copy.deepcopy(obj)

    def _write(
        self,
        rt: ResourceType,
        current: dict[str, Any],
        sub: str | None,
        new: Any,
        dry_run: bool,
        replace: bool,
    ) -> dict[str, Any]:
        """Store ``new`` (the full object, or a Scale for /scale) in place of ``current``."""
        if not isinstance(new, dict):
            raise ApiError(400, "BadRequest", "the body of the request must be a JSON object")
        meta = current["metadata"]
        sent_rv = (new.get("metadata") or {}).get("resourceVersion")
        if sent_rv and sent_rv != meta["resourceVersion"]:
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {_qualified(rt)} "{meta["name"]}": the object has been modified; '
                "please apply your changes to the latest version and try again",
                {"name": meta["name"], "group": rt.group, "kind": rt.plural},
            )
        new_name = (new.get("metadata") or {}).get("name")
        if new_name not in (None, meta["name"]):
            raise ApiError(
                400,
                "BadRequest",
                f"the name of the object ({new_name}) does not match the name on the URL ({meta['name']})",
            )
        if sub == "scale":
            replicas = (new.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or replicas < 0:
                raise ApiError(
                    422,
                    "Invalid",
                    f'Scale.autoscaling "{meta["name"]}" is invalid: spec.replicas: Invalid value: must be greater than or equal to 0',
                )
            result = copy.deepcopy(current)
            result["spec"]["replicas"] = replicas
        elif sub == "status":
            result = copy.deepcopy(current)
            result["status"] = copy.deepcopy(new.get("status"))
        else:
            result = copy.deepcopy(new)
            result["apiVersion"], result["kind"] = current["apiVersion"], current["kind"]
            result_meta = result.setdefault("metadata", {})
            for key in ("uid", "creationTimestamp", "namespace", "name", "generation"):
                if key in meta:
                    result_meta[key] = meta[key]
            if "status" in current:
                result["status"] = copy.deepcopy(current["status"])  # only /status writes status
            else:
                result.pop("status", None)
        self._validate(rt, result)
        if rt.kind == "Deployment" and result.get("spec", {}).get("selector") != current.get(
            "spec", {}
        ).get("selector"):
            raise ApiError(
                422,
                "Invalid",
                f'Deployment.apps "{meta["name"]}" is invalid: spec.selector: Invalid value: field is immutable',
                {"name": meta["name"], "group": "apps", "kind": "Deployment"},
            )
        if self._spec_of(result) != self._spec_of(current) and rt.kind != "Namespace":
            result["metadata"]["generation"] = meta.get("generation", 1) + 1
        result["metadata"]["resourceVersion"] = meta["resourceVersion"]
        if dry_run:
            return self._view(rt, result, sub) if sub == "scale" else result
        self._after_write(rt, result, created=False)
        self.raw_save(rt.key, result)
        return self._view(rt, result, sub)

    def _patch(
        self,
        rt: ResourceType,
        current: dict[str, Any],
        sub: str | None,
        patch: Any,
        content_type: str | None,
        dry_run: bool,
    ) -> dict[str, Any]:
        base = self._view(rt, current, sub)
        try:
            if content_type == "application/json-patch+json":
                patched = json_patch(base, patch)
            elif content_type == "application/merge-patch+json":
                patched = merge_patch(base, patch)
            elif (
                content_type == "application/strategic-merge-patch+json"
                and rt.builtin
                and sub != "scale"
            ):
                patched = strategic_merge(base, patch)
            elif content_type == "application/strategic-merge-patch+json" and sub == "scale":
                patched = merge_patch(base, patch)
            else:
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types include: "
                    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
                    + (", application/strategic-merge-patch+json" if rt.builtin else ""),
                )
        except PatchError as exc:
            raise ApiError(422, "Invalid", str(exc)) from None
        if not isinstance(patched, dict):
            raise ApiError(400, "BadRequest", "the patch did not produce an object")
        # A patch that names a resourceVersion is a precondition, checked like PUT's.
        patched_rv = (patched.get("metadata") or {}).get("resourceVersion")
        if patched_rv == base["metadata"].get("resourceVersion"):
            patched["metadata"].pop("resourceVersion", None)
        return self._write(rt, current, sub, patched, dry_run, replace=False)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # resets and disconnects are part of the tests, not noise


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    standin: KubeStandin

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        code, extra, payload, fault = self.standin.handle(self.command, self.path, headers, body)
        if fault is not None and fault.kind == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        data = payload or b""
        if fault is not None and fault.kind == "truncate":
            data = data[: max(1, len(data) // 2)]
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Audit-Id", str(uuid.uuid4()))
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def finish(self) -> None:
        try:
            super().finish()
        except (OSError, ValueError):
            pass


def kubeconfig(
    clusters: dict[str, str],
    token: str = DEFAULT_TOKEN,
    namespace: str = "ml",
    current: str | None = None,
) -> dict[str, Any]:
    """A kubeconfig dict with one context per (name -> server URL), all with ``token``."""
    names = list(clusters)
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": n, "cluster": {"server": url}} for n, url in clusters.items()],
        "users": [{"name": "mltui-test", "user": {"token": token}}],
        "contexts": [
            {"name": n, "context": {"cluster": n, "user": "mltui-test", "namespace": namespace}}
            for n in names
        ],
        "current-context": current or names[0],
    }


__all__ = [
    "DEFAULT_TOKEN",
    "DEFAULT_USER",
    "Fault",
    "KubeStandin",
    "Request",
    "kubeconfig",
    "resource_type",
]
