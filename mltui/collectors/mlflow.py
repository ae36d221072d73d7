"""The MLflow collector: registered models, their versions, aliases and run lineage.

A poll reads the whole fleet page-wise, so its request count grows with pages of
results, not with models (issue 9: two requests per model took 45 s at 1,000):

- **registered models** (aliases and tags; ``search_model_versions`` returns versions
  with *empty* aliases, so aliases are only read here): one ``name IN (…)`` search
  when the fleet's names fit one filter; otherwise the registry's first page of up
  to 1,000 models, filtered here — one request when the registry fits that page (the
  usual case when the fleet is most of it) — and ``name IN (…)`` searches for the
  rest once the registry is known to be bigger;
- **versions**: ``search_model_versions`` with ``name IN (…)`` in chunks (the filter
  travels in the URL, see :data:`~mltui.collectors.mlflow_client.MAX_FILTER_CHARS`),
  ordered by name then version number, newest first, following page tokens and
  keeping the newest ``[mlflow] max_versions`` of each model. When a page ends
  inside a model that already has its newest N, the search restarts without the
  models it has seen, so a model with thousands of versions costs no extra pages;
- an alias pointing below a model's newest N (an old champion) is read on its own.

What is expensive and immutable is cached across polls: the source run of each
version (metrics, params, dataset inputs), fetched once per run id. A run that is
still running is not cached, since it may still log. Aliases, tags, versions and
their status are read fresh on every poll.

A registered model that does not exist is an error of that model only; a server
that cannot be reached fails the whole poll at once (no per-model timeouts piling
up), in seconds: see :mod:`mltui.collectors.mlflow_client`.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import UTC, datetime
from typing import Any

from mltui.collectors.base import Source, SourceError
from mltui.collectors.mlflow_client import (
    MAX_FILTER_CHARS,
    MlflowUnavailable,
    describe_error,
    error_code,
    make_client,
    name_chunks,
    name_in_filter,
    quote_name,
    request_timeout,
)
from mltui.config import Config, ModelConfig
from mltui.fleet import DatasetRef, ModelVersion, Registry
from mltui.secrets import error_text

# MLflow error codes that concern one registered model, not the server.
PER_MODEL_ERRORS = frozenset({"RESOURCE_DOES_NOT_EXIST", "PERMISSION_DENIED"})

DATASET_CONTEXT_TAG = "mlflow.data.context"

IMPORT_ALLOWANCE_S = 10.0
"""Extra deadline for the poll that first imports mlflow (measured ~5 s cold on 2 busy cores)."""


class _RunFacts:
    """What a version needs from its source run (immutable once the run finished)."""

    __slots__ = ("datasets", "metrics", "params")

    def __init__(
        self,
        metrics: Mapping[str, float],
        params: Mapping[str, str],
        datasets: tuple[DatasetRef, ...],
    ) -> None:
        self.metrics = metrics
        self.params = params
        self.datasets = datasets


_NO_RUN = _RunFacts({}, {}, ())


class MlflowSource(Source[Registry]):
    """Reads :class:`~mltui.fleet.Registry` values from an MLflow tracking server or store."""

    name = "mlflow"

    page_size: int = 1000
    """Page size of version searches (tests lower it to see paging)."""

    registry_page_size: int = 1000
    """Page size of registered-model searches (MLflow's server allows at most 1,000)."""

    filter_chars: int = MAX_FILTER_CHARS
    """Longest URL-encoded ``name IN (…)`` filter (tests lower it to see chunking)."""

    read_threads: int = 3
    """Searches of one poll run at once (1: one after the other)."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._runs: dict[str, _RunFacts] = {}
        self._runs_lock = threading.Lock()
        uri = config.mlflow_uri or ""
        if not uri.startswith(("http://", "https://")):
            # A local store parses search filters in this process: nothing to overlap,
            # and concurrent parsing trips CPython 3.11's "AST constructor recursion
            # depth mismatch" (gh-106905, fixed in 3.11.8).
            self.read_threads = 1
        self.run_fetches = 0
        """Source runs fetched so far (the cache keeps this from growing on every poll)."""
        self._registry_exceeds_page = False
        """Set once a listing showed the registry holds more than one page of models."""

    # ------------------------------------------------------------------ timing

    @property
    def timeout(self) -> float:
        return request_timeout(self.config)

    @property
    def deadline(self) -> float:
        # One request may take ``timeout`` twice (one retry); a dead server refuses
        # connections at once, so this bound only matters for a hung one.
        bound = 2 * self.timeout + 2.0
        if self._client is None and "mlflow.tracking" not in sys.modules:
            # The first poll also imports mlflow (seconds on a cold, busy machine):
            # without this, a short timeout reports a healthy server as timed out.
            bound += IMPORT_ALLOWANCE_S
        return bound

    @property
    def max_versions(self) -> int:
        return self.config.mlflow.max_versions if self.config.mlflow is not None else 20

    # ------------------------------------------------------------------ client

    @property
    def client(self) -> Any:
        """The MlflowClient, created on first use (this is where mlflow gets imported)."""
        with self._client_lock:
            if self._client is None:
                try:
                    self._client = make_client(self.config)
                except MlflowUnavailable as exc:
                    raise SourceError(str(exc)) from None
            return self._client

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """One client call = one counted request."""
        self.count_request()
        return fn(*args, **kwargs)

    def _fail(self, exc: BaseException) -> SourceError:
        return SourceError(describe_error(exc, self.config.mlflow_uri, self.timeout))

    # ------------------------------------------------------------------ polling

    def fetch(self, models: Sequence[ModelConfig]) -> tuple[dict[str, Registry], dict[str, str]]:
        client = self.client
        names = list(dict.fromkeys(model.registry_name for model in models))
        searchable = [name for name in names if quote_name(name) is not None]
        try:
            found, versions = self._read_fleet(client, searchable)
            self._prefetch_runs(client, versions.values())
        except Exception as exc:
            raise self._fail(exc) from None

        registries: dict[str, Registry] = {}
        name_errors: dict[str, str] = {}
        for name, rm in found.items():
            try:
                registries[name] = self._registry(client, rm, versions.get(name, []))
            except Exception as exc:
                if error_code(exc) in PER_MODEL_ERRORS:
                    name_errors[name] = error_text(exc)
                else:
                    raise self._fail(exc) from None

        values: dict[str, Registry] = {}
        errors: dict[str, str] = {}
        for model in models:
            name = model.registry_name
            if name in registries:
                values[model.name] = registries[name]
            elif name in name_errors:
                errors[model.name] = name_errors[name]
            elif quote_name(name) is None:
                errors[model.name] = (
                    f"registered model {name}: a name with both ' and \" cannot be searched"
                )
            else:
                errors[model.name] = f"registered model {name} not found"
        return values, errors

    # ------------------------------------------------------------------ batched reads

    def _read_fleet(
        self, client: Any, names: Sequence[str]
    ) -> tuple[dict[str, Any], dict[str, list[Any]]]:
        """(registered models by name, newest versions by name) of ``names``.

        The registered-model search and the version search of each chunk of names do
        not depend on each other (a missing model simply has no versions), so up to
        ``read_threads`` of them run at once: round trips to a remote server overlap,
        and a local server's work overlaps this process' parsing of the last answer.
        """
        chunks = name_chunks(names, self.filter_chars)
        if self.read_threads <= 1:
            versions: dict[str, list[Any]] = {}
            for chunk in chunks:
                versions.update(self._versions(client, chunk))
            return self._registered_models(client, names), versions
        with ThreadPoolExecutor(self.read_threads, thread_name_prefix="mltui-mlflow") as pool:
            registered = pool.submit(self._registered_models, client, names)
            parts = [pool.submit(self._versions, client, chunk) for chunk in chunks]
            versions = {}
            for part in parts:
                versions.update(part.result())
            return registered.result(), versions

    def _registered_models(self, client: Any, names: Sequence[str]) -> dict[str, Any]:
        """The registered models among ``names`` that exist, by name (aliases, tags)."""
        wanted = set(names)
        found: dict[str, Any] = {}
        chunks = name_chunks(names, self.filter_chars)
        if len(chunks) > 1 and not self._registry_exceeds_page:
            # Many names: one page of the whole registry is cheaper than several
            # filtered searches when the registry fits it (the fleet is most of it).
            page = self._call(
                client.search_registered_models,
                max_results=self.registry_page_size,
                order_by=["name ASC"],
            )
            found.update((rm.name, rm) for rm in page if rm.name in wanted)
            if not getattr(page, "token", None):
                return found
            # A bigger registry: from now on ask for the fleet's names only.
            self._registry_exceeds_page = True
            chunks = name_chunks([name for name in names if name not in found], self.filter_chars)
        for chunk in chunks:
            token: str | None = None
            while True:
                page = self._call(
                    client.search_registered_models,
                    filter_string=name_in_filter(chunk),
                    max_results=self.registry_page_size,
                    order_by=["name ASC"],
                    page_token=token,
                )
                found.update((rm.name, rm) for rm in page if rm.name in wanted)
                token = getattr(page, "token", None)
                if not token or not page:
                    break
        return found

    def _versions(self, client: Any, names: Sequence[str]) -> dict[str, list[Any]]:
        """The newest ``max_versions`` versions of each of ``names`` (one chunk: their
        ``name IN (…)`` filter fits a request), newest first."""
        newest: dict[str, list[Any]] = {name: [] for name in names}
        kept: set[tuple[str, str]] = set()  # (name, version): offset pages may repeat one
        seen: set[str] = set()
        pending = list(names)
        token: str | None = None
        while pending:
            page = self._call(
                client.search_model_versions,
                filter_string=name_in_filter(pending),
                max_results=self.page_size,
                order_by=["name ASC", "version_number DESC"],
                page_token=token,
            )
            for mv in page:
                name, version = mv.name, str(mv.version)
                seen.add(name)
                have = newest.get(name)
                if have is None or len(have) >= self.max_versions or (name, version) in kept:
                    continue
                have.append(mv)
                kept.add((name, version))
            token = getattr(page, "token", None)
            if not token or not page:
                break
            if len(newest.get(page[-1].name, ())) >= self.max_versions:
                # The page ended inside a model that has its newest N: the rest of its
                # versions are of no use, so search again without the models seen
                # (ordered by name, they are complete) instead of paging through them.
                pending = [name for name in pending if name not in seen]
                token = None
        return newest

    def _prefetch_runs(self, client: Any, versions: Iterable[list[Any]]) -> None:
        """Fetch the source runs not cached yet, ``read_threads`` at a time.

        Only a first poll (or new versions) has any: at 1,000 models that is one
        request per version, so doing them concurrently shortens the cold poll. The
        first server failure stops the rest (a missing run is not a failure).
        """
        with self._runs_lock:
            missing = {
                mv.run_id
                for vs in versions
                for mv in vs
                if mv.run_id and mv.run_id not in self._runs
            }
        if len(missing) < 2 or self.read_threads <= 1:
            return
        pool = ThreadPoolExecutor(self.read_threads, thread_name_prefix="mltui-mlflow")
        try:
            futures = [pool.submit(self._run_facts, client, run_id) for run_id in missing]
            for future in as_completed(futures):
                future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _registry(self, client: Any, rm: Any, raw: list[Any]) -> Registry:
        """One registered model from its search results; run facts from the cache."""
        name = str(rm.name)
        aliases = {str(alias): str(version) for alias, version in (rm.aliases or {}).items()}
        tags = {str(k): str(v) for k, v in (rm.tags or {}).items()}

        raw = list(raw)
        seen = {str(mv.version) for mv in raw}
        # An alias may point below the newest window (an old champion): read it too,
        # so registry.version(champion) always has its metrics.
        for version in sorted(set(aliases.values()) - seen, key=_version_key, reverse=True):
            raw.append(self._call(client.get_model_version, name, version))
            seen.add(version)

        by_version: dict[str, list[str]] = {}
        for alias, version in sorted(aliases.items()):
            by_version.setdefault(version, []).append(alias)
        versions = sorted(
            (self._version(client, mv, tuple(by_version.get(str(mv.version), ()))) for mv in raw),
            key=lambda v: _version_key(v.version),
            reverse=True,
        )
        return Registry(name=name, versions=tuple(versions), aliases=aliases, tags=tags)

    def _version(self, client: Any, mv: Any, aliases: tuple[str, ...]) -> ModelVersion:
        facts = self._run_facts(client, mv.run_id) if mv.run_id else _NO_RUN
        created = (
            datetime.fromtimestamp(mv.creation_timestamp / 1000, tz=UTC)
            if mv.creation_timestamp
            else None
        )
        return ModelVersion(
            version=str(mv.version),
            run_id=mv.run_id or None,
            created=created,
            status=str(mv.status) if mv.status else None,
            source=mv.source or None,
            description=mv.description or None,
            tags={str(k): str(v) for k, v in (mv.tags or {}).items()},
            aliases=aliases,
            metrics=facts.metrics,
            params=facts.params,
            datasets=facts.datasets,
        )

    def _run_facts(self, client: Any, run_id: str) -> _RunFacts:
        with self._runs_lock:
            cached = self._runs.get(run_id)
        if cached is not None:
            return cached
        try:
            run = self._call(client.get_run, run_id)
        except Exception as exc:
            if error_code(exc) == "RESOURCE_DOES_NOT_EXIST":
                # A deleted run stays deleted: remember that, show the version without it.
                with self._runs_lock:
                    self._runs[run_id] = _NO_RUN
                return _NO_RUN
            if error_code(exc) in PER_MODEL_ERRORS:
                return _NO_RUN
            raise
        with self._runs_lock:
            self.run_fetches += 1
        facts = _RunFacts(
            metrics={str(k): float(v) for k, v in run.data.metrics.items()},
            params={str(k): str(v) for k, v in run.data.params.items()},
            datasets=tuple(_dataset(d) for d in (run.inputs.dataset_inputs if run.inputs else [])),
        )
        if run.info.status != "RUNNING":
            with self._runs_lock:
                self._runs[run_id] = facts
        return facts

    # ------------------------------------------------------------------ discovery

    def discover(self) -> list[ModelConfig]:
        """Every registered model, as a ModelConfig named after it (all pages)."""
        try:
            client = self.client
            found: list[ModelConfig] = []
            token: str | None = None
            while True:
                page = self._call(
                    client.search_registered_models,
                    max_results=self.registry_page_size,
                    order_by=["name ASC"],
                    page_token=token,
                )
                found.extend(ModelConfig(name=rm.name, registered_model=rm.name) for rm in page)
                token = getattr(page, "token", None)
                if not token or not page:
                    return found
        except SourceError:
            raise
        except Exception as exc:
            raise self._fail(exc) from None

    def close(self) -> None:
        with self._client_lock:
            self._client = None


def _version_key(version: str) -> tuple[int, str]:
    """Sort "10" after "9"; non-numeric versions (never seen in MLflow) sort first."""
    return (int(version), "") if version.isdigit() else (-1, version)


def _dataset(dataset_input: Any) -> DatasetRef:
    """A run's dataset input as a DatasetRef; the source JSON is unpacked to its URI."""
    ds = dataset_input.dataset
    context = next(
        (t.value for t in (dataset_input.tags or []) if t.key == DATASET_CONTEXT_TAG), None
    )
    return DatasetRef(
        name=ds.name,
        digest=ds.digest or None,
        source=_source_uri(ds.source),
        source_type=ds.source_type or None,
        context=context,
    )


def _source_uri(source: str | None) -> str | None:
    """MLflow stores a dataset source as JSON (``{"uri": …}``, ``{"url": …}``, ``{"path": …}``)."""
    if not source:
        return None
    try:
        parsed = json.loads(source)
    except ValueError:
        return source
    if isinstance(parsed, dict):
        for key in ("uri", "url", "path", "table_name", "dataset_name"):
            value = parsed.get(key)
            if isinstance(value, str) and value:
                return value
    return source
