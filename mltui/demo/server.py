"""The demo's model server: MLflow champion + challenger per model, behind a KServe-style API.

``python -m mltui.demo.server --workspace DIR --port-file FILE`` binds a free port
on 127.0.0.1, loads ``models:/<name>@champion`` and ``@challenger`` for every demo
model from the workspace's MLflow store, and writes the port to ``FILE`` once it
serves. With ``--wait-ready SECONDS`` it may start before the store is trained: it
imports its libraries at once and loads the models when training marks the store
ready, so on a first run its start-up overlaps training. Then:

* ``POST /v1/models/<name>:predict`` (KServe v1 protocol: ``{"instances": [...]}``)
  routes the registered model's canary share (tag ``mltui.canary_weight``) to the
  challenger, answers ``{"predictions": [...], "model_version": ..., "track": ...}``;
  an optional ``"targets"`` list is ground-truth feedback, logged with the request;
* the challenger is slower and a small share of requests fail with a 500, so
  mltui's health checks have something true to find;
* ``GET /metrics`` exports the kserve preset's metrics — histogram
  ``request_predict_seconds`` and counter ``request_predict_errors_total`` — labelled
  ``model_name``, ``track`` (stable|canary) and ``model_version``;
* aliases and the canary tag are re-read every few seconds: promote/rollback
  (which move the aliases) change what is served within seconds;
* every request's features, target, prediction and timestamp are appended to a
  parquet inference log per model (rewritten atomically in batches), which the
  drift collector and the retrain command read.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mltui.demo import catalog
from mltui.demo.catalog import PREDICTION, TARGET, TIMESTAMP, DemoModel
from mltui.demo.processes import watch_parent
from mltui.demo.workspace import Workspace

FAST = os.environ.get("MLTUI_DEMO_FAST") == "1"
ALIAS_POLL_S = 1.0 if FAST else 3.0
"""How often aliases and the canary tag are re-read."""
FLUSH_S = 1.0 if FAST else 5.0
"""How often buffered inference-log rows are written."""
LOG_RETENTION_S = 2 * 86400
"""Inference-log files older than this are deleted at start."""


@dataclass(frozen=True)
class Loaded:
    """A loaded model version."""

    version: str
    model: Any


@dataclass(frozen=True)
class Serving:
    """What one model serves right now (swapped atomically when the aliases move)."""

    champion: Loaded
    challenger: Loaded | None
    canary_weight: int

    def pick(self, rng: random.Random) -> tuple[str, Loaded]:
        """Choose the track of one request."""
        if (
            self.challenger is not None
            and self.challenger.version != self.champion.version
            and rng.random() * 100 < self.canary_weight
        ):
            return "canary", self.challenger
        return "stable", self.champion


class ModelSlot:
    """One demo model: its catalog entry, loaded versions and inference-log buffer."""

    def __init__(self, entry: DemoModel, features: list[str]) -> None:
        self.entry = entry
        self.features = features
        self.serving: Serving | None = None
        self._cache: dict[str, Any] = {}
        self._rows: list[dict[str, Any]] = []
        self._file_rows: list[dict[str, Any]] = []
        self._file: Path | None = None
        self._lock = threading.Lock()

    def load(self, version: str) -> Loaded:
        if version not in self._cache:
            import mlflow

            self._cache[version] = mlflow.sklearn.load_model(f"models:/{self.entry.name}/{version}")
        return Loaded(version, self._cache[version])

    def predict(self, loaded: Loaded, rows: list[dict[str, float]]) -> list[float]:
        import pandas as pd

        frame = pd.DataFrame(rows, columns=self.features)
        if self.entry.task == "binary":
            return [float(p) for p in loaded.model.predict_proba(frame)[:, 1]]
        return [float(p) for p in loaded.model.predict(frame)]

    def record(self, rows: list[dict[str, Any]]) -> None:
        with self._lock:
            self._rows.extend(rows)

    def flush(self, directory: Path) -> None:
        """Append buffered rows to this hour's parquet file (atomic rewrite)."""
        import pandas as pd

        with self._lock:
            rows, self._rows = self._rows, []
        if not rows:
            return
        now = datetime.now(UTC)
        target = directory / f"{now:%Y%m%d%H}-{os.getpid()}.parquet"
        if target != self._file:
            self._file, self._file_rows = target, []
        self._file_rows.extend(rows)
        directory.mkdir(parents=True, exist_ok=True)
        frame = pd.DataFrame(self._file_rows)
        frame[TIMESTAMP] = pd.to_datetime(frame[TIMESTAMP], unit="s", utc=True)
        tmp = target.with_suffix(".parquet.tmp")
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, target)  # readers never see a half-written file


class DemoServer:
    """The state behind the HTTP app."""

    def __init__(self, ws: Workspace) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.ws = ws
        self.rng = random.Random()
        self.registry = CollectorRegistry()
        labels = ["model_name", "track", "model_version"]
        self.latency = Histogram(
            "request_predict_seconds",
            "Time to answer a predict request",
            labels,
            registry=self.registry,
        )
        self.errors = Counter(
            "request_predict_errors", "Predict requests that failed", labels, registry=self.registry
        )
        self.slots: dict[str, ModelSlot] = {}
        self._stop = threading.Event()

    def start(self) -> None:
        """Load every model's champion and challenger (blocking, before serving)."""
        import mlflow
        import pandas as pd

        from mltui.demo.train import quiet_mlflow

        quiet_mlflow()
        mlflow.set_tracking_uri(self.ws.tracking_uri)
        mlflow.set_registry_uri(self.ws.tracking_uri)
        for entry in catalog.FLEET:
            reference = pd.read_parquet(self.ws.training_set(entry.name))
            features = [c for c in reference.columns if c != TARGET]
            self.slots[entry.name] = ModelSlot(entry, features)
            self._prune(self.ws.inference_dir(entry.name))
        self.refresh_aliases()
        threading.Thread(target=self._background, name="aliases+log", daemon=True).start()

    @staticmethod
    def _prune(directory: Path) -> None:
        cutoff = time.time() - LOG_RETENTION_S
        for path in directory.glob("*.parquet*"):
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < cutoff or path.name.endswith(".tmp"):
                    path.unlink()

    def refresh_aliases(self) -> None:
        """Follow the registry: load the versions the aliases now name, then swap."""
        from mlflow import MlflowClient

        client = MlflowClient()
        for name, slot in self.slots.items():
            try:
                registered = client.get_registered_model(name)
                aliases = {k: str(v) for k, v in registered.aliases.items()}
                weight_tag = str(registered.tags.get(catalog.CANARY_TAG, "0"))
                weight = int(weight_tag) if weight_tag.isdigit() else 0
                champion = aliases.get("champion")
                if champion is None:
                    continue
                challenger = aliases.get("challenger")
                new = Serving(
                    champion=slot.load(champion),
                    challenger=slot.load(challenger) if challenger else None,
                    canary_weight=max(0, min(100, weight)),
                )
                current = slot.serving
                if current is None or (
                    (
                        new.champion.version,
                        new.challenger and new.challenger.version,
                        new.canary_weight,
                    )
                    != (
                        current.champion.version,
                        current.challenger and current.challenger.version,
                        current.canary_weight,
                    )
                ):
                    slot.serving = new
                    self._init_series(name, new)
                    print(
                        f"{name}: champion v{new.champion.version}"
                        + (
                            f", challenger v{new.challenger.version} at {weight}%"
                            if new.challenger
                            else ""
                        ),
                        flush=True,
                    )
            except Exception as exc:  # noqa: BLE001 - keep serving what we have
                print(f"{name}: cannot refresh aliases: {exc}", file=sys.stderr, flush=True)

    def _init_series(self, name: str, serving: Serving) -> None:
        # Export the series at 0 before the first request, so "no errors" reads as 0, not absent.
        pairs = [("stable", serving.champion.version)]
        if serving.challenger is not None:
            pairs.append(("canary", serving.challenger.version))
        for track, version in pairs:
            self.latency.labels(name, track, version)
            self.errors.labels(name, track, version)

    def _background(self) -> None:
        last_alias = last_flush = time.monotonic()
        while not self._stop.wait(0.5):
            now = time.monotonic()
            if now - last_alias >= ALIAS_POLL_S:
                self.refresh_aliases()
                last_alias = now
            if now - last_flush >= FLUSH_S:
                self.flush()
                last_flush = now

    def flush(self) -> None:
        for name, slot in self.slots.items():
            try:
                slot.flush(self.ws.inference_dir(name))
            except Exception as exc:  # noqa: BLE001 - a full disk must not stop serving
                print(f"{name}: cannot write the inference log: {exc}", file=sys.stderr, flush=True)

    def stop(self) -> None:
        self._stop.set()
        self.flush()

    async def predict(self, name: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Serve one predict request: (HTTP status, JSON body)."""
        started = time.perf_counter()
        slot = self.slots.get(name)
        if slot is None or slot.serving is None:
            return 404, {"error": f"model {name} is not served here"}
        track, loaded = slot.serving.pick(self.rng)
        entry = slot.entry
        try:
            instances = body.get("instances")
            if not isinstance(instances, list) or not instances:
                raise ValueError('"instances" must be a non-empty list')
            rows = [
                dict(zip(slot.features, r, strict=True)) if isinstance(r, list) else dict(r)
                for r in instances
            ]
            # A simulated network/feature-store delay; the challenger is slower.
            median = entry.challenger_latency_ms if track == "canary" else entry.latency_ms
            await asyncio.sleep(median * self.rng.lognormvariate(0.0, 0.35) / 1000)
            if self.rng.random() < entry.error_share:
                raise RuntimeError("simulated backend failure")
            predictions = slot.predict(loaded, rows)
        except Exception as exc:  # noqa: BLE001 - a failed request is a 4xx/5xx and a metric
            self.errors.labels(name, track, loaded.version).inc()
            self.latency.labels(name, track, loaded.version).observe(time.perf_counter() - started)
            status = 400 if isinstance(exc, ValueError | TypeError) else 500
            return status, {"error": str(exc)}
        self.latency.labels(name, track, loaded.version).observe(time.perf_counter() - started)
        targets = body.get("targets") or [None] * len(rows)
        now = time.time()
        slot.record(
            [
                {
                    TIMESTAMP: now,
                    **row,
                    TARGET: target,
                    PREDICTION: pred,
                    "track": track,
                    "model_version": loaded.version,
                }
                for row, target, pred in zip(rows, targets, predictions, strict=False)
            ]
        )
        return 200, {"predictions": predictions, "model_version": loaded.version, "track": track}


def make_app(server: DemoServer, on_ready: Any = None) -> Any:
    """The Starlette app around ``server``."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    async def predict(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            body = await request.json()
        except Exception:  # noqa: BLE001
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        status, payload = await server.predict(name, body if isinstance(body, dict) else {})
        return JSONResponse(payload, status_code=status)

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(server.registry), media_type=CONTENT_TYPE_LATEST)

    async def models(request: Request) -> Response:
        out = {}
        for name, slot in server.slots.items():
            s = slot.serving
            out[name] = {
                "champion": s.champion.version if s else None,
                "challenger": s.challenger.version if s and s.challenger else None,
                "canary_weight": s.canary_weight if s else None,
                "features": slot.features,
            }
        return JSONResponse(out)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        if on_ready is not None:
            on_ready()
        yield
        server.stop()

    return Starlette(
        routes=[
            Route("/v1/models/{name}:predict", predict, methods=["POST"]),
            Route("/v1/models", models),
            Route("/metrics", metrics),
            Route("/healthz", healthz),
        ],
        lifespan=lifespan,
    )


def _write_atomic(path: Path, text: str) -> None:
    """Readers polling ``path`` never see it half-written."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mltui.demo.server")
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--port-file", required=True, help="written with the port once serving")
    parser.add_argument(
        "--addr-file",
        help="written with the port as soon as it is bound (before the models load)",
    )
    parser.add_argument(
        "--wait-ready",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long for training to finish (READY) before loading the models",
    )
    args = parser.parse_args(argv)
    watch_parent()
    # SIGHUP (the terminal went away) ends the server like SIGTERM.
    signal.signal(signal.SIGHUP, lambda *_: os.kill(os.getpid(), signal.SIGTERM))

    # Bind first (milliseconds): with the port known at once, Prometheus can start
    # scraping a static target while this process is still importing and loading.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # loopback only, a free port chosen by the kernel
    port = sock.getsockname()[1]
    if args.addr_file:
        _write_atomic(Path(args.addr_file), str(port))

    # The heavy imports (seconds on a small laptop) overlap training on a first run.
    import mlflow.sklearn  # noqa: F401
    import pandas  # noqa: F401
    import uvicorn

    ws = Workspace(Path(args.workspace))
    deadline = time.monotonic() + args.wait_ready
    while not ws.is_ready() and time.monotonic() < deadline:
        time.sleep(0.1)
    if not ws.is_ready():
        print(f"no trained demo store in {ws.root}", file=sys.stderr, flush=True)
        return 1
    server = DemoServer(ws)
    server.start()
    port_file = Path(args.port_file)

    def ready() -> None:
        _write_atomic(port_file, str(port))
        print(f"serving on http://127.0.0.1:{port}", flush=True)

    config = uvicorn.Config(
        make_app(server, on_ready=ready), log_level="warning", access_log=False, lifespan="on"
    )
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
