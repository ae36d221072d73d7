"""The demo's request stream: rows of each model's dataset, sent to the model server.

``python -m mltui.demo.traffic --workspace DIR --url http://127.0.0.1:PORT`` sends
each model a Poisson stream at its catalog rate (a few requests per second; the
total is capped so the demo stays light on a 2-core laptop). Rows are drawn from
the dataset with a little noise, and each request carries the row's true label as
feedback (the server logs it; retraining learns from it).

After ``--drift-after`` seconds (default 90; 0 with ``MLTUI_DEMO_FAST=1``) some
features of some models start drifting: shifted by up to 1.5 standard deviations,
ramping in over a minute, so the drift view has something real to show.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

from mltui.demo import catalog
from mltui.demo.catalog import TARGET, DemoModel
from mltui.demo.processes import watch_parent
from mltui.demo.workspace import Workspace

FAST = os.environ.get("MLTUI_DEMO_FAST") == "1"
DEFAULT_DRIFT_AFTER_S = 0.0 if FAST else 90.0
DRIFT_RAMP_S = 1.0 if FAST else 60.0
DRIFT_SHIFT_STD = 1.5
"""Full drift: the feature's mean moves by this many standard deviations."""
NOISE_STD = 0.05
"""Jitter added to every feature (in standard deviations), so requests are not replays."""
MAX_TOTAL_RPS = 20.0
MAX_IN_FLIGHT = 16


class Stream:
    """Rows of one model's dataset, with jitter and (once started) drift."""

    def __init__(self, entry: DemoModel, frame: Any, drift_at: float, rng: random.Random) -> None:
        self.entry = entry
        self.features = [c for c in frame.columns if c != TARGET]
        self.rows = frame[self.features].to_numpy(dtype=float)
        self.targets = frame[TARGET].tolist()
        self.std = frame[self.features].std().fillna(0.0).to_numpy(dtype=float)
        self.drift_cols = [
            self.features.index(f) for f in entry.drift_features if f in self.features
        ]
        self.drift_at = drift_at
        self.rng = rng

    def drift_level(self, now: float) -> float:
        """0 before drift starts, then ramping to 1."""
        if not self.drift_cols or now < self.drift_at:
            return 0.0
        return min(1.0, (now - self.drift_at) / DRIFT_RAMP_S)

    def sample(self, now: float) -> tuple[dict[str, float], Any]:
        i = self.rng.randrange(len(self.rows))
        row = self.rows[i].copy()
        for j in range(len(row)):
            row[j] += self.rng.gauss(0.0, NOISE_STD) * self.std[j]
        level = self.drift_level(now)
        for j in self.drift_cols:
            row[j] += level * DRIFT_SHIFT_STD * self.std[j]
        target = self.targets[i]
        return dict(zip(self.features, (float(v) for v in row), strict=True)), target


async def _send(client: Any, url: str, stream: Stream, limit: asyncio.Semaphore) -> None:
    async with limit:
        row, target = stream.sample(time.monotonic())
        body = {
            "instances": [row],
            "targets": [target.item() if hasattr(target, "item") else target],
        }
        try:
            await client.post(f"{url}/v1/models/{stream.entry.name}:predict", json=body)
        except Exception:  # noqa: BLE001 - the server restarting is not the generator's problem
            await asyncio.sleep(0.5)


async def _model_loop(
    client: Any, url: str, stream: Stream, rps: float, limit: asyncio.Semaphore
) -> None:
    tasks: set[asyncio.Task[None]] = set()
    while True:
        await asyncio.sleep(stream.rng.expovariate(rps))
        task = asyncio.create_task(_send(client, url, stream, limit))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


async def run(ws: Workspace, url: str, drift_after: float, seed: int | None = None) -> None:
    """Send traffic until cancelled."""
    import httpx
    import pandas as pd

    rng = random.Random(seed)
    started = time.monotonic()
    streams = []
    for entry in catalog.FLEET:
        frame = pd.read_parquet(ws.dataset(entry.name))
        streams.append(Stream(entry, frame, started + drift_after, random.Random(rng.random())))
    total = sum(m.rps for m in catalog.FLEET)
    scale = min(1.0, MAX_TOTAL_RPS / total) if total else 1.0
    limit = asyncio.Semaphore(MAX_IN_FLIGHT)
    # Loopback only: refuse anything else, this generator must never hit a real service.
    host = httpx.URL(url).host
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"traffic goes to 127.0.0.1 only, not {host}")
    async with httpx.AsyncClient(timeout=5.0) as client:
        await asyncio.gather(
            *(_model_loop(client, url, s, s.entry.rps * scale, limit) for s in streams)
        )


def _wait_port(port_file: Path) -> str:
    """The server's URL once it wrote its port (the parent stops us if it never does)."""
    while True:
        try:
            port = port_file.read_text(encoding="utf-8").strip()
        except OSError:
            port = ""
        if port.isdigit():
            return f"http://127.0.0.1:{port}"
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mltui.demo.traffic")
    parser.add_argument("--workspace", required=True)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="the demo server, http://127.0.0.1:PORT")
    where.add_argument(
        "--port-file",
        help="wait for the demo server to write its port here (start before it serves)",
    )
    parser.add_argument(
        "--drift-after", type=float, default=DEFAULT_DRIFT_AFTER_S, metavar="SECONDS"
    )
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    watch_parent()
    # Import now: with --port-file this overlaps the server's start-up.
    import httpx  # noqa: F401
    import pandas  # noqa: F401

    url = args.url.rstrip("/") if args.url else _wait_port(Path(args.port_file))
    try:
        asyncio.run(run(Workspace(Path(args.workspace)), url, args.drift_after, args.seed))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
