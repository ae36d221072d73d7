"""One fleet size's ``collect`` benchmark, in a fresh process (so peak RSS is its own).

``python benchmarks/collect_worker.py CONFIG --runs R`` builds a
:class:`~mltui.collectors.collect.FleetCollector`, polls once to warm up (imports,
connection pools, MLflow's client), then times R more polls and prints one JSON
object: wall times, requests per source of the last poll, source statuses, peak RSS,
and how many models came back with values that match the generated data exactly.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.fleet_data import expected_rps, model_name  # noqa: E402
from mltui.collectors.collect import FleetCollector  # noqa: E402
from mltui.config import load_config  # noqa: E402
from mltui.fleet import FleetSnapshot  # noqa: E402


def check(snapshot: FleetSnapshot) -> dict[str, int]:
    """Count models whose values are present and right, per field."""
    ok = {"traffic": 0, "rollout": 0, "registry": 0, "alerts_models": 0}
    expected = {model_name(i): expected_rps(i) for i in range(len(snapshot.models))}
    for state in snapshot.models:
        # Stale values (kept from an earlier poll after a failure) do not count.
        fresh = {"prometheus", "kubernetes", "mlflow"} - state.stale
        rps = state.traffic.overall.rps if state.traffic is not None else None
        if rps is not None and math.isclose(rps, expected[state.name], rel_tol=1e-6):
            ok["traffic"] += "prometheus" in fresh
        if state.rollout is not None and state.rollout.serving_version == "3":
            ok["rollout"] += "kubernetes" in fresh
        if state.registry is not None and state.registry.aliases.get("champion") == "1":
            ok["registry"] += "mlflow" in fresh
        if state.alerts:
            ok["alerts_models"] += 1
    return ok


def peak_rss_mb() -> float:
    """This process' peak resident set (VmHWM). Not ru_maxrss: on Linux that survives
    exec and would report the parent's memory at fork time."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    config = load_config(args.config)
    collector = FleetCollector(config)
    started = time.perf_counter()
    collector.collect()
    first = time.perf_counter() - started
    times = []
    snapshot = None
    for _ in range(args.runs):
        started = time.perf_counter()
        snapshot = collector.collect()
        times.append(time.perf_counter() - started)
    assert snapshot is not None
    collector.close()
    print(
        json.dumps(
            {
                "models": len(snapshot.models),
                "first_s": first,
                "times_s": times,
                "peak_rss_mb": peak_rss_mb(),
                "sources": {
                    name: {
                        "status": s.status,
                        "error": s.error,
                        "requests": s.requests,
                        "latency_ms": s.latency_ms,
                    }
                    for name, s in snapshot.sources.items()
                    if s.status != "not_configured"
                },
                "correct": check(snapshot),
            }
        )
    )


if __name__ == "__main__":
    main()
