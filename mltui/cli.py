"""The `mltui` command (DESIGN.md §3).

Kept light on purpose: importing this module must not import mlflow, evidently,
pandas, kubernetes or textual, so `mltui --help` and `mltui --check` start fast.
Common flags are accepted before or after a subcommand.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar

import click

from mltui import __version__
from mltui.config import Config, ConfigError, KubernetesConfig, load_config
from mltui.durations import parse_duration

F = TypeVar("F", bound=Callable[..., Any])

EXIT_UNKNOWN = 3  # --check: a bad config or flag is UNKNOWN, as a monitoring plugin expects


@dataclass
class Options:
    """Common flags, merged from the group and the subcommand."""

    config_path: str | None = None
    read_only: bool = False
    context: str | None = None
    refresh: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def load(self) -> Config:
        """The config with the command-line overrides applied; ConfigError on bad input."""
        config = load_config(self.config_path)
        return apply_overrides(config, self)


def apply_overrides(config: Config, options: Options) -> Config:
    update: dict[str, Any] = {}
    if options.read_only:
        update["read_only"] = True
    if options.refresh is not None:
        update["refresh"] = options.refresh
    if options.context is not None:
        kube = config.kubernetes or KubernetesConfig()
        update["kubernetes"] = kube.model_copy(update={"context": options.context})
    return config.model_copy(update=update) if update else config


def _refresh(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def common_options(func: F) -> F:
    """--config, --read-only, --context, --refresh: on the group and on every subcommand."""
    func = click.option(
        "--refresh",
        callback=_refresh,
        metavar="DURATION",
        help='TUI poll interval, e.g. "5s" (overrides refresh in the config).',
    )(func)
    func = click.option(
        "--context", metavar="NAME", help="Kubernetes context (overrides [kubernetes] context)."
    )(func)
    func = click.option(
        "--read-only",
        is_flag=True,
        default=None,
        help="Take no action: hide them in the TUI, refuse them here.",
    )(func)
    func = click.option(
        "--config",
        "config_path",
        metavar="PATH",
        # $MLTUI_CONFIG is read by mltui.locations.find_config, so errors say where a path came from.
        help="Config file (default $MLTUI_CONFIG, then $XDG_CONFIG_HOME/mltui/config.toml).",
    )(func)
    return click.version_option(__version__, "--version", prog_name="mltui")(func)


def _merge(ctx: click.Context, **kwargs: Any) -> Options:
    options: Options = ctx.ensure_object(Options)
    if kwargs.get("config_path"):
        options.config_path = kwargs["config_path"]
    if kwargs.get("read_only"):
        options.read_only = True
    if kwargs.get("context"):
        options.context = kwargs["context"]
    if kwargs.get("refresh") is not None:
        options.refresh = kwargs["refresh"]
    return options


def fail(message: str, code: int = EXIT_UNKNOWN) -> NoReturn:
    """One line on stderr, then exit (3 = UNKNOWN by default, as --check requires)."""
    click.echo(f"mltui: {message}", err=True)
    sys.exit(code)


class _Group(click.Group):
    """Usage errors exit 3, not click's 2: for --check 3 is UNKNOWN, and for the action
    subcommands 2 means "failed or half-done", which a bad flag must never look like."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        argv = list(args[0]) if args and args[0] is not None else sys.argv[1:]
        check = any(a == "--check" or a.startswith("--check=") for a in argv)
        kwargs["standalone_mode"] = False
        try:
            return super().main(*args, **kwargs)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            if check:  # one line on stderr, as a monitoring plugin's caller expects
                fail(exc.format_message().replace("\n", " "))
            exc.show()
            sys.exit(EXIT_UNKNOWN)
        except click.Abort:
            fail("aborted")


@click.group(
    cls=_Group,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "--check",
    is_flag=True,
    help="Print one health report and exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Report format for --check.",
)
@click.option(
    "--model",
    "models",
    multiple=True,
    metavar="NAME",
    help="Limit --check to this model (repeatable).",
)
@click.option(
    "--demo",
    is_flag=True,
    help="Start the embedded demo fleet and open the TUI on it (with --check: report on it).",
)
@click.option(
    "--demo-reset", is_flag=True, help="With --demo: delete the demo workspace and build it anew."
)
@common_options
@click.pass_context
def main(
    ctx: click.Context,
    check: bool,
    fmt: str,
    models: tuple[str, ...],
    demo: bool,
    demo_reset: bool,
    **common: Any,
) -> None:
    """Monitor and operate deployed ML models from the terminal.

    \b
    mltui                      the interactive TUI
    mltui --check              one health report (exit 0/1/2/3), for cron and CI
    mltui --demo               a live local demo fleet, no infrastructure needed
    mltui promote MODEL        promote the canary / challenger
    mltui rollback MODEL       roll back to the previous version
    mltui retrain MODEL        start a retraining run
    mltui drift MODEL          compute data drift for one model

    Config: $MLTUI_CONFIG or ~/.config/mltui/config.toml (see README).
    """
    options = _merge(ctx, **common)
    if ctx.invoked_subcommand is not None:
        if check or demo:
            fail("--check and --demo do not combine with a subcommand", EXIT_UNKNOWN)
        return
    if demo:
        from mltui.demo import run_demo

        sys.exit(run_demo(options, check=check, fmt=fmt, models=models, reset=demo_reset))
    if check:
        try:
            config = options.load()
        except ConfigError as exc:
            fail(str(exc).replace("\n", " "))
        from mltui.report import run_check

        sys.exit(run_check(config, fmt=fmt, models=list(models)))
    if models:
        fail("--model goes with --check", EXIT_UNKNOWN)
    try:
        config = options.load()
    except ConfigError as exc:
        fail(str(exc), 3)
    from mltui.app import run_app

    sys.exit(run_app(config))


def _action_command(action: str, summary: str) -> click.Command:
    def command(
        ctx: click.Context,
        model: str,
        yes: bool,
        dry_run: bool,
        fmt: str,
        to_revision: str | None = None,
        **common: Any,
    ) -> None:
        options = _merge(ctx, **common)
        try:
            config = options.load()
        except ConfigError as exc:
            fail(str(exc))
        from mltui.actions.cli import run_action

        sys.exit(
            run_action(
                config, action, model, yes=yes, dry_run=dry_run, fmt=fmt, to_revision=to_revision
            )
        )

    decorated: Any = click.pass_context(command)
    decorated = common_options(decorated)
    if action == "rollback":  # the one action with a choice of where to go
        decorated = click.option(
            "--to-revision",
            metavar="N",
            help="The revision (Deployment/Rollout) or model version (alias) to return to.",
        )(decorated)
    decorated = click.option(
        "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
    )(decorated)
    decorated = click.option(
        "--dry-run", is_flag=True, help="Validate against the servers (dryRun=All); write nothing."
    )(decorated)
    decorated = click.option("--yes", "-y", is_flag=True, help="Apply without asking.")(decorated)
    decorated = click.argument("model")(decorated)
    return click.command(name=action, help=summary)(decorated)


main.add_command(
    _action_command("promote", "Promote MODEL's canary (or challenger) to stable and champion.")
)
main.add_command(_action_command("rollback", "Roll MODEL back to its previous version."))
main.add_command(
    _action_command(
        "retrain", "Start retraining MODEL (CronJob, webhook or command from the config)."
    )
)


@main.command(name="drift")
@click.argument("model")
@click.option(
    "--html", "html_path", metavar="PATH", help="Also write the full Evidently HTML report here."
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@common_options
@click.pass_context
def drift_command(
    ctx: click.Context, model: str, html_path: str | None, fmt: str, **common: Any
) -> None:
    """Compute data drift for MODEL now and print it per feature.

    A result cached for unchanged files is printed without recomputing.

    \b
    Exit codes:
      0  drift computed (or read) and printed, drifted or not:
         mltui --check judges it against drift_share
      2  computing failed (missing or bad data, MLflow unreachable, ...);
         the reason is on stderr
      3  usage or config error: a bad flag, a bad config, an unknown
         MODEL, or a MODEL without [models.drift]
    """
    options = _merge(ctx, **common)
    try:
        config = options.load()
    except ConfigError as exc:
        fail(str(exc))
    from mltui.collectors.drift_cli import run_drift

    sys.exit(run_drift(config, model, html_path=html_path, fmt=fmt))


if __name__ == "__main__":  # pragma: no cover
    main()
