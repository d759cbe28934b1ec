"""Run files: the options of a training run as YAML, TOML or JSON.

A run file holds the configuration keys of one method at the top level (or
under a table named after the method), e.g.::

    # run.yaml
    lr: 1.0e-4
    batch_size: 4
    epochs: 50

The resolved configuration of every run is written back as ``config.json`` in
its run folder; it is itself a valid run file (JSON is YAML).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from tomotime.errors import FormatError, InputError
from tomotime.training.config import TrainingConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["read_run_file", "resolve_config"]

C = TypeVar("C", bound=TrainingConfig)
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")


def _yaml_number(value: Any) -> Any:
    """YAML 1.1 reads ``1e-4`` (no dot) as a string; users mean a number."""
    if isinstance(value, str) and _FLOAT.match(value.strip()):
        return float(value)
    return value


def _parse(path: Path, text: str) -> Any:
    suffix = path.suffix.lower()
    if suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise FormatError(f"{path}: not valid TOML: {exc}") from None
    if suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise FormatError(f"{path}: not valid JSON: {exc}") from None
    import yaml

    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise FormatError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    return {k: _yaml_number(v) for k, v in values.items()} if isinstance(values, dict) else values


def read_run_file(path: str | Path, method: str | None = None) -> dict[str, Any]:
    """Read the options of a ``.yaml``/``.yml``/``.json`` or ``.toml`` run file.

    Parameters
    ----------
    path : str or Path
        The run file.
    method : str, optional
        A file holding only a table of this name has its options read from that table.

    Raises
    ------
    FormatError
        If the file is missing, empty, of an unknown type, unparsable, or not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: run file not found")
    if path.suffix.lower() not in (".toml", ".yaml", ".yml", ".json"):
        raise FormatError(f"{path}: unknown run-file type {path.suffix!r}; expected .yaml, .yml, .json or .toml")
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        raise FormatError(f"{path}: the run file is empty; expected option names and values")
    values = _parse(path, text)
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise FormatError(f"{path}: expected a mapping of option names to values, got {type(values).__name__}")
    if method is not None and set(values) == {method} and isinstance(values[method], dict):
        values = values[method]
    return values


def resolve_config(cls: type[C], run_file: str | Path | None = None,
                   overrides: Mapping[str, Any] | None = None) -> C:
    """The validated configuration: defaults, then the run file, then ``overrides`` (e.g. CLI options).

    ``None`` values in ``overrides`` mean "not given" and leave the run file's value.

    Raises
    ------
    InputError
        Naming the run file (or "options") and every bad key.
    """
    values: dict[str, Any] = {}
    source = "options"
    if run_file is not None:
        values.update(read_run_file(run_file, cls.method))
        source = str(run_file)
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return cls.from_dict(values)
    except InputError as exc:
        raise InputError(f"{source}: {exc}") from None
