"""Run the sources concurrently and merge them into one FleetSnapshot.

Each source polls in its own daemon thread and is waited for at most its
``deadline``; a source that is late or fails marks its fields unknown (or keeps
the previous poll's data, marked stale) while the other sources still arrive.

A late poll cannot be cancelled (a thread blocked in a request runs on), so a source
is never polled again while its previous poll still runs: polls of a slow source
would otherwise pile up, each making the server slower for the next. Such a source
is reported as "previous poll still running (Ns)"; once that late poll finishes, its
result is used by the next ``collect`` whose own poll of the source misses the
deadline (it is newer than anything shown).
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from mltui.collectors.base import Source, SourceResult, utcnow
from mltui.config import Config, ModelConfig
from mltui.fleet import FleetSnapshot, ModelState, Registry, Rollout, SourceStatus

# source name -> "module:Class"; imported only when the config names the source,
# so `mltui --check` on a Prometheus-only config never imports mlflow or kubernetes.
SOURCE_CLASSES: dict[str, str] = {
    "prometheus": "mltui.collectors.prometheus:PrometheusSource",
    "scrape": "mltui.collectors.scrape:ScrapeSource",
    "mlflow": "mltui.collectors.mlflow:MlflowSource",
    "kubernetes": "mltui.collectors.kubernetes:KubernetesSource",
    "alertmanager": "mltui.collectors.alertmanager:AlertmanagerSource",
    "drift": "mltui.collectors.drift:DriftSource",
}

# Which ModelState field each source fills. "scrape" stands in for Prometheus.
FIELD_OF = {
    "prometheus": "traffic",
    "scrape": "traffic",
    "mlflow": "registry",
    "kubernetes": "rollout",
    "alertmanager": "alerts",
    "drift": "drift",
}

# Name under which a source appears in the snapshot and the --check JSON.
REPORTED_AS = {"scrape": "prometheus"}

FAST_SOURCES = frozenset({"prometheus", "scrape", "mlflow", "kubernetes", "alertmanager"})


def configured_sources(config: Config) -> list[str]:
    """Names of the sources the config asks for, in display order."""
    names: list[str] = []
    if config.prometheus is not None:
        names.append("prometheus")
    elif config.scrape is not None:
        names.append("scrape")
    if config.mlflow_uri:
        names.append("mlflow")
    if config.kubernetes is not None or any(
        m.target is not None and m.target.kind != "alias" for m in config.models
    ):
        names.append("kubernetes")
    if config.alertmanager is not None:
        names.append("alertmanager")
    if any(m.drift is not None for m in config.models):
        names.append("drift")
    return names


def build_source(name: str, config: Config) -> Source[Any]:
    module, _, cls = SOURCE_CLASSES[name].partition(":")
    source: Source[Any] = getattr(importlib.import_module(module), cls)(config)
    return source


class _Poll:
    """One poll of one source, running in its own thread (which may outlive ``collect``)."""

    def __init__(self, source: Source[Any], models: Sequence[ModelConfig]) -> None:
        self.started = time.monotonic()
        self.result: SourceResult[Any] | None = None
        self.used = False
        """Whether a snapshot has shown this poll's result (so it is not shown twice)."""
        self.thread = threading.Thread(
            target=self._run, args=(source, models), name=f"mltui-{source.name}", daemon=True
        )

    def _run(self, source: Source[Any], models: Sequence[ModelConfig]) -> None:
        self.result = source.poll(models)

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def take(self) -> SourceResult[Any] | None:
        """The result, once finished and not yet shown."""
        if self.result is None or self.used:
            return None
        self.used = True
        return self.result


class FleetCollector:
    """Polls the configured sources; remembers the last good data of each."""

    def __init__(self, config: Config, sources: Mapping[str, Source[Any]] | None = None) -> None:
        self.config = config
        self._sources: dict[str, Source[Any]] = dict(sources or {})
        self._names = list(self._sources) if sources is not None else configured_sources(config)
        self._models: list[ModelConfig] | None = list(config.models) or None
        self.last: FleetSnapshot | None = None
        self._polls: dict[str, _Poll] = {}
        """The latest poll started of each source (fast and drift polls run in parallel
        from different threads, hence the lock)."""
        self._polls_lock = threading.Lock()

    @property
    def source_names(self) -> list[str]:
        return list(self._names)

    def source(self, name: str) -> Source[Any]:
        if name not in self._sources:
            self._sources[name] = build_source(name, self.config)
        return self._sources[name]

    def models(self) -> list[ModelConfig]:
        """The configured models, or those discovered from MLflow (cached once found)."""
        if self._models is not None:
            return self._models
        if "mlflow" in self._names:
            discover = getattr(self.source("mlflow"), "discover", None)
            if discover is not None:
                try:
                    found = list(discover())
                except Exception:  # noqa: BLE001 - the mlflow poll reports the error itself
                    found = []
                if found and "kubernetes" in self._names:
                    # Match discovered models to objects labelled mltui.io/model=<name>.
                    targets = getattr(self.source("kubernetes"), "discover_targets", None)
                    if targets is not None:
                        try:
                            found = list(targets(found))
                        except Exception:  # noqa: BLE001 - the kubernetes poll reports it
                            pass
                if found:
                    self._models = found
                return found
        return []

    def collect(self, only: Iterable[str] | None = None) -> FleetSnapshot:
        """Poll ``only`` these sources (default: all but drift when it is slow) and merge.

        Sources not polled keep the values of the last snapshot as they were.
        """
        names = [n for n in self._names if only is None or n in set(only)]
        models = self.models()
        results = self._poll_all(names, models)
        snapshot = merge(self.config, models, results, self.last, self._names)
        self.last = snapshot
        return snapshot

    def _poll_all(
        self, names: Sequence[str], models: Sequence[ModelConfig]
    ) -> dict[str, SourceResult[Any]]:
        results: dict[str, SourceResult[Any]] = {}
        started: list[tuple[str, _Poll, float, SourceResult[Any] | None]] = []
        for name in names:
            try:
                source = self.source(name)
            except Exception as exc:  # a broken install or config: a value, not a crash
                from mltui.secrets import error_text

                results[name] = _error(name, error_text(exc))
                continue
            with self._polls_lock:
                previous = self._polls.get(name)
                if previous is not None and previous.running:
                    # Never a second poll of the same source: report it, keep its data stale.
                    age = time.monotonic() - previous.started
                    results[name] = _error(name, f"previous poll still running ({age:.0f}s)")
                    continue
                # A poll we gave up on that has finished since: its result is newer than
                # what is shown, a fallback should this poll be late too.
                late = previous.take() if previous is not None else None
                poll = _Poll(source, models)
                self._polls[name] = poll
            poll.thread.start()
            started.append((name, poll, source.deadline, late))
        begun = time.monotonic()
        for name, poll, deadline, late in started:
            poll.thread.join(max(0.0, deadline - (time.monotonic() - begun)))
            with self._polls_lock:
                result = poll.take()
            if result is None:
                result = late or _error(name, f"timed out after {deadline:g}s")
            results[name] = result
        return results

    def running(self) -> dict[str, float]:
        """Sources whose last poll still runs (the orchestrator gave up waiting), with
        seconds since it started."""
        now = time.monotonic()
        with self._polls_lock:
            return {n: now - p.started for n, p in self._polls.items() if p.running}

    def close(self) -> None:
        for source in self._sources.values():
            try:
                source.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass


def _error(name: str, message: str) -> SourceResult[Any]:
    return SourceResult(status=SourceStatus(name=name, status="error", error=message))


def _alias_rollout(registry: Registry | None, name: str) -> Rollout:
    """An alias target has no cluster: the registry's aliases are its rollout."""
    if registry is None or registry.champion is None:
        return Rollout(kind="alias", name=name, state="unknown", message="no champion alias")
    canary = registry.challenger if registry.challenger != registry.champion else None
    weight_tag = registry.tags.get("mltui.canary_weight")
    weight = int(weight_tag) if canary and weight_tag and weight_tag.isdigit() else None
    return Rollout(
        kind="alias",
        name=name,
        state="progressing" if canary and weight else "healthy",
        serving_version=registry.champion,
        canary_version=canary,
        canary_weight=weight,
        message=f"challenger v{canary} gets {weight}% of traffic" if canary and weight else None,
    )


def covers(source: str, model: ModelConfig) -> bool:
    """Whether ``source`` has anything to say about ``model`` (so its absence is an error)."""
    if source == "kubernetes":
        return model.target is not None and model.target.kind != "alias"
    if source == "drift":
        return model.drift is not None
    return True


def merge(
    config: Config,
    models: Sequence[ModelConfig],
    results: Mapping[str, SourceResult[Any]],
    previous: FleetSnapshot | None,
    configured: Sequence[str],
) -> FleetSnapshot:
    """Combine this poll's results with the last snapshot into a new snapshot."""
    sources: dict[str, SourceStatus] = {}
    for name in configured:
        shown = REPORTED_AS.get(name, name)
        result = results.get(name)
        if result is not None:
            status = replace(result.status, name=shown)
            if status.status == "error" and previous is not None:
                before = previous.sources.get(shown)
                # Keep when the shown data was fetched, so the UI can show its age.
                status = replace(status, fetched_at=before.fetched_at if before else None)
            sources[shown] = status
        elif previous is not None and shown in previous.sources:
            sources[shown] = previous.sources[shown]
        else:
            sources[shown] = SourceStatus(name=shown, status="error", error="not polled yet")
    for name in ("prometheus", "mlflow", "kubernetes", "alertmanager"):
        sources.setdefault(name, SourceStatus(name=name, status="not_configured"))

    states: list[ModelState] = []
    for model in models:
        old = previous.model(model.name) if previous is not None else None
        fields: dict[str, Any] = {}
        errors: dict[str, str] = dict(old.errors) if old is not None else {}
        stale: set[str] = set(old.stale) if old is not None else set()
        for name in configured:
            if not covers(name, model):
                continue
            field_name = FIELD_OF[name]
            shown = REPORTED_AS.get(name, name)
            result = results.get(name)
            old_value = getattr(old, field_name) if old is not None else None
            if result is None:  # not polled this time: keep what we had as it was
                if old_value is not None:
                    fields[field_name] = old_value
                continue
            if result.status.status == "ok" and model.name in result.values:
                fields[field_name] = result.values[model.name]
                errors.pop(shown, None)
                stale.discard(shown)
            else:
                error = result.errors.get(model.name) or result.status.error or "no data"
                errors[shown] = error
                if result.status.status == "error" and old_value not in (None, ()):
                    fields[field_name] = old_value  # stale beats blank
                    stale.add(shown)
                else:
                    stale.discard(shown)
        if model.target is not None and model.target.kind == "alias":
            fields["rollout"] = _alias_rollout(fields.get("registry"), model.name)
        states.append(
            ModelState(
                name=model.name,
                registered_model=model.registry_name,
                preset=model.metrics,
                errors=errors,
                stale=frozenset(stale),
                **fields,
            )
        )
    return FleetSnapshot(generated_at=utcnow(), sources=sources, models=tuple(states))
