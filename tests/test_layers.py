"""Architecture contracts: headless layers stay headless, the CLI starts light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mltui"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", ["collectors", "actions"])
def test_headless_layers_never_import_textual(layer):
    files = sorted((PACKAGE / layer).rglob("*.py"))
    assert files, f"mltui/{layer} has no modules"
    offenders = {
        str(f.relative_to(PACKAGE)): sorted(
            m for m in imported_modules(f) if m.split(".")[0] == "textual"
        )
        for f in files
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_importing_the_cli_imports_no_heavy_library():
    heavy = ["mlflow", "evidently", "pandas", "kubernetes", "textual", "sklearn"]
    code = f"import sys, mltui.cli; print(','.join(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_help_documents_every_command_and_flag():
    out = subprocess.run(
        [sys.executable, "-m", "mltui", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for word in [
        "--check",
        "--demo",
        "--config",
        "--read-only",
        "--context",
        "--refresh",
        "--version",
        "--format",
        "--model",
        "promote",
        "rollback",
        "retrain",
    ]:
        assert word in out, word


def test_common_flags_are_accepted_after_a_subcommand(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("nope = 1\n")
    out = subprocess.run(
        [sys.executable, "-m", "mltui", "promote", "churn", "--config", str(bad)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 3
    assert f"{bad}:1: nope: unknown key" in out.stderr


def test_bad_flag_under_check_is_unknown_with_one_line(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "mltui", "--check", "--format", "yaml"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 3
    assert len(out.stderr.strip().splitlines()) == 1 and "yaml" in out.stderr


def test_version_flag():
    from mltui import __version__

    out = subprocess.run(
        [sys.executable, "-m", "mltui", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and __version__ in out.stdout


def test_binding_ids_known_to_the_config_match_the_app():
    """[keys] is validated against mltui.bindings; it must list exactly the app's ids."""
    import importlib
    import inspect
    import pkgutil

    from textual.binding import Binding

    import mltui.app
    import mltui.screens
    import mltui.widgets
    from mltui.bindings import BINDING_IDS

    modules = [mltui.app]
    for package in (mltui.screens, mltui.widgets):
        modules += [
            importlib.import_module(f"{package.__name__}.{m.name}")
            for m in pkgutil.iter_modules(package.__path__)
        ]
    ids = {
        b.id
        for module in modules
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if cls.__module__ == module.__name__
        for b in cls.__dict__.get("BINDINGS", [])
        if isinstance(b, Binding) and b.id
    }
    assert ids == BINDING_IDS


def test_version_after_a_subcommand_and_to_revision_only_on_rollback():
    from mltui import __version__

    out = subprocess.run(
        [sys.executable, "-m", "mltui", "promote", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and __version__ in out.stdout
    helps = {
        action: subprocess.run(
            [sys.executable, "-m", "mltui", action, "--help"], capture_output=True, text=True
        ).stdout
        for action in ("promote", "rollback", "retrain")
    }
    assert "--to-revision" in helps["rollback"]
    assert "--to-revision" not in helps["promote"] and "--to-revision" not in helps["retrain"]


def test_config_from_the_environment_says_so_in_its_errors(tmp_path):
    import os

    missing = tmp_path / "absent.toml"
    out = subprocess.run(
        [sys.executable, "-m", "mltui", "--check"],
        capture_output=True,
        text=True,
        env={**os.environ, "MLTUI_CONFIG": str(missing)},
    )
    assert out.returncode == 3
    assert f"{missing}: config file not found (from $MLTUI_CONFIG)" in out.stderr
