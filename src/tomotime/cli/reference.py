"""The command-line reference, generated from the ``tomotime`` command itself (for the user guide).

Each section is the command's own ``--help`` output, so the reference cannot
drift from the code.
"""

from __future__ import annotations

import typer
from typer.testing import CliRunner

__all__ = ["cli_reference_markdown", "command_names", "command_help"]

_WIDTH = "100"


def command_names() -> list[str]:
    """The subcommands of ``tomotime``, in registration order."""
    from tomotime.cli.main import app

    return list(typer.main.get_command(app).commands)


def command_help(name: str | None = None) -> str:
    """The ``--help`` text of ``tomotime [NAME]``, plain (no colour), 100 columns wide."""
    from tomotime.cli.main import app

    args = [name, "--help"] if name else ["--help"]
    result = CliRunner().invoke(app, args, env={"COLUMNS": _WIDTH, "NO_COLOR": "1", "TERM": "dumb"}, color=False)
    if result.exit_code != 0:
        raise RuntimeError(f"tomotime {' '.join(args)} failed: {result.output}")
    lines = [line.rstrip() for line in result.output.splitlines()]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def cli_reference_markdown(heading: str = "##") -> str:
    """Markdown: the top-level help, then one section per subcommand with its help text."""
    from tomotime.cli.main import app

    commands = typer.main.get_command(app).commands
    out = ["```text", command_help(), "```", ""]
    for name, command in commands.items():
        summary = " ".join((command.help or "").split("\n\n")[0].split())
        out += [f"{heading} tomotime {name}", "", summary, "", "```text", command_help(name), "```", ""]
    return "\n".join(out)
