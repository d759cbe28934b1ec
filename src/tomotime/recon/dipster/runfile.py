"""DIP-STER run files: the hyperparameters of a run as YAML or TOML.

A run file holds :class:`~tomotime.recon.dipster.config.DipsterConfig` keys at
the top level (or under a ``dipster`` table), e.g.::

    # run.yaml
    manifold: cos-sin-y-t
    hidden: [512, 512]
    lr: 1.0e-4
    batch_size: 4
    epochs: 50

Unknown keys, wrong types and impossible combinations are reported with the
file name; the resolved configuration of every run is written back as
``config.json`` in its run folder, which is itself a valid run file (JSON is YAML).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, Mapping

from tomotime.errors import FormatError, InputError
from tomotime.recon.dipster.config import DipsterConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["read_run_file", "resolve_config"]


_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")


def _yaml_number(value: Any) -> Any:
    """YAML 1.1 reads ``1e-4`` (no dot) as a string; users mean a number."""
    if isinstance(value, str) and _FLOAT.match(value.strip()):
        return float(value)
    if isinstance(value, dict):
        return {k: _yaml_number(v) for k, v in value.items()}
    return value


def read_run_file(path: str | Path) -> dict[str, Any]:
    """Read the options of a ``.yaml``/``.yml``/``.json`` or ``.toml`` run file."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: run file not found")
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml", ".json"):
        raise FormatError(f"{path}: unknown run-file type {path.suffix!r}; expected .yaml, .yml, .json or .toml")
    text = path.read_text(encoding="utf-8")
    if suffix == ".toml":
        try:
            values = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise FormatError(f"{path}: not valid TOML: {exc}") from exc
    elif suffix == ".json":
        try:
            values = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FormatError(f"{path}: not valid JSON: {exc}") from exc
    else:
        import yaml

        try:
            values = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise FormatError(f"{path}: not valid YAML: {exc}") from exc
        if isinstance(values, dict):
            values = {k: _yaml_number(v) for k, v in values.items()}
    values = {} if values is None else values
    if not isinstance(values, dict):
        raise FormatError(f"{path}: expected a mapping of option names to values, got {type(values).__name__}")
    if set(values) == {"dipster"} and isinstance(values["dipster"], dict):
        values = values["dipster"]
    return values


def resolve_config(run_file: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> DipsterConfig:
    """The validated configuration: defaults, then the run file, then ``overrides`` (e.g. CLI options).

    ``None`` values in ``overrides`` mean "not given" and leave the run file's value.
    """
    values: dict[str, Any] = {}
    source = "options"
    if run_file is not None:
        values.update(read_run_file(run_file))
        source = str(run_file)
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return DipsterConfig.from_dict(values).validate()
    except InputError as exc:
        raise InputError(f"{source}: {exc}") from exc
    except TypeError as exc:
        raise InputError(f"{source}: {exc}") from exc
