"""Keeps benchmarks/run.py from rotting: its quick request-count benchmark runs end to end.

Not a timing test (timings belong in benchmarks/README.md): it asserts what holds on
any machine — the script exits 0, talks to the real Prometheus, Kubernetes stand-in
and Alertmanager, reads every model's values exactly, and the request counts per
refresh are the same at 10 and 100 models for Prometheus and Kubernetes.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_requests_benchmark_runs_and_counts_are_constant() -> None:
    """`run.py --quick --only requests --no-mlflow` prints table 1 with constant counts."""
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run.py"),
            "--quick",
            "--only",
            "requests",
            "--no-mlflow",
            "--sizes",
            "10,100",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out = done.stdout
    assert "## 1. Requests per refresh" in out
    assert "failed in the last poll" not in out, out
    rows = {
        m.group(1): m.group(2)
        for m in re.finditer(r"^\|\s+(\w+) \|(.*)\|\s*$", out, flags=re.MULTILINE)
    }
    for source in ("prometheus", "kubernetes", "alertmanager"):
        assert source in rows, out
        counts = re.findall(r"(\d+) / (\d+)", rows[source])
        assert len(counts) == 2, rows[source]
        (mine10, naive10), (mine100, naive100) = counts
        assert mine10 == mine100, f"{source}: {mine10} requests at 10 models, {mine100} at 100"
        assert int(mine100) > 0 and int(naive100) == 10 * int(naive10)
        assert re.search(r"\|\s+yes\s+\|", rows[source]), rows[source]  # constant in N
        if source != "alertmanager":  # every model's value matched the generated data
            assert rows[source].rstrip().endswith("10/10, 100/100"), rows[source]
