"""Data drift per model: Evidently in a worker process, cached, or a PromQL read.

``DriftSource`` is the "drift" collector. For each model with a ``[models.drift]``
table it either reads the share from Prometheus (``drift_query``) or computes it:

1. find the files: the reference (a path/glob, or ``"mlflow"``: the champion
   version's logged training dataset or a named run artifact) and the current
   inference logs (a path/glob);
2. build a cache key from the files' identities (path, size, mtime), the window
   and the settings; an unchanged key returns the previous result, so refreshing
   never recomputes unchanged data (``computations`` counts real computations);
   The cache is in memory and on disk (``drift_cache``), so a new process (a cron
   ``mltui --check``) on unchanged files needs no worker, pandas or Evidently;
3. otherwise hand a :class:`~mltui.collectors.drift_worker.DriftJob` to a worker
   process (Evidently is CPU-bound; in a thread it would hold the GIL and freeze
   the UI), wait within the poll's budget, and turn the result into :class:`fleet.Drift`.
   A job still running when the budget ends keeps running; a later poll collects it.

The current window is measured back from the newest timestamp in the current
data, not from the wall clock (see ``drift_worker.keep_window`` for why); the
result's ``note`` says how old that newest row is.

Errors are per model and phrased for the user: a missing reference run or
artifact, MLflow unreachable, an empty window, no common columns, an all-null
column, mixed types. They are redacted here, in the parent process (the worker
does not know the registered secrets).
"""

from __future__ import annotations

import glob
import hashlib
import json
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mltui.collectors import drift_cache
from mltui.collectors.base import Source, SourceError, utcnow
from mltui.collectors.drift_worker import DriftJob
from mltui.config import Config, DriftConfig, ModelConfig
from mltui.durations import humanize_age
from mltui.fleet import Drift, finite
from mltui.secrets import error_text, redact

COMPUTE_TIMEOUT = 600.0
"""Longest one model's computation may run: a first run on big files is slow
(reading + Evidently on the sample), but a wedged worker must not stall drift forever."""

RESOLVE_TIMEOUT = 60.0
"""Longest resolving reference = "mlflow" may take (MLflow import + a few requests)."""

FETCH_BUDGET = COMPUTE_TIMEOUT + RESOLVE_TIMEOUT
"""Longest one poll waits on the worker, however many models need computing; what is
not done by then keeps computing and arrives with a later poll."""

DEADLINE_MARGIN = 30.0
"""The orchestrator's deadline beyond the budget (globbing, stat, hashing, cache writes)."""


def _cache_dir() -> str:
    """Where MLflow run artifacts used as references are downloaded (once per run)."""
    from mltui.locations import cache_dir

    return str(cache_dir() / "drift-references")


def _start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker with the real stderr.

    Inside the TUI, Textual replaces ``sys.stderr`` with an object whose ``fileno()``
    is -1; the tracker hands stderr's fd to the process it starts, and fork_exec then
    fails with "bad value(s) in fds_to_keep", so no worker could ever start.
    """
    from multiprocessing import resource_tracker

    saved = sys.stderr
    try:
        sys.stderr = sys.__stderr__
        resource_tracker.ensure_running()
    finally:
        sys.stderr = saved


def _stop_resource_tracker() -> None:
    """Stop the tracker the worker pool needed, so mltui leaves no process behind.

    It would exit with mltui anyway; this matters when mltui runs inside a longer-lived
    process (tests, an embedding app). ``_stop`` is private; without it, do nothing.
    """
    from multiprocessing import resource_tracker

    stop = getattr(resource_tracker._resource_tracker, "_stop", None)
    if stop is not None:
        try:
            stop()
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass


class DriftSource(Source[Drift]):
    """The "drift" collector: Evidently drift per model, computed in a worker process.

    Timing, so that polls stay bounded and never overlap:

    - one fetch at a time: a poll that finds another still running returns at once
      with what is cached and "still computing" for the rest (``_busy``);
    - a fetch spends at most ``budget`` seconds; when it runs out, the job in the
      worker is *not* killed: it keeps running, and the next poll collects its
      result (``_Running``). The orchestrator's ``deadline`` is ``budget`` plus a
      margin, so it never has to give up on a fetch and lose the finished models;
    - the worker runs one job at a time; a job running longer than its own limit
      (COMPUTE_TIMEOUT, RESOLVE_TIMEOUT) is wedged and killed.
    """

    name = "drift"

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.computations = 0
        """How many times drift was really computed (cache misses); tests assert on it."""
        self.budget = FETCH_BUDGET
        """Longest one fetch waits on the worker, in seconds (tests lower it)."""
        self._cache: dict[str, tuple[str, Drift | str]] = {}
        """model name -> (cache key, result or error): only the latest per model is kept.
        Errors are cached too: unchanged bad files give the same error without recomputing.
        Also kept on disk (drift_cache), for the next process."""
        self._fetch_lock = threading.Lock()
        self._running: _Running | None = None
        """The job in the worker, if any; only the thread holding _fetch_lock touches it."""
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False
        self._pool_lock = threading.Lock()
        self._http: Any = None

    # ------------------------------------------------------------ Source API

    @property
    def timeout(self) -> float:
        return COMPUTE_TIMEOUT

    @property
    def deadline(self) -> float:
        # Every wait inside a fetch ends by ``budget``; the margin covers the cheap
        # parts (globbing, stat, hashing, writing the cache).
        return self.budget + DEADLINE_MARGIN

    def fetch(self, models: Sequence[ModelConfig]) -> tuple[dict[str, Drift], dict[str, str]]:
        if not self._fetch_lock.acquire(blocking=False):
            return self._busy(models, "an earlier drift poll is still running")
        try:
            until = time.monotonic() + self.budget
            values: dict[str, Drift] = {}
            errors: dict[str, str] = {}
            for model in models:
                if model.drift is None:
                    continue
                try:
                    values[model.name] = self._drift_for(model, until)
                except _StillComputing as exc:
                    # The last result (older files) beats a blank until the new one lands.
                    previous = self._previous(model.name, str(exc), "newer data still computing")
                    if isinstance(previous, Drift):
                        values[model.name] = previous
                    else:
                        errors[model.name] = previous
                except SourceError as exc:
                    errors[model.name] = redact(str(exc))
                except Exception as exc:  # noqa: BLE001 - one model's failure is that model's error
                    errors[model.name] = error_text(exc)
            return values, errors
        finally:
            self._fetch_lock.release()

    def close(self) -> None:
        with self._pool_lock:
            # A poll still running in a daemon thread must not start a new worker after this.
            self._closed = True
            pool, self._pool = self._pool, None
        self._running = None
        if pool is not None:
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.kill()
            pool.shutdown(wait=True, cancel_futures=True)
            # The tracker stops only once every process holding its pipe has ended;
            # with another DriftSource's worker alive (two sources in one process)
            # stopping it would block in waitpid for as long as that worker lives.
            if not multiprocessing.active_children():
                _stop_resource_tracker()
        if self._http is not None:
            self._http.close()
            self._http = None

    # ------------------------------------------------------------ one model

    def drift_for(self, model: ModelConfig) -> Drift:
        """This model's drift: from the cache, from Prometheus, or computed now.

        Waits for a fetch in progress (up to ``budget``), then computes within ``budget``.
        """
        if not self._fetch_lock.acquire(timeout=self.budget):
            raise SourceError("drift is still being computed by another poll; try again later")
        try:
            return self._drift_for(model, time.monotonic() + self.budget)
        finally:
            self._fetch_lock.release()

    def _drift_for(self, model: ModelConfig, until: float) -> Drift:
        cfg = _drift_config(model)
        if cfg.drift_query:
            drift = self._query(model, cfg.drift_query)
            self._cache[model.name] = ("query", drift)  # for _busy
            return drift
        job, key = self._job(model, cfg, until)
        cached = self._cache.get(model.name)
        hit = cached[1] if cached is not None and cached[0] == key else drift_cache.load(key)
        if hit is not None:
            self._cache[model.name] = (key, hit)
            if isinstance(hit, str):
                raise SourceError(hit)
            return hit
        return self._compute(model.name, key, job, until)

    def export_html(self, model: ModelConfig, path: str | os.PathLike[str]) -> Path:
        """Save the full Evidently HTML report for ``model`` at ``path``; SourceError on failure.

        Computes anew (the report lives in the worker), and caches the result it got.
        Waits for a drift poll in progress to end first (the worker runs one job at a time).
        """
        cfg = _drift_config(model)
        if cfg.drift_query:
            raise SourceError(
                f"{model.name}: drift comes from drift_query (Prometheus); there is no report to export"
            )
        target = Path(path).expanduser().resolve()
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SourceError(f"cannot write {target}: {error_text(exc)}") from None
        if not self._fetch_lock.acquire(timeout=self.budget):
            raise SourceError("drift is still being computed by a poll; export again when it ends")
        try:
            # The export may take the whole COMPUTE_TIMEOUT, however long the poll budget.
            until = time.monotonic() + max(self.budget, COMPUTE_TIMEOUT)
            job, key = self._job(model, cfg, until)
            job = DriftJob(**{**job.__dict__, "html_path": str(target)})
            self._compute(model.name, key, job, until, tag=f"{key}|html:{target}")
        finally:
            self._fetch_lock.release()
        return target

    def _busy(
        self, models: Sequence[ModelConfig], why: str
    ) -> tuple[dict[str, Drift], dict[str, str]]:
        """What a poll can say without the worker: the cached results, "still computing" for the rest."""
        values: dict[str, Drift] = {}
        errors: dict[str, str] = {}
        for model in models:
            if model.drift is None:
                continue
            cached = self._cache.get(model.name)
            if cached is not None and isinstance(cached[1], str):
                errors[model.name] = cached[1]  # a data error stays that error
                continue
            previous = self._previous(model.name, f"drift is still being computed ({why})")
            if isinstance(previous, Drift):
                values[model.name] = previous
            else:
                errors[model.name] = previous
        return values, errors

    def _previous(self, name: str, why: str, note: str | None = None) -> Drift | str:
        """The last result known for ``name`` (its note extended by ``note``), else ``why``."""
        cached = self._cache.get(name)
        if cached is None or isinstance(cached[1], str):
            return why
        drift = cached[1]
        if note is None or note in (drift.note or ""):
            return drift
        return replace(drift, note=" · ".join(filter(None, [drift.note, note])))

    # ------------------------------------------------------------ inputs and key

    def _job(self, model: ModelConfig, cfg: DriftConfig, until: float) -> tuple[DriftJob, str]:
        assert cfg.reference is not None and cfg.current is not None  # config validates
        if cfg.reference == "mlflow":
            ref_identity, ref_files = self._resolve_mlflow(model, cfg, until)
        else:
            ref_files = expand(cfg.reference, "reference")
            ref_identity = "files"
        cur_files = expand(cfg.current, "current")
        job = DriftJob(
            model=model.name,
            reference_files=ref_files,
            current_files=cur_files,
            timestamp_column=cfg.timestamp_column,
            window=cfg.window,
            columns=tuple(cfg.columns) if cfg.columns else None,
            exclude=tuple(cfg.exclude),
            method=cfg.method,
            threshold=cfg.threshold,
            column_methods=dict(cfg.column_methods),
            column_thresholds=dict(cfg.column_thresholds),
            sample_size=cfg.sample_size,
        )
        key = json.dumps(
            {
                "reference": [ref_identity, [file_identity(f) for f in ref_files]],
                "current": [file_identity(f) for f in cur_files],
                "settings": cfg.model_dump(mode="json"),
            },
            sort_keys=True,
            default=str,
        )
        return job, hashlib.sha256(key.encode()).hexdigest()

    def _resolve_mlflow(
        self, model: ModelConfig, cfg: DriftConfig, until: float
    ) -> tuple[str, tuple[str, ...]]:
        uri = self.config.mlflow_uri
        if not uri:
            raise SourceError(
                'reference = "mlflow" needs an MLflow tracking URI ([mlflow] tracking_uri '
                "or $MLFLOW_TRACKING_URI)"
            )
        timeout = self.config.mlflow.timeout if self.config.mlflow is not None else 5.0
        from mltui.collectors import drift_worker

        args = (uri, timeout, model.registry_name, cfg.reference_artifact, _cache_dir())
        status, value, _ = self._call(
            drift_worker.run_resolve,
            args,
            tag=f"resolve:{json.dumps(args)}",
            limit=RESOLVE_TIMEOUT,
            until=until,
            what="resolving the MLflow reference",
        )
        if status != "ok":
            raise SourceError(redact(str(value)))
        identity, files = value
        return str(identity), tuple(files)

    # ------------------------------------------------------------ worker

    def _compute(
        self, name: str, key: str, job: DriftJob, until: float, tag: str | None = None
    ) -> Drift:
        """Compute in the worker; the result (or data error) is cached in memory and on disk."""
        from mltui.collectors import drift_worker

        status, value, seconds = self._call(
            drift_worker.run_job,
            (job,),
            tag=tag or key,
            limit=COMPUTE_TIMEOUT,
            until=until,
            what="computing drift",
            on_done=lambda outcome: self._store(name, key, *outcome),
            counts=True,
        )
        result = self._store(name, key, status, value, seconds)
        if isinstance(result, str):
            raise SourceError(result)
        return result

    def _store(self, name: str, key: str, status: str, value: Any, seconds: float) -> Drift | str:
        """Turn a worker outcome into the cached result: a Drift, or the redacted error.

        Redacted here, in the parent: the worker process has no registered secrets.
        """
        result: Drift | str
        if status == "ok":
            result = to_drift(value, computed_at=utcnow(), seconds=seconds)
        else:
            result = redact(str(value))
        self._cache[name] = (key, result)
        drift_cache.save(key, result)
        return result

    def _worker_pool(self) -> ProcessPoolExecutor:
        with self._pool_lock:
            if self._closed:
                raise SourceError("the drift source is closed")
            if self._pool is None:
                _start_resource_tracker()
                # spawn: a clean interpreter (no copy of the UI's threads or memory);
                # one process, kept warm so Evidently is imported once. An executor
                # rather than multiprocessing.Pool: a worker that dies is reported
                # (BrokenProcessPool) instead of being respawned in a loop.
                self._pool = ProcessPoolExecutor(
                    max_workers=1, mp_context=multiprocessing.get_context("spawn")
                )
            return self._pool

    def _kill_pool(self) -> None:
        """Stop the worker now (it may be stuck in a long computation)."""
        self._running = None
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is None:
            return
        # The executor has no public "terminate"; its processes are reachable and
        # killing them is the only way to stop a computation already running.
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    def _call(
        self,
        func: Any,
        args: tuple[Any, ...],
        *,
        tag: str,
        limit: float,
        until: float,
        what: str,
        on_done: Any = None,
        counts: bool = False,
    ) -> tuple[str, Any, float]:
        """Run ``func(*args)`` in the worker: its ("ok"|"error", value) and the seconds it ran.

        ``tag`` names what the job computes: a job with the same tag already running
        (left by an earlier poll whose budget ran out) is waited for, not started
        again. A different job still running is waited for first, and ``on_done``
        stores its result when it arrives. Waits end by ``until`` (the fetch's
        budget: _StillComputing, the job keeps running) or when a job has run for
        its ``limit`` (_Timeout, the worker is killed).
        """
        running = self._running
        if running is not None and running.tag != tag:
            try:
                outcome = self._wait(running, until, f"the worker is busy {running.what}")
            except _Timeout:
                pass  # that job was wedged and is killed: not this model's error
            else:
                if running.on_done is not None:
                    running.on_done(outcome)
            running = None
        if running is None:
            try:
                future = self._worker_pool().submit(func, *args)
            except (BrokenProcessPool, RuntimeError):
                self._kill_pool()  # a dead pool: the next poll starts a fresh one
                raise _Timeout(f"{what}: the drift worker process died") from None
            if counts:
                self.computations += 1
            running = _Running(tag, future, time.monotonic(), limit, what, on_done)
            self._running = running
        return self._wait(running, until, what)

    def _wait(self, running: _Running, until: float, what: str) -> tuple[str, Any, float]:
        """Wait for ``running`` until ``until`` at most; see :meth:`_call`."""
        now = time.monotonic()
        job_left = running.started + running.limit - now
        poll_left = until - now
        try:
            status, value = running.future.result(max(0.0, min(job_left, poll_left)))
        except FutureTimeout:
            if job_left <= poll_left:
                self._kill_pool()  # wedged: the next job starts with a fresh worker
                raise _Timeout(
                    f"{running.what} took longer than {running.limit:g}s; "
                    "lower sample_size or the window"
                ) from None
            elapsed = time.monotonic() - running.started
            raise _StillComputing(
                f"drift is still being computed ({what}, {elapsed:.0f}s so far); "
                "the next poll collects it"
            ) from None
        except BrokenProcessPool:
            self._kill_pool()
            raise _Timeout(
                f"{running.what}: the drift worker process died (out of memory?)"
            ) from None
        except Exception as exc:  # noqa: BLE001 - e.g. an unpicklable result: this job's error
            self._running = None
            return "error", error_text(exc), time.monotonic() - running.started
        self._running = None
        return status, value, time.monotonic() - running.started

    # ------------------------------------------------------------ drift_query

    def _query(self, model: ModelConfig, query: str) -> Drift:
        prom = self.config.prometheus
        if prom is None:
            raise SourceError("drift_query needs [prometheus] url")
        import httpx

        if self._http is None:
            self._http = httpx.Client(
                timeout=prom.timeout,
                verify=prom.verify_tls,
                headers={k: v.get_secret_value() for k, v in prom.headers.items()},
            )
        url = prom.url.rstrip("/") + "/api/v1/query"
        self.count_request()
        try:
            response = self._http.get(url, params={"query": query})
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise SourceError(f"drift_query: {error_text(exc)}") from None
        if response.status_code != 200 or body.get("status") != "success":
            raise SourceError(
                f"drift_query: Prometheus said {response.status_code}: "
                f"{body.get('error') or body.get('status')}"
            )
        result = body.get("data", {}).get("result", [])
        kind = body.get("data", {}).get("resultType")
        if kind == "scalar":
            share = finite(result[1]) if result else None
        elif result:
            if len(result) > 1:
                raise SourceError(
                    f"drift_query returned {len(result)} series; it must select one (add label matchers)"
                )
            share = finite(result[0]["value"][1])
        else:
            share = None
        if share is None:
            raise SourceError("drift_query returned no value (no series matches, or NaN)")
        return Drift(share=share, computed_at=utcnow(), note="share from drift_query (Prometheus)")


# ---------------------------------------------------------------- helpers


class _Timeout(SourceError):
    """The worker did not answer in time (not cached: the next poll tries again)."""


class _StillComputing(SourceError):
    """This fetch's budget ran out while the worker is still busy (it keeps going)."""


@dataclass
class _Running:
    """The one job in the worker process (it runs one at a time)."""

    tag: str
    """What it computes: a cache key (+ HTML path), or the MLflow reference to resolve."""
    future: Future[tuple[str, Any]]
    started: float
    """time.monotonic() at submission: the job is wedged past started + limit."""
    limit: float
    what: str
    on_done: Any
    """Called with (status, value, seconds) when another job's call collects the result."""


def _drift_config(model: ModelConfig) -> DriftConfig:
    if model.drift is None:
        raise SourceError(f"{model.name} has no [models.drift] table")
    return model.drift


def is_remote(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def expand(pattern: str, what: str) -> tuple[str, ...]:
    """Files matching a path/glob (local, or any fsspec URL such as s3://…)."""
    if is_remote(pattern):
        try:
            import fsspec

            fs, _, paths = fsspec.get_fs_token_paths(pattern)
        except ImportError as exc:
            raise SourceError(
                f"{what} {pattern}: reading this URL needs an fsspec driver ({exc.name or exc}); "
                "e.g. pip install s3fs for s3://"
            ) from None
        except Exception as exc:  # noqa: BLE001 - network/credential errors are the user's to see
            raise SourceError(f"{what} {pattern}: {error_text(exc)}") from None
        protocol = pattern.split("://", 1)[0]
        found = tuple(sorted(p if "://" in p else f"{protocol}://{p}" for p in paths))
    else:
        path = os.path.expanduser(pattern.removeprefix("file://"))
        found = tuple(sorted(glob.glob(path))) if glob.has_magic(path) else (path,)
        found = tuple(f for f in found if os.path.isfile(f)) if glob.has_magic(path) else found
        if not glob.has_magic(path) and not os.path.exists(path):
            raise SourceError(f"{what} file not found: {path}")
    if not found:
        raise SourceError(f"no {what} files match {pattern}")
    return found


def file_identity(path: str) -> tuple[str, int, int]:
    """(path, size, mtime in ns): changes whenever the file is rewritten."""
    if is_remote(path):
        return (path, 0, 0)  # remote objects: identified by URL only (no cheap stat)
    try:
        st = os.stat(path)
    except OSError:
        return (path, -1, -1)
    return (path, st.st_size, st.st_mtime_ns)


def to_drift(result: dict[str, Any], computed_at: datetime, seconds: float) -> Drift:
    """The worker's plain dict as a fleet.Drift."""
    features = tuple(drift_cache.feature_from_dict(f) for f in result["features"])
    notes = []
    newest = result.get("newest")
    if isinstance(newest, datetime):
        age = (computed_at - newest.astimezone(UTC)).total_seconds()
        notes.append(f"newest current row {humanize_age(age)} old")
    ref_n, cur_n = result.get("sampled", (None, None))
    if ref_n is not None and (ref_n < result["reference_rows"] or cur_n < result["current_rows"]):
        notes.append(f"sampled {ref_n}/{cur_n} rows")
    notes.append(f"computed in {seconds:.1f}s")
    return Drift(
        share=finite(result["share"]),
        drifted=tuple(str(c) for c in result["drifted"]),
        features=features,
        reference_rows=result["reference_rows"],
        current_rows=result["current_rows"],
        computed_at=computed_at,
        note=" · ".join(notes),
    )
