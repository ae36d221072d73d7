"""``mltui --demo``: a live, closed-loop ML fleet on 127.0.0.1, no infrastructure needed.

The pieces (each its own module):

* :mod:`~mltui.demo.workspace` — the reusable workspace in the user cache dir;
* :mod:`~mltui.demo.train` — scikit-learn models in a local MLflow store, and the
  ``retrain`` command;
* :mod:`~mltui.demo.server` — the model server (champion + canary challenger,
  Prometheus metrics, parquet inference log);
* :mod:`~mltui.demo.traffic` — the request stream, with drift after a while;
* :mod:`~mltui.demo.prometheus` — a real Prometheus when one is installed;
* :mod:`~mltui.demo.config_template` — the ``mltui.toml`` the demo runs with;
* :mod:`~mltui.demo.environment` — starting and stopping all of it.

``MLTUI_DEMO_FAST=1`` makes drift start at once and the server follow aliases and
write its log every second (tests and screencasts). ``MLTUI_DEMO_DIR`` moves the
workspace.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mltui.cli import Options

LIVE_TIMEOUT_S = 60.0
"""``--demo --check`` waits at most this long for live numbers before reporting."""


def run_demo(
    options: Options,
    *,
    check: bool,
    fmt: str = "text",
    models: Sequence[str] = (),
    reset: bool = False,
) -> int:
    """Start the demo, run the TUI (or ``--check``) on it, stop everything; the exit code."""
    from mltui.cli import EXIT_UNKNOWN, apply_overrides
    from mltui.demo.environment import DemoEnvironment, DemoError
    from mltui.demo.processes import install_cleanup, stop_all
    from mltui.demo.workspace import default_workspace

    install_cleanup()
    env = DemoEnvironment(default_workspace())
    try:
        config = apply_overrides(env.start(reset=reset), options)
        if check:
            from mltui.report import run_check

            missing = env.wait_live(config, LIVE_TIMEOUT_S)
            if missing:
                env.log(
                    f"mltui demo: no live numbers yet for {', '.join(missing)}; reporting anyway"
                )
            return run_check(config, fmt=fmt, models=list(models))
        from mltui.app import run_app

        return run_app(config)
    except DemoError as exc:
        print(f"mltui: {exc}", file=sys.stderr)
        return EXIT_UNKNOWN
    except KeyboardInterrupt:
        return 130
    finally:
        env.stop()
        stop_all()
