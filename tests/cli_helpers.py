"""Helpers shared by the command-line tests."""

from __future__ import annotations

from typer.testing import CliRunner

from tomotime.cli.main import app


def invoke(*args):
    """Run ``tomotime ARGS...`` in-process; arguments are converted to strings."""
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_input_error(result, *fragments):
    """The command failed cleanly: exit code 2, ``error: ...`` on stderr holding every fragment, no traceback."""
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
