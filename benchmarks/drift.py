"""Drift benchmark: mltui's drift vs full-data Evidently vs scipy's Wasserstein.

    python benchmarks/drift.py                       # 10k, 100k, 1M rows x 20 features
    python benchmarks/drift.py --sizes 10000,100000  # skip 1M
    python benchmarks/drift.py --full-max 100000     # full-data Evidently only up to 100k
                                                     # (1M takes ~100 s on 2 cores)

Data: 20 numeric features, reference N(0, 1). In the current set 4 features are
mean-shifted by 0.5 sd, 2 have their sd scaled by 1.5 (both clearly past
Evidently's normed-Wasserstein threshold of 0.1), 2 are shifted by 0.03 sd
(clearly below it) and 12 are unchanged. Files are parquet, as inference logs are.

Columns:
- scipy: ``scipy.stats.wasserstein_distance`` per feature on the full in-memory data
  (no file reading: a floor for any exact computation).
- evidently: ``Report([DataDriftPreset()]).run(current, reference)`` on the full
  in-memory data.
- mltui cold: a new DriftSource polling the files (worker process start, Evidently
  import, reading, seeded sampling to sample_size, Report on the sample).
- mltui warm: the same source after the files changed (warm worker, recompute).
- mltui cached: a refresh with unchanged files (in-memory cache hit).
- disk: a new DriftSource on unchanged files, as the next ``mltui --check`` process
  (a hit from $XDG_CACHE_HOME/mltui/drift: no worker, no Evidently).
- agree: features whose drifted verdict equals full-data Evidently's.

Timings are medians over --repeats runs (full Evidently and cold runs: once each
per size beyond 100k, as they are slow).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

FEATURES = 20
MEAN_SHIFTED = {0, 5, 10, 15}
SCALED = {3, 12}
NUDGED = {7, 18}


def make_data(rows: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame({f"f{i:02d}": rng.normal(0.0, 1.0, rows) for i in range(FEATURES)})
    cur_cols = {}
    for i in range(FEATURES):
        mean = 0.5 if i in MEAN_SHIFTED else 0.03 if i in NUDGED else 0.0
        sd = 1.5 if i in SCALED else 1.0
        cur_cols[f"f{i:02d}"] = rng.normal(mean, sd, rows)
    return ref, pd.DataFrame(cur_cols)


def expected_drifted() -> set[str]:
    return {f"f{i:02d}" for i in MEAN_SHIFTED | SCALED}


def time_scipy(ref: pd.DataFrame, cur: pd.DataFrame) -> float:
    from scipy.stats import wasserstein_distance

    started = time.perf_counter()
    for col in ref.columns:
        wasserstein_distance(ref[col].to_numpy(), cur[col].to_numpy())
    return time.perf_counter() - started


def run_full_evidently(ref: pd.DataFrame, cur: pd.DataFrame) -> tuple[float, dict[str, bool]]:
    from evidently import Report
    from evidently.presets import DataDriftPreset

    from mltui.collectors.drift_worker import features_from_snapshot

    started = time.perf_counter()
    snapshot = Report([DataDriftPreset()], include_tests=True).run(cur, ref)
    seconds = time.perf_counter() - started
    rows = features_from_snapshot(snapshot.dict(), list(ref.columns))
    return seconds, {r["column"]: r["drifted"] for r in rows}


def mltui_source(ref_path: Path, cur_path: Path, sample_size: int):  # type: ignore[no-untyped-def]
    from mltui.collectors.drift import DriftSource
    from mltui.config import Config, DriftConfig, ModelConfig

    model = ModelConfig(
        name="bench",
        drift=DriftConfig(reference=str(ref_path), current=str(cur_path), sample_size=sample_size),
    )
    return DriftSource(Config(models=[model])), model


def poll(source, model):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = source.poll([model])
    seconds = time.perf_counter() - started
    if model.name not in result.values:
        raise SystemExit(f"mltui drift failed: {result.errors or result.status.error}")
    drift = result.values[model.name]
    return seconds, {f.column: f.drifted for f in drift.features}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--full-max", type=int, default=1_000_000, help="largest size for full-data Evidently"
    )
    parser.add_argument(
        "--sample-size", type=int, default=50_000, help="[models.drift] sample_size"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    print(
        f"drift benchmark: {FEATURES} features, sample_size={args.sample_size}, cpus={os.cpu_count()}"
    )
    header = (
        f"{'rows':>9} {'scipy s':>8} {'evidently s':>11} {'mltui cold':>10} {'mltui warm':>10} "
        f"{'cached ms':>9} {'disk ms':>7} {'warm/scipy':>10} {'cold/scipy':>10} {'agree':>7} "
        f"{'expected':>8}"
    )
    print(header)
    with tempfile.TemporaryDirectory(prefix="mltui-drift-bench-") as tmp:
        for rows in sizes:
            ref, cur = make_data(rows, seed=rows)
            ref_path, cur_path = (
                Path(tmp) / f"ref-{rows}.parquet",
                Path(tmp) / f"cur-{rows}.parquet",
            )
            ref.to_parquet(ref_path)
            cur.to_parquet(cur_path)
            slow = rows > 100_000
            reps = 1 if slow else args.repeats

            scipy_s = statistics.median(time_scipy(ref, cur) for _ in range(args.repeats))

            full_s: float | None = None
            full_verdict: dict[str, bool] | None = None
            if rows <= args.full_max:
                runs = [run_full_evidently(ref, cur) for _ in range(reps)]
                full_s = statistics.median(r[0] for r in runs)
                full_verdict = runs[0][1]

            cold_times, warm_times, cached_times, disk_times = [], [], [], []
            verdict: dict[str, bool] = {}
            for rep in range(reps):
                # An empty on-disk drift cache per repetition, so "cold" really computes.
                os.environ["XDG_CACHE_HOME"] = str(Path(tmp) / f"xdg-cache-{rows}-{rep}")
                source, model = mltui_source(ref_path, cur_path, args.sample_size)
                try:
                    seconds, verdict = poll(source, model)
                    cold_times.append(seconds)
                    os.utime(cur_path)  # same data, new mtime: a cache miss, warm worker
                    time.sleep(0.01)
                    seconds, _ = poll(source, model)
                    warm_times.append(seconds)
                    seconds, _ = poll(source, model)
                    cached_times.append(seconds)
                    assert source.computations == 2, source.computations
                finally:
                    source.close()
                # A new source, as the next `mltui --check` process: a hit from disk.
                second, model = mltui_source(ref_path, cur_path, args.sample_size)
                try:
                    seconds, _ = poll(second, model)
                    disk_times.append(seconds)
                    assert second.computations == 0, second.computations
                finally:
                    second.close()
            cold, warm = statistics.median(cold_times), statistics.median(warm_times)
            cached, disk = statistics.median(cached_times), statistics.median(disk_times)

            expected = expected_drifted()
            exp_ok = sum((c in expected) == v for c, v in verdict.items())
            if full_verdict is not None:
                agree = f"{sum(full_verdict[c] == v for c, v in verdict.items())}/{len(verdict)}"
            else:
                agree = "n/a"
            full_txt = f"{full_s:.2f}" if full_s is not None else "skipped"
            print(
                f"{rows:>9} {scipy_s:>8.2f} {full_txt:>11} {cold:>10.2f} {warm:>10.2f} "
                f"{cached * 1000:>9.1f} {disk * 1000:>7.1f} {warm / scipy_s:>10.2f} "
                f"{cold / scipy_s:>10.2f} "
                f"{agree:>7} {exp_ok:>3}/{len(verdict)}",
                flush=True,
            )


if __name__ == "__main__":
    main()
