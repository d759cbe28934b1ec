"""The user guide: it builds with ``mkdocs build --strict``, and every quick-start command runs (tiny sizes)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from cli_helpers import invoke
from tomotime.cli.reference import cli_reference_markdown, command_names

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "docs" / "quickstart.md"

#: Sizes of the quick start -> tiny sizes for the test; each must occur in the page.
TINY = {
    "tomotime demo --out demo_output": "tomotime demo --out demo_output --size 16 --steps 10 --dipster-steps 20",
    "--size 64": "--size 16",
    "--steps 100": "--steps 10",
    "--window 30": "--window 5",
    "--iterations 30": "--iterations 3",
    "--steps 2000": "--steps 20",
    "--index 20": "--index 8",
    "--time 12.5": "--time 4.5",
}


def quickstart_commands() -> list[str]:
    """The ``tomotime ...`` lines of the quick start's bash blocks, in order."""
    blocks = re.findall(r"```bash\n(.*?)```", QUICKSTART.read_text(), flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip().startswith("tomotime ")]


def test_every_quickstart_command_runs(tmp_path, monkeypatch):
    commands = quickstart_commands()
    text = "\n".join(commands)
    for size in TINY:
        assert size in text, f"the quick start no longer holds {size!r}; update TINY"
    monkeypatch.chdir(tmp_path)
    for command in commands:
        for size, tiny in TINY.items():
            command = command.replace(size, tiny)
        result = invoke(*shlex.split(command)[1:])
        assert result.exit_code == 0, f"{command}\n{result.output}"
    for made in ("demo_output/report.html", "demo_report.html", "sim/truth.h5", "dyn/volumes.h5", "dyn/report.html",
                 "dyn/movie.mp4", "dyn/movie.gif", "dyn/eval/metrics.csv", "dyn/volumes.emd", "rod/report.html",
                 "rod/t12_5.mrc"):
        assert (tmp_path / made).is_file(), made
    assert 'id="training"' in (tmp_path / "rod" / "report.html").read_text()


def test_cli_reference_covers_every_command():
    text = cli_reference_markdown()
    for name in command_names():
        assert f"## tomotime {name}\n" in text
        assert f"Usage: tomotime {name} " in text
    assert {"report", "movie", "view", "export"} <= set(command_names())


@pytest.mark.slow
def test_guide_builds_in_strict_mode(tmp_path):
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (pip install -e '.[dev]')")
    pytest.importorskip("mkdocstrings", reason="mkdocstrings is not installed (pip install -e '.[dev]')")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                             str(ROOT / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    cli = (tmp_path / "site" / "cli" / "index.html").read_text()
    assert "tomotime report" in cli and "--no-report" in cli
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    assert "write_report" in api and "reprojection_error" in api
    assert (tmp_path / "site" / "images" / "conventions.png").is_file()
