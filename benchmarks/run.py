"""Every mltui benchmark from one command: ``python benchmarks/run.py [--quick] [--only …]``.

Sets up real backends holding the largest fleet (see :mod:`benchmarks.backends`),
then prints one table per benchmark (issue 9):

1. ``requests``  requests per refresh by source and fleet size, vs the naive way
2. ``collect``   ``collect`` wall time per fleet size (median) and peak RSS
3. ``startup``   first painted TUI frame and ``mltui --check`` at 100 models, as ratios
                 to bare ``python -c "import textual"`` / ``python -c "pass"``
4. ``idle``      CPU % and bytes/min to the terminal of an idle TUI (15 s refresh)
5. ``drift``     benchmarks/drift.py, when it exists

Absolute times depend on the machine and its load; compare the ratios.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import terminal  # noqa: E402
from benchmarks.backends import Backends, default_cache, start_backends  # noqa: E402
from benchmarks.fleet_data import has_canary  # noqa: E402
from benchmarks.measure import load, machine, median, say, table, wall  # noqa: E402

BENCHMARKS = ("requests", "collect", "startup", "idle", "drift")
CHECK_MODELS = 100
"""The fleet size of the --check and first-frame benchmarks (issue 9)."""


# ------------------------------------------------------------------ 1 + 2: collect


def run_worker(config: Path, runs: int) -> dict[str, Any]:
    """One fleet size in a fresh process (benchmarks/collect_worker.py)."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "collect_worker.py"), str(config)]
        + ["--runs", str(runs)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        raise RuntimeError(f"collect worker failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    for name, source in result["sources"].items():
        if source["status"] != "ok":  # a figure too (e.g. a timeout): shown, not hidden
            say(f"  ! {name} failed in the last poll: {source['error']}")
    return result


def naive_requests(source: str, n: int, config_path: Path) -> int:
    """Requests the naive way needs: one query per model per signal / object.

    prometheus   per model: one instant query per signal of its preset (p50, p95,
                 p99, requests, errors) plus its sparkline range query
    kubernetes   per model: GET the Deployment, GET its canary (when it has one),
                 LIST its ReplicaSets (for the revision history)
    mlflow       per model: get_registered_model + search_model_versions
    alertmanager per model: one filtered GET /api/v2/alerts
    """
    if source == "prometheus":
        from mltui.config import load_config

        config = load_config(config_path)
        total = 0
        for model in config.models:
            preset = config.preset(model.metrics)
            total += 3 if preset.latency_histogram else 1  # p50, p95, p99 (or the mean)
            total += 1 + (preset.errors is not None)  # requests, errors
            total += preset.latency_histogram is not None  # its sparkline range query
        return total
    if source == "kubernetes":
        return sum(3 if has_canary(i) else 2 for i in range(n))
    if source == "mlflow":
        return 2 * n
    return n


def exact(result: dict[str, Any], source: str) -> int | str:
    """Models whose values from ``source`` matched the generated data exactly."""
    field = {"prometheus": "traffic", "kubernetes": "rollout", "mlflow": "registry"}.get(source)
    if field is None:  # alerts: one per 20 models, so a count, not a check
        return f"{result['correct']['alerts_models']} alerting"
    return int(result["correct"][field])


def bench_collect(
    backends: Backends, sizes: list[int], runs: int, want: set[str]
) -> dict[int, dict[str, Any]]:
    """Tables 1, 2 and 2b.

    Requests are counted in a poll with 120 s timeouts, so they show what the
    collector asks for even where the default 5 s timeouts cut a poll short (a
    source the orchestrator gave up on reports no requests). Wall times are taken
    with the default timeouts: what a user gets.
    """
    results: dict[int, dict[str, Any]] = {}
    patient: dict[int, dict[str, Any]] = {}
    for n in sizes:
        say(f"  requests: {n} models, 120 s timeouts…")
        patient[n] = run_worker(backends.write_config(n, timeout="120s"), 1)
        if "collect" in want:
            say(f"  collect: {n} models…")
            results[n] = run_worker(backends.write_config(n), runs)
            if backends.mlflow is not None:
                say(f"  collect: {n} models without MLflow…")
                results[n]["no_mlflow"] = run_worker(backends.write_config(n, mlflow=False), runs)

    if "requests" in want:
        rows = []
        for source in patient[sizes[0]]["sources"]:
            counts = [patient[n]["sources"][source]["requests"] for n in sizes]
            naive = [naive_requests(source, n, backends.write_config(n)) for n in sizes]
            constant = "yes" if len(set(counts)) == 1 else "no"
            rows.append(
                [
                    source,
                    *(
                        f"{c} / {v} (1:{v / c:.0f})" if c else f"0 / {v}"
                        for c, v in zip(counts, naive, strict=True)
                    ),
                    constant,
                    ", ".join(f"{exact(patient[n], source)}/{n}" for n in sizes),
                ]
            )
        say(
            table(
                "1. Requests per refresh: mltui / naive (ratio), steady state",
                ["source", *(f"{n} models" for n in sizes), "constant in N", "values exact"],
                rows,
            )
        )
    if "collect" in want:
        rows = []
        for n in sizes:
            r = results[n]
            correct = r["correct"]
            row = [
                n,
                median(r["times_s"]),
                min(r["times_s"]),
                max(r["times_s"]),
                r["peak_rss_mb"],
            ]
            other = r.get("no_mlflow")
            row += [median(other["times_s"]), other["peak_rss_mb"]] if other else ["-", "-"]
            row.append(patient[n]["times_s"][0])
            row.append(
                f"traffic {correct['traffic']}/{n}, rollout {correct['rollout']}/{n}"
                + (f", registry {correct['registry']}/{n}" if backends.mlflow else "")
            )
            rows.append(row)
        say(
            table(
                f"2. collect wall time (s, {len(results[sizes[0]]['times_s'])} runs after a "
                "warm-up) and peak RSS (MB) of the process",
                [
                    "models",
                    "median s",
                    "min s",
                    "max s",
                    "peak RSS MB",
                    "median s w/o MLflow",
                    "RSS w/o MLflow",
                    "1 poll, 120 s timeouts",
                    "values checked exact",
                ],
                rows,
            )
        )
        timed = []
        for n in sizes:
            for name, source in results[n]["sources"].items():
                status = "ok" if source["status"] == "ok" else f"ERROR: {source['error']}"
                timed.append([n, name, source["latency_ms"], source["requests"], status])
        uncut = [
            [n, name, source["latency_ms"], source["requests"]]
            for n in sizes
            for name, source in patient[n]["sources"].items()
        ]
        say(
            table(
                "2b. Per-source latency of one poll with 120 s timeouts (what a poll really costs)",
                ["models", "source", "ms", "requests"],
                uncut,
            )
        )
        say(
            table(
                "2c. Per-source latency and requests of the last timed poll (default 5 s timeouts)",
                ["models", "source", "ms", "requests", "status"],
                timed,
            )
        )
    return results


# ------------------------------------------------------------------ 3: startup


def bench_startup(backends: Backends, runs: int) -> None:
    config = backends.write_config(CHECK_MODELS)
    no_mlflow = backends.write_config(CHECK_MODELS, mlflow=False)
    python = sys.executable
    bare_pass, bare_textual, frames, checks, checks_nm = [], [], [], [], []
    for i in range(runs):
        say(f"  startup: run {i + 1}/{runs}…")
        # Interleaved, so drifting machine load hits every figure alike.
        bare_pass.append(wall([python, "-c", "pass"]))
        bare_textual.append(wall([python, "-c", "import textual"]))
        frames.append(terminal.first_frame(config))
        checks.append(wall([python, "-m", "mltui", "--check", "--config", str(config)]))
        if backends.mlflow is not None:
            checks_nm.append(wall([python, "-m", "mltui", "--check", "--config", str(no_mlflow)]))
    p, t, f, c = (median(x) for x in (bare_pass, bare_textual, frames, checks))
    rows = [
        ['python -c "pass"', p, "1.00", "", ""],
        ['python -c "import textual"', t, f"{t / p:.2f}", "1.00", ""],
        [
            f"first frame of the TUI ({CHECK_MODELS} models)",
            f,
            f"{f / p:.2f}",
            f"{f / t:.2f}",
            "< 0.5 s, ≤ 3× import textual",
        ],
        [
            f"mltui --check ({CHECK_MODELS} models, all sources)",
            c,
            f"{c / p:.2f}",
            f"{c / t:.2f}",
            "< 3 s",
        ],
    ]
    if checks_nm:
        cn = median(checks_nm)
        rows.append(
            [
                f"mltui --check ({CHECK_MODELS} models, without MLflow)",
                cn,
                f"{cn / p:.2f}",
                f"{cn / t:.2f}",
                "(diagnosis)",
            ]
        )
    say(
        table(
            f"3. Startup (median of {runs}, seconds)",
            ["what", "median s", "× pass", "× import textual", "budget"],
            rows,
        )
    )


# ------------------------------------------------------------------ 4: idle


def bench_idle(backends: Backends, seconds: float, warmup: float, n: int) -> None:
    config = backends.write_config(n, refresh="15s")
    say(f"  idle: {warmup:g} s warm-up, then {seconds:g} s measured…")
    r = terminal.idle(config, seconds=seconds, warmup=warmup)
    say(
        table(
            f"4. Idle TUI ({n} models, refresh 15 s, nothing changing, 80x24 pty)",
            ["measured s", "CPU %", "bytes/min to terminal", "budget"],
            [[r["seconds"], r["cpu_percent"], r["bytes_per_min"], "< 2 % CPU, < 2048 B/min"]],
        )
    )


# ------------------------------------------------------------------ 5: drift


def bench_drift(quick: bool) -> None:
    path = ROOT / "benchmarks" / "drift.py"
    if not path.exists():
        say("\n## 5. Drift\n\nbenchmarks/drift.py does not exist yet: no drift figures.")
        return
    spec = importlib.util.spec_from_file_location("benchmarks_drift", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    entry = getattr(module, "main", None) or getattr(module, "run", None)
    if entry is None:
        say("\n## 5. Drift\n\nbenchmarks/drift.py has no main()/run(): skipped.")
        return
    say("\n## 5. Drift (benchmarks/drift.py)\n")
    argv = sys.argv
    try:
        # drift.py's own flags: --quick means one small size, one repeat.
        sys.argv = [str(path), *(["--sizes", "10000", "--repeats", "1"] if quick else [])]
        entry()
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
    finally:
        sys.argv = argv


# ------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes and short runs (smoke)")
    parser.add_argument(
        "--only", default=",".join(BENCHMARKS), help=f"comma list of {', '.join(BENCHMARKS)}"
    )
    parser.add_argument("--sizes", help="fleet sizes, e.g. 10,100,1000")
    parser.add_argument("--no-mlflow", action="store_true", help="leave MLflow out")
    parser.add_argument("--cache", type=Path, default=default_cache(), help="MLflow store cache")
    args = parser.parse_args()

    want = {w.strip() for w in args.only.split(",") if w.strip()}
    unknown = want - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    sizes = (
        [int(s) for s in args.sizes.split(",")]
        if args.sizes
        else ([10, 100] if args.quick else [10, 100, 1000])
    )
    runs = 3 if args.quick else 5
    started = time.perf_counter()
    say(f"# mltui benchmarks{' (quick)' if args.quick else ''}\n")
    say(f"machine: {machine()}")
    say(load())
    say(f"sizes: {sizes}; runs per figure: {runs}; started {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")

    needs_backends = want & {"requests", "collect", "startup", "idle"}
    if needs_backends:
        size = max(sizes + ([CHECK_MODELS] if want & {"startup", "idle"} else []))
        backends = start_backends(
            size, mlflow=not args.no_mlflow, alertmanager=True, cache=args.cache
        )
        say("backend setup (s): " + ", ".join(f"{k} {v:.1f}" for k, v in backends.setup_s.items()))
        try:
            if want & {"requests", "collect"}:
                bench_collect(backends, sizes, runs, want)
            if "startup" in want:
                bench_startup(backends, runs)
            if "idle" in want:
                bench_idle(
                    backends,
                    seconds=15 if args.quick else 60,
                    warmup=10 if args.quick else 20,
                    n=CHECK_MODELS,
                )
        finally:
            backends.close()
    if "drift" in want:
        bench_drift(args.quick)
    say(f"\n{load()} at the end; total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
