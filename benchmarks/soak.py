"""Bounded soak (issue 10, "Load"): the TUI polling 1,000 models every 2 s for 10 minutes.

``python benchmarks/soak.py [--minutes 10] [--models 1000] [--no-mlflow]``

Starts the real backends of :mod:`benchmarks.backends` (loopback only), then runs the
real app (``make_app`` with the real ``FleetCollector``) headless in this process,
80x24, refresh 2 s. Every 10 s it samples this process' RSS and open file
descriptors. At the end it prints a table and exits non-zero when a promise is broken:

- memory: RSS after the first minute never exceeds the first minute's peak by more
  than ``--rss-slack`` MB (default 50) — a leak of even a few KB per poll shows;
- file descriptors: the count never rises above the first minute's peak + 2;
- polls never overlap: the app's own ``max_concurrent_polls`` is 1.

The backends run in other processes (Prometheus, Alertmanager, ``mlflow server``, the
Kubernetes stand-in), so the figures are mltui's alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.backends import start_backends  # noqa: E402
from benchmarks.measure import load, machine, open_fds, rss_mb, say, table  # noqa: E402

SAMPLE_EVERY = 10.0
WARMUP = 60.0
"""The first minute sets the bounds (imports, pools, caches fill up in it)."""


async def soak(
    config_path: Path, seconds: float
) -> tuple[list[tuple[float, float, int]], int, int]:
    """Run the app for ``seconds``; (samples (t, rss MB, fds), polls, max concurrent polls)."""
    from mltui.app import make_app
    from mltui.config import load_config

    app = make_app(load_config(config_path))
    pid = os.getpid()
    samples: list[tuple[float, float, int]] = []
    async with app.run_test(headless=True, size=(80, 24)):
        started = time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            samples.append((elapsed, rss_mb(pid), open_fds(pid)))
            await asyncio.sleep(min(SAMPLE_EVERY, max(0.1, seconds - elapsed)))
        samples.append((time.perf_counter() - started, rss_mb(pid), open_fds(pid)))
        polls, overlap = app.polls_started, app.max_concurrent_polls
    return samples, polls, overlap


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--refresh", default="2s")
    parser.add_argument("--no-mlflow", action="store_true", help="leave MLflow out")
    parser.add_argument("--rss-slack", type=float, default=50.0, help="MB allowed above warm-up")
    args = parser.parse_args()

    seconds = args.minutes * 60
    say(f"# mltui soak: {args.models} models, refresh {args.refresh}, {args.minutes:g} min\n")
    say(f"machine: {machine()}\n{load()}")
    backends = start_backends(
        args.models,
        mlflow=not args.no_mlflow,
        alertmanager=True,
        future_s=int(seconds) + 20 * 60,  # rates stay exact for the whole soak
    )
    try:
        config = backends.write_config(args.models, refresh=args.refresh)
        samples, polls, overlap = asyncio.run(soak(config, seconds))
    finally:
        backends.close()

    warm = [s for s in samples if s[0] <= min(WARMUP, seconds / 4)] or samples[:1]
    after = [s for s in samples if s not in warm] or samples[-1:]
    rss_bound = max(s[1] for s in warm) + args.rss_slack
    fd_bound = max(s[2] for s in warm) + 2
    rss_peak = max(s[1] for s in after)
    fd_peak = max(s[2] for s in after)
    elapsed = samples[-1][0]
    checks = [
        ["RSS after warm-up (MB)", f"{rss_peak:.1f}", f"≤ {rss_bound:.1f}", rss_peak <= rss_bound],
        ["open fds after warm-up", fd_peak, f"≤ {fd_bound}", fd_peak <= fd_bound],
        ["concurrent polls (max)", overlap, "= 1", overlap == 1],
        ["polls", polls, f"{elapsed / max(polls, 1):.1f} s apart on average", polls > 1],
    ]
    say(
        table(
            "RSS and fds over time",
            ["t (s)", "RSS MB", "fds"],
            [[f"{t:.0f}", r, f] for t, r, f in samples[:: max(1, len(samples) // 20)]],
        )
    )
    say(table("Soak verdict", ["what", "measured", "bound", "ok"], checks))
    say(f"\n{load()} at the end")
    failed = [c[0] for c in checks if not c[3]]
    if failed:
        say(f"\nFAILED: {', '.join(failed)}")
        return 1
    say("\nOK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
