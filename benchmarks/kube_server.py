"""The Kubernetes API stand-in holding the benchmark fleet, in a process of its own.

Run by :mod:`benchmarks.backends` as ``python benchmarks/kube_server.py --models N
--kubeconfig PATH``. The stand-in (``tests/support/kube_standin.py``) serves from
threads; in its own process its JSON work never competes with the collector being
measured for the GIL, and its memory never counts in the collector's peak RSS.

It stores N Deployments (``model-0000``…, every tenth with a ``-canary`` Deployment)
built by ``tests/support/manifests.py``; the stand-in's controller gives each its
ReplicaSet. When ready it prints ``READY <url>`` and serves until stdin closes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.fleet_data import NAMESPACE, has_canary, model_name  # noqa: E402
from tests.support import manifests  # noqa: E402
from tests.support.kube_standin import DEFAULT_TOKEN, KubeStandin, kubeconfig  # noqa: E402

CONTEXT = "standin"


def populate(standin: KubeStandin, n: int) -> None:
    """N stable Deployments (version "3") and a canary (version "4") for every tenth."""
    for i in range(n):
        name = model_name(i)
        standin.put(manifests.deployment(name, namespace=NAMESPACE, model=name, version="3"))
        if has_canary(i):
            standin.put(
                manifests.canary_deployment(name, namespace=NAMESPACE, version="4", replicas=1)
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=int, required=True)
    parser.add_argument("--kubeconfig", type=Path, required=True)
    args = parser.parse_args()

    standin = KubeStandin(name=CONTEXT).start()
    populate(standin, args.models)
    standin.clear_log()  # the request log would grow for ever in a long soak
    args.kubeconfig.write_text(
        json.dumps(kubeconfig({CONTEXT: standin.url}, token=DEFAULT_TOKEN, namespace=NAMESPACE))
    )
    print(f"READY {standin.url}", flush=True)
    sys.stdin.read()  # serve until the parent closes our stdin (or dies)
    standin.stop()


if __name__ == "__main__":
    main()
