"""The ``tomotime`` command line (typer): one module per command, registered in :mod:`tomotime.cli.main`."""
