"""Recipes: ordered preprocessing steps with validated parameters, stored as YAML.

A step is a function ``fn(series, **params) -> TiltSeries`` registered under a
name with a pydantic model of its parameters (unknown parameters refused)::

    @register_step("bin", BinParams)
    def bin_series(series, factor=2, method="mean"): ...

A recipe file lists steps in order, each a one-key mapping from the step name
to its parameters::

    tomotime_recipe: 1
    steps:
      - bin: {factor: 2}
      - subtract_background: {method: median}
      - mask_background: {k: 0.9}

:func:`apply_recipe` runs it on a series; :func:`save_recipe` writes the
recipe with every parameter spelled out (defaults included) so it can be
re-applied to another series exactly.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from tomotime.data import TiltSeries
from tomotime.errors import FormatError, InputError
from tomotime.io.atomic import atomic_path

__all__ = ["StepParams", "Step", "STEPS", "register_step", "Recipe", "RecipeStep", "parse_recipe", "load_recipe",
           "save_recipe", "recipe_to_dict", "apply_recipe", "parse_step_option", "run_step"]

RECIPE_VERSION = 1


class StepParams(BaseModel):
    """Base of every step's parameter model: unknown parameters are an error."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Step:
    """A registered step: its name, function and parameter model."""

    name: str
    fn: Callable[..., TiltSeries]
    params: type[StepParams]

    @property
    def summary(self) -> str:
        doc = (self.fn.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


STEPS: dict[str, Step] = {}
"""Registry of steps by name (filled when :mod:`tomotime.preprocess` is imported)."""


def register_step(name: str, params: type[StepParams]) -> Callable[[Callable[..., TiltSeries]], Callable[..., TiltSeries]]:
    """Decorator registering ``fn(series, **params) -> TiltSeries`` as the recipe step ``name``.

    Raises
    ------
    ValueError
        If ``name`` is taken by a different function.
    """

    def decorate(fn: Callable[..., TiltSeries]) -> Callable[..., TiltSeries]:
        known = STEPS.get(name)
        if known is not None and known.fn is not fn:
            raise ValueError(f"preprocessing step {name!r} is registered already (by {known.fn.__module__})")
        STEPS[name] = Step(name, fn, params)
        return fn

    return decorate


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


@dataclass(frozen=True)
class RecipeStep:
    """One step of a recipe with its validated parameters."""

    name: str
    params: StepParams

    def as_dict(self) -> dict[str, Any]:
        return {self.name: self.params.model_dump(mode="json")}


@dataclass(frozen=True)
class Recipe:
    """An ordered list of validated steps."""

    steps: tuple[RecipeStep, ...]

    def __len__(self) -> int:
        return len(self.steps)


def _validate_step(name: str, params: Any, where: str) -> RecipeStep:
    step = STEPS.get(name)
    if step is None:
        raise InputError(f"{where}: unknown preprocessing step {name!r}{_suggest(name, STEPS)} "
                         f"(known steps: {', '.join(sorted(STEPS))})")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise InputError(f"{where}: the parameters of step {name!r} must be a mapping key: value, got {params!r}")
    fields = step.params.model_fields
    for key in params:
        if key not in fields:
            raise InputError(f"{where}: step {name!r} has no parameter {key!r}{_suggest(str(key), fields)} "
                             f"(parameters: {', '.join(fields) or 'none'})")
    try:
        return RecipeStep(name, step.params(**params))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']} (got {e.get('input')!r})"
                             for e in exc.errors())
        raise InputError(f"{where}: step {name!r}: {problems}") from None


def parse_recipe(data: Any, *, source: str = "recipe") -> Recipe:
    """Validate a recipe given as ``{"steps": [{name: params}, ...]}`` (or the bare list).

    Raises
    ------
    InputError
        For an unknown step or parameter (with the closest known name), a
        parameter of the wrong type or range, or a malformed layout.
    """
    if isinstance(data, dict):
        unknown = set(data) - {"steps", "tomotime_recipe"}
        if unknown:
            raise InputError(f"{source}: unknown key(s) {sorted(unknown)}; expected 'steps' (and 'tomotime_recipe')")
        version = data.get("tomotime_recipe", RECIPE_VERSION)
        if version != RECIPE_VERSION:
            raise InputError(f"{source}: recipe version {version!r} is not supported (expected {RECIPE_VERSION})")
        data = data.get("steps")
    if not isinstance(data, list) or not data:
        raise InputError(f"{source}: expected a non-empty list of steps, each 'name: {{parameter: value}}'")
    steps = []
    for i, item in enumerate(data, start=1):
        where = f"{source}: step {i}"
        if isinstance(item, str):
            item = {item: {}}
        if not isinstance(item, dict) or len(item) != 1:
            raise InputError(f"{where}: expected one mapping 'name: {{parameter: value}}', got {item!r}")
        (name, params), = item.items()
        steps.append(_validate_step(str(name), params, where))
    return Recipe(tuple(steps))


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    """The YAML-ready form of ``recipe``, every parameter spelled out."""
    return {"tomotime_recipe": RECIPE_VERSION, "steps": [s.as_dict() for s in recipe.steps]}


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe YAML file (see the module description)."""
    p = Path(path)
    if not p.is_file():
        raise FormatError(f"{p}: no such recipe file")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise FormatError(f"{p}: not valid YAML ({exc})") from None
    return parse_recipe(data, source=str(p))


def save_recipe(recipe: Recipe, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``recipe`` as YAML, atomically; returns ``path``."""
    text = yaml.safe_dump(recipe_to_dict(recipe), sort_keys=False, default_flow_style=None)
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def run_step(series: TiltSeries, step: RecipeStep) -> TiltSeries:
    """Apply one validated step."""
    return STEPS[step.name].fn(series, **dict(step.params))


def apply_recipe(series: TiltSeries, recipe: Recipe, *, progress: Callable[[str], None] | None = None) -> TiltSeries:
    """Run the steps of ``recipe`` in order on ``series`` and return the result.

    Each step appends its record to ``metadata["preprocessing"]``.
    """
    for step in recipe.steps:
        if progress is not None:
            progress(step.name)
        series = run_step(series, step)
    return series


def _split_top(text: str) -> list[str]:
    """Split on commas outside brackets: ``box=[0,8,0,8],fill=0`` -> two items."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char in "[{(" 
        depth -= char in "]})"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def parse_step_option(text: str) -> RecipeStep:
    """Parse a command-line step ``name`` or ``name:key=value,key=value`` (values read as YAML).

    Examples: ``bin:factor=2``, ``crop:box=[0,128,0,128]``, ``normalise:mode=total``.
    """
    name, _, rest = text.partition(":")
    params: dict[str, Any] = {}
    for item in _split_top(rest):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise InputError(f"--step {text!r}: expected name:key=value[,key=value...], got {item!r}")
        try:
            params[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            params[key.strip()] = value
    return _validate_step(name.strip(), params, f"--step {text!r}")
