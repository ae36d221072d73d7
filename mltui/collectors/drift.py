"""Data drift per model: Evidently in a worker process, cached, or a PromQL read.

``DriftSource`` is the "drift" collector. For each model with a ``[models.drift]``
table it either reads the share from Prometheus (``drift_query``) or computes it:

1. find the files: the reference (a path/glob, or ``"mlflow"``: the champion
   version's logged training dataset or a named run artifact) and the current
   inference logs (a path/glob);
2. build a cache key from the files' identities (path, size, mtime), the window
   and the settings; an unchanged key returns the previous result, so refreshing
   never recomputes unchanged data (``computations`` counts real computations);
3. otherwise hand a :class:`~mltui.collectors.drift_worker.DriftJob` to a worker
   process (Evidently is CPU-bound; in a thread it would hold the GIL and freeze
   the UI), wait a bounded time, and turn the result into :class:`fleet.Drift`.

The current window is measured back from the newest timestamp in the current
data, not from the wall clock (see ``drift_worker.keep_window`` for why); the
result's ``note`` says how old that newest row is.

Errors are per model and phrased for the user: a missing reference run or
artifact, an empty window, no common columns, an all-null column, mixed types.
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
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mltui.collectors.base import Source, SourceError, utcnow
from mltui.collectors.drift_worker import DriftJob
from mltui.config import Config, DriftConfig, ModelConfig
from mltui.durations import humanize_age
from mltui.fleet import Drift, FeatureDrift, finite
from mltui.secrets import error_text

COMPUTE_TIMEOUT = 600.0
"""Longest one model's computation may take: a first run on big files is slow
(reading + Evidently on the sample), but a wedged worker must not stall drift forever."""

RESOLVE_TIMEOUT = 60.0
"""Longest resolving reference = "mlflow" may take (MLflow import + a few requests)."""


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
    """The "drift" collector: Evidently drift per model, computed in a worker process."""

    name = "drift"

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.computations = 0
        """How many times drift was really computed (cache misses); tests assert on it."""
        self._cache: dict[str, tuple[str, Drift | str]] = {}
        """model name -> (cache key, result or error): only the latest per model is kept.
        Errors are cached too: unchanged bad files give the same error without recomputing."""
        self._pool: ProcessPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._http: Any = None

    # ------------------------------------------------------------ Source API

    @property
    def timeout(self) -> float:
        return COMPUTE_TIMEOUT

    @property
    def deadline(self) -> float:
        # Generous (a first compute on big files takes a while) but bounded: the
        # worker is killed after COMPUTE_TIMEOUT per model, so a poll always ends.
        return COMPUTE_TIMEOUT + RESOLVE_TIMEOUT + 30.0

    def fetch(self, models: Sequence[ModelConfig]) -> tuple[dict[str, Drift], dict[str, str]]:
        values: dict[str, Drift] = {}
        errors: dict[str, str] = {}
        for model in models:
            if model.drift is None:
                continue
            try:
                values[model.name] = self.drift_for(model)
            except SourceError as exc:
                errors[model.name] = str(exc)
            except Exception as exc:  # noqa: BLE001 - one model's failure is that model's error
                errors[model.name] = error_text(exc)
        return values, errors

    def close(self) -> None:
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.kill()
            pool.shutdown(wait=True, cancel_futures=True)
            _stop_resource_tracker()
        if self._http is not None:
            self._http.close()
            self._http = None

    # ------------------------------------------------------------ one model

    def drift_for(self, model: ModelConfig) -> Drift:
        """This model's drift: from the cache, from Prometheus, or computed now."""
        cfg = _drift_config(model)
        if cfg.drift_query:
            return self._query(model, cfg.drift_query)
        job, key = self._job(model, cfg)
        cached = self._cache.get(model.name)
        if cached is not None and cached[0] == key:
            if isinstance(cached[1], str):
                raise SourceError(cached[1])
            return cached[1]
        try:
            drift = self._compute(job)
        except _Timeout:
            raise  # transient: try again next poll
        except SourceError as exc:
            self._cache[model.name] = (key, str(exc))
            raise
        self._cache[model.name] = (key, drift)
        return drift

    def export_html(self, model: ModelConfig, path: str | os.PathLike[str]) -> Path:
        """Save the full Evidently HTML report for ``model`` at ``path``; SourceError on failure.

        Computes anew (the report lives in the worker), and caches the result it got.
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
        job, key = self._job(model, cfg)
        job = DriftJob(**{**job.__dict__, "html_path": str(target)})
        drift = self._compute(job)
        self._cache[model.name] = (key, drift)
        return target

    # ------------------------------------------------------------ inputs and key

    def _job(self, model: ModelConfig, cfg: DriftConfig) -> tuple[DriftJob, str]:
        assert cfg.reference is not None and cfg.current is not None  # config validates
        if cfg.reference == "mlflow":
            ref_identity, ref_files = self._resolve_mlflow(model, cfg)
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

    def _resolve_mlflow(self, model: ModelConfig, cfg: DriftConfig) -> tuple[str, tuple[str, ...]]:
        uri = self.config.mlflow_uri
        if not uri:
            raise SourceError(
                'reference = "mlflow" needs an MLflow tracking URI ([mlflow] tracking_uri '
                "or $MLFLOW_TRACKING_URI)"
            )
        timeout = self.config.mlflow.timeout if self.config.mlflow is not None else 5.0
        from mltui.collectors import drift_worker

        identity, files = self._call(
            drift_worker.run_resolve,
            (uri, timeout, model.registry_name, cfg.reference_artifact, _cache_dir()),
            RESOLVE_TIMEOUT,
            "resolving the MLflow reference",
        )
        return str(identity), tuple(files)

    # ------------------------------------------------------------ worker

    def _compute(self, job: DriftJob) -> Drift:
        from mltui.collectors import drift_worker

        started = time.perf_counter()
        self.computations += 1
        result = self._call(drift_worker.run_job, (job,), COMPUTE_TIMEOUT, "computing drift")
        return to_drift(result, computed_at=utcnow(), seconds=time.perf_counter() - started)

    def _worker_pool(self) -> ProcessPoolExecutor:
        with self._pool_lock:
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
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is None:
            return
        # The executor has no public "terminate"; its processes are reachable and
        # killing them is the only way to stop a computation already running.
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    def _call(self, func: Any, args: tuple[Any, ...], timeout: float, what: str) -> Any:
        """Run ``func(*args)`` in the worker; its ("ok"|"error", value) becomes a value or SourceError."""
        try:
            future = self._worker_pool().submit(func, *args)
            status, value = future.result(timeout)
        except FutureTimeout:
            self._kill_pool()  # so the next poll starts with a fresh worker
            raise _Timeout(
                f"{what} took longer than {timeout:g}s; lower sample_size or the window"
            ) from None
        except BrokenProcessPool:
            self._kill_pool()
            raise _Timeout(f"{what}: the drift worker process died (out of memory?)") from None
        if status != "ok":
            raise SourceError(str(value))
        return value

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
    features = tuple(
        FeatureDrift(
            column=str(f["column"]),
            method=str(f["method"]),
            score=finite(f["score"]),
            threshold=finite(f["threshold"]),
            drifted=bool(f["drifted"]),
            column_type=f.get("column_type"),
            bins=tuple(f.get("bins", ())),
            reference_share=tuple(f.get("reference_share", ())),
            current_share=tuple(f.get("current_share", ())),
        )
        for f in result["features"]
    )
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
