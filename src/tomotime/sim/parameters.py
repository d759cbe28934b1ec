"""Validated parameters of each dynamic scenario (pydantic), with their ranges.

``tomotime simulate --param name=value`` and ``--scenario-file`` go through
:func:`scenario_parameters`, which names the parameter and its range in one
line when a value is out of range or unknown.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tomotime.errors import InputError

__all__ = ["SCENARIO_PARAMETERS", "scenario_parameters", "parse_param", "read_scenario_file", "describe_parameters"]


class _Parameters(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NanorodAlloyingParameters(_Parameters):
    """``nanorod-alloying`` (see :func:`tomotime.sim.nanorod_alloying`)."""

    recipe: Literal["subdiffusion", "paper-literal"] = "subdiffusion"
    sigma: Optional[float] = Field(None, ge=0.0, le=10.0,
                                   description="first-step mixing length (core radii) or Gaussian width (voxels "
                                               "at 128^3, paper-literal)")
    exponent: float = Field(0.685, gt=0.0, le=1.0, description="mixing variance grows as t^exponent")
    convolutions: int = Field(5, ge=0, le=20, description="random 3x3x3 kernels per step (paper-literal)")


class NanoshellDamageParameters(_Parameters):
    """``nanoshell-damage`` (see :func:`tomotime.sim.nanoshell_damage`)."""

    knock_on: float = Field(0.5, ge=0.0, le=5.0, description="knock-on sputtering strength (paper: 0.5)")
    elastic: float = Field(0.55, ge=0.0, le=5.0, description="elastic deformation strength (paper: 0.55)")
    radius: float = Field(0.7, gt=0.1, lt=1.0, description="outer radius, unit coordinates")
    thickness: float = Field(0.15, gt=0.02, lt=0.6, description="wall thickness, unit coordinates")
    model: Literal["thinning", "sputter"] = "thinning"


class NanostarReshapingParameters(_Parameters):
    """``nanostar-reshaping`` (see :func:`tomotime.sim.nanostar_reshaping`)."""

    n_branches: int = Field(6, ge=1, le=20, description="number of branches")
    tau: Optional[float] = Field(None, gt=0.0, le=1e6, description="relaxation time in time steps")
    core_radius: float = Field(0.3, gt=0.0, lt=1.0, description="initial core radius, unit coordinates")
    branch_length: float = Field(0.55, ge=0.0, lt=1.0, description="branch length beyond the core")
    branch_radius: float = Field(0.14, gt=0.0, lt=1.0, description="branch radius, unit coordinates")
    plateau: float = Field(0.0, ge=0.0, lt=1.0, description="fraction of the branch length left at the end")


class NanostarRetractionParameters(_Parameters):
    """``nanostar-retraction`` (see :func:`tomotime.sim.nanostar_retraction`)."""

    n_branches: int = Field(6, ge=1, le=20, description="number of branches")
    tau: Optional[float] = Field(None, gt=0.0, le=1e6, description="retraction time in time steps (steps / 10)")
    plateau: float = Field(0.4, ge=0.0, lt=1.0, description="fraction of the branch length left at the plateau")


class NanocubeSilicaAlloyingParameters(_Parameters):
    """``nanocube-silica-alloying`` (see :func:`tomotime.sim.nanocube_silica_alloying`)."""

    mixing: float = Field(0.6, ge=0.0, le=5.0, description="final mixing length, Au-core half widths")
    inflection: float = Field(0.35, gt=0.0, lt=1.0, description="time of fastest alloying, fraction of the run")
    width: float = Field(0.08, gt=0.0, le=0.5, description="width of the logistic, fraction of the run")


SCENARIO_PARAMETERS: dict[str, type[_Parameters]] = {
    "nanorod-alloying": NanorodAlloyingParameters,
    "nanoshell-damage": NanoshellDamageParameters,
    "nanostar-reshaping": NanostarReshapingParameters,
    "nanostar-retraction": NanostarRetractionParameters,
    "nanocube-silica-alloying": NanocubeSilicaAlloyingParameters,
}


def _range(field) -> str:
    from typing import get_args, get_origin

    if get_origin(field.annotation) is Literal:
        return "one of " + ", ".join(map(str, get_args(field.annotation)))
    low = next((f"{'>=' if hasattr(m, 'ge') else '>'} {getattr(m, 'ge', getattr(m, 'gt', None))}"
                for m in field.metadata if hasattr(m, "ge") or hasattr(m, "gt")), None)
    high = next((f"{'<=' if hasattr(m, 'le') else '<'} {getattr(m, 'le', getattr(m, 'lt', None))}"
                 for m in field.metadata if hasattr(m, "le") or hasattr(m, "lt")), None)
    return " and ".join(p for p in (low, high) if p) or str(field.annotation)


def describe_parameters(name: str) -> str:
    """One line per parameter of scenario ``name``: ``name (default): range; meaning``."""
    cls = _model(name)
    return "\n".join(f"{key} (default {f.default!r}): {_range(f)}; {f.description or ''}".rstrip("; ")
                     for key, f in cls.model_fields.items())


def _model(name: str) -> type[_Parameters]:
    if name not in SCENARIO_PARAMETERS:
        raise InputError(f"scenario {name!r} is unknown; choose one of: {', '.join(SCENARIO_PARAMETERS)}")
    return SCENARIO_PARAMETERS[name]


def scenario_parameters(name: str, values: dict[str, Any]) -> dict[str, Any]:
    """Check ``values`` against scenario ``name``'s model; return only those given, converted.

    Raises
    ------
    InputError
        Naming each unknown parameter (with the accepted ones) or each value
        out of range (with the range).
    """
    cls = _model(name)
    try:
        model = cls(**values)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            if err["type"] == "extra_forbidden":
                close = difflib.get_close_matches(key, list(cls.model_fields), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                lines.append(f"{key}: not a parameter of {name} (accepted: {', '.join(cls.model_fields)}){hint}")
            else:
                field = cls.model_fields.get(key)
                allowed = f" (range: {_range(field)})" if field is not None else ""
                lines.append(f"{key}={err.get('input')!r}: {err['msg']}{allowed}")
        raise InputError(f"scenario {name!r}: " + "; ".join(lines)) from None
    return {k: getattr(model, k) for k in values}


def parse_param(text: str) -> tuple[str, str]:
    """Split ``name=value`` (the value is converted later by the scenario's model)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise InputError(f"--param {text!r}: expected name=value, e.g. --param sigma=2.5")
    return key.strip().replace("-", "_"), value.strip()


def read_scenario_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON file: a mapping ``{scenario: name, parameters: {...}}`` or just the parameters."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise InputError(f"--scenario-file {path}: no such file") from None
    except yaml.YAMLError as exc:
        raise InputError(f"--scenario-file {path}: not valid YAML/JSON ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"--scenario-file {path}: expected a mapping of parameter names to values")
    return data
