"""Every registered ``deeplake-sdk`` command has a ``--help`` with at least one example."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from deeplake_sdk.cli import COMMANDS, build_parser


def registered_commands(command: str | None = None) -> list[str]:
    parser = build_parser(command)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(sub.choices)


def test_each_command_is_built_from_the_module_it_is_mapped_to():
    assert registered_commands() == sorted(COMMANDS)
    for command, module in COMMANDS.items():
        assert registered_commands(command) == sorted(c for c, m in COMMANDS.items() if m == module)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "deeplake_sdk.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_filesystem_commands_are_registered():
    assert {"ls", "cat", "write", "append", "rm", "grep", "query", "tables", "serve"} <= set(
        registered_commands()
    )


@pytest.mark.parametrize("command", registered_commands())
def test_help_exits_0_with_an_example(command):
    proc = run_cli(command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: deeplake-sdk {command}")
    _, sep, examples = proc.stdout.partition("\nexamples:\n")
    assert sep, f"'deeplake-sdk {command} --help' has no examples section"
    assert any(
        line.strip().startswith(("deeplake-sdk ", "DEEPLAKE_")) or "| deeplake-sdk " in line
        for line in examples.splitlines()
    ), examples


def test_top_level_help_and_usage_error():
    proc = run_cli("--help")
    assert proc.returncode == 0 and "COMMAND" in proc.stdout
    proc = run_cli()
    assert proc.returncode == 2  # no command: usage on stderr
    proc = run_cli("no-such-command")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_version_is_printed_without_building_the_commands():
    """``--version`` alone imports no command module (the server's, the benchmark's...)."""
    probe = (
        "import sys\n"
        "from deeplake_sdk.cli import main\n"
        "try:\n"
        "    main(['--version'])\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        "print(sorted(m for m in sys.modules if m.startswith('deeplake_sdk.cli.')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    from deeplake_sdk import __version__

    assert done.stdout.splitlines() == [
        f"deeplake-sdk {__version__}",
        "['deeplake_sdk.cli._common']",
    ]
    listed = run_cli("--help", "--version").stdout  # help first: it lists every command
    assert all(command in listed for command in COMMANDS)
