"""claimsctl: every command documents itself and the settings it reads."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from claimsctl.cli import main


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, cmd in group.commands.items():
        out.append((*prefix, name))
        if isinstance(cmd, click.Group):
            out.extend(_commands(cmd, (*prefix, name)))
    return out


@pytest.mark.parametrize("path", _commands(main), ids=lambda p: " ".join(p))
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    # A one-line description, not just the usage line.
    assert len(result.output.strip().splitlines()) >= 3


def test_top_level_help_lists_the_stack_commands() -> None:
    result = CliRunner().invoke(main, ["--help"])
    for name in ("up", "down", "status", "simulate", "demo"):
        assert name in result.output
