"""MkDocs hook: replaces the marker ``<!-- cli-reference -->`` with the reference generated from the CLI.

tomotime must be importable (``pip install -e .``).
"""

from __future__ import annotations

MARKER = "<!-- cli-reference -->"


def on_page_markdown(markdown, page, config, files):
    if MARKER not in markdown:
        return markdown
    from tomotime.cli.reference import cli_reference_markdown

    return markdown.replace(MARKER, cli_reference_markdown())
