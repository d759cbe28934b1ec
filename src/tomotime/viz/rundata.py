"""What a run folder holds, read tolerantly: every piece that is missing becomes a note, not an error.

A run folder is what ``tomotime reconstruct``, ``tomotime demo`` (and other
commands that write a ``summary.json``) leave behind:

* ``summary.json`` -- command, input, method, options or configuration, device, timings;
  optionally ``volumes`` (method name -> file) and ``truth`` (file), relative to the folder;
* ``volumes.h5`` (a volume series) or ``volume.mrc`` / ``volume.tiff`` (one volume);
* ``run/`` -- a training run: ``config.json``, ``metrics.csv``, ``summary.json``;
* ``metrics.json`` -- an evaluation against a truth (``tomotime evaluate``, the demo).

The input tilt series is the file named in ``summary.json`` (``input.file``), with
the angle file of the run (``options.angles``) when one was given;
a ground truth is ``truth.h5`` in the run folder or beside the input (as
``tomotime simulate`` writes it), with ``scenario.json`` giving the dose.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tomotime.data import TiltSeries, VolumeSeries
from tomotime.errors import InputError, TomotimeError

__all__ = ["RunContents", "load_run", "method_label", "RESULT_FILES"]

log = logging.getLogger(__name__)

RESULT_FILES = ("volumes.h5", "volume.mrc", "volume.tiff")
_LABELS = {"dipster": "DIP-STER", "sirt": "SIRT", "fbp": "FBP", "em": "EM"}


@dataclass
class RunContents:
    """The readable parts of a run folder; ``notes`` say what could not be read and why."""

    folder: Path
    summary: dict[str, Any] = field(default_factory=dict)
    series: TiltSeries | None = None
    volumes: dict[str, VolumeSeries] = field(default_factory=dict)
    truth: VolumeSeries | None = None
    history: dict[str, np.ndarray] | None = None
    best_step: int | None = None
    config: dict[str, Any] | None = None
    evaluation: dict[str, dict[str, Any]] | None = None
    dose: float | None = None
    frames: dict[str, np.ndarray] | None = None
    notes: list[str] = field(default_factory=list)
    _open: list[Any] = field(default_factory=list, repr=False)

    def close(self) -> None:
        """Close the HDF5 files held open by the lazy volume series."""
        for handle in self._open:
            try:
                handle.close()
            except Exception:  # an already closed file
                pass
        self._open.clear()

    def __enter__(self) -> RunContents:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def method_label(summary: dict[str, Any]) -> str:
    """A readable method name from a ``summary.json``: ``SIRT (sliding window)``, ``DIP-STER``, ..."""
    method = str(summary.get("method", "result"))
    label = _LABELS.get(method, method)
    if (summary.get("options") or {}).get("window"):
        label += " (sliding window)"
    return label


def _read_json(path: Path, notes: list[str]) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        notes.append(f"{path.name}: could not be read ({exc})")
        return None
    return value if isinstance(value, dict) else None


def _read_history(path: Path, notes: list[str]) -> dict[str, np.ndarray] | None:
    try:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        notes.append(f"{path}: could not be read ({exc})")
        return None
    if not rows or "step" not in rows[0]:
        notes.append(f"{path}: no 'step' column or no rows; training curves omitted")
        return None

    def number(text: str | None) -> float:
        try:
            return float(text) if text not in (None, "") else np.nan
        except ValueError:
            return np.nan

    return {key: np.array([number(row.get(key)) for row in rows]) for key in rows[0] if key}


def _resolve(folder: Path, name: str | None) -> Path | None:
    if not name:
        return None
    path = Path(name)
    return path if path.is_absolute() else folder / path


def _open_series(path: Path, contents: RunContents) -> VolumeSeries | None:
    from tomotime.io import read_volume_series

    try:
        series = read_volume_series(path)
    except TomotimeError as exc:
        contents.notes.append(f"{path.name}: not readable as a volume series ({exc})")
        return None
    contents._open.append(series.data.file)
    return series


def _load_volumes(contents: RunContents) -> None:
    from tomotime.io import read_volume

    folder, summary = contents.folder, contents.summary
    listed = summary.get("volumes")
    if isinstance(listed, dict):
        for name, file in listed.items():
            path = _resolve(folder, str(file))
            if path is not None and path.is_file():
                series = _open_series(path, contents)
                if series is not None:
                    contents.volumes[str(name)] = series
            else:
                contents.notes.append(f"{file} (volumes of {name}, listed in summary.json) is missing; "
                                      "its result sections are omitted")
        return
    label = method_label(summary)
    if (folder / "volumes.h5").is_file():
        series = _open_series(folder / "volumes.h5", contents)
        if series is not None:
            contents.volumes[label] = series
        return
    for name in ("volume.mrc", "volume.tiff"):
        if (folder / name).is_file():
            try:
                volume, voxel = read_volume(folder / name)
            except TomotimeError as exc:
                contents.notes.append(f"{name}: not readable ({exc})")
                return
            contents.volumes[label] = VolumeSeries(np.asarray(volume, np.float32)[None], voxel_size=voxel)
            return
    expected = [o for o in summary.get("outputs", []) if o in RESULT_FILES] or ["volumes.h5 or volume.mrc"]
    contents.notes.append(f"{', '.join(expected)}: missing from {folder}; the result and quality sections "
                          "are omitted")


def _load_input(contents: RunContents) -> Path | None:
    from tomotime.io import read_tilt_series

    info = contents.summary.get("input") or {}
    path = _resolve(contents.folder, info.get("file"))
    if path is None:
        contents.notes.append("summary.json names no input tilt series; the input section is omitted")
        return None
    if not path.is_file():
        contents.notes.append(f"input tilt series {path} is missing; the input section and the reprojection "
                              "error are omitted")
        return None
    options = contents.summary.get("options") or {}
    angles = _resolve(contents.folder, options.get("angles")) if isinstance(options.get("angles"), str) else None
    if angles is not None and not angles.is_file():
        contents.notes.append(f"angle file {angles} (--angles of the run) is missing; the input section and the "
                              "reprojection error are omitted")
        return path
    try:
        contents.series = read_tilt_series(path, angles=angles,
                                           allow_wide_angles=bool(options.get("allow_wide_angles")))
    except TomotimeError as exc:
        contents.notes.append(f"input tilt series {path}: not readable ({exc})")
    return path


def _load_truth(contents: RunContents, input_path: Path | None) -> None:
    candidates = [_resolve(contents.folder, contents.summary.get("truth")), contents.folder / "truth.h5"]
    if input_path is not None:
        candidates.append(input_path.parent / "truth.h5")
        scenario = input_path.parent / "scenario.json"
        if scenario.is_file():
            dose = (_read_json(scenario, contents.notes) or {}).get("dose")
            contents.dose = float(dose) if isinstance(dose, (int, float)) else None
    for path in candidates:
        if path is not None and path.is_file():
            contents.truth = _open_series(path, contents)
            return


def _load_training(contents: RunContents) -> None:
    run = contents.folder / str(contents.summary.get("run_dir") or "run")
    if (run / "metrics.csv").is_file():
        contents.history = _read_history(run / "metrics.csv", contents.notes)
    elif contents.summary.get("method") == "dipster":
        contents.notes.append(f"{run / 'metrics.csv'} is missing; training curves omitted")
    training = contents.summary.get("training") or {}
    run_summary = _read_json(run / "summary.json", contents.notes) if (run / "summary.json").is_file() else None
    best = training.get("best_step", (run_summary or {}).get("best_step"))
    contents.best_step = int(best) if isinstance(best, (int, float)) else None
    config = contents.summary.get("config")
    if not isinstance(config, dict) and (run / "config.json").is_file():
        config = _read_json(run / "config.json", contents.notes)
    contents.config = config if isinstance(config, dict) else None


def _load_evaluation(contents: RunContents) -> None:
    path = contents.folder / "metrics.json"
    if not path.is_file():
        return
    value = _read_json(path, contents.notes)
    if value and all(isinstance(v, dict) and "times" in v for v in value.values()):
        contents.evaluation = value


def _load_frames(contents: RunContents) -> None:
    """The input movie and the denoised one of a ``tomotime denoise`` folder."""
    from tomotime.io.movie import read_movie

    frames = {}
    for label, path in (("noisy input", _resolve(contents.folder, contents.summary["input"]["file"])),
                        ("denoised", contents.folder / str(contents.summary["output"]))):
        if path is None or not path.is_file():
            contents.notes.append(f"{label} movie {path} is missing; the frames section shows what remains")
            continue
        try:
            frames[label] = np.asarray(read_movie(path)[0], np.float32)
        except TomotimeError as exc:
            contents.notes.append(f"{label} movie {path}: not readable ({exc})")
    contents.frames = frames or None


def load_run(folder: str | Path) -> RunContents:
    """Read what ``folder`` holds (see the module description); lazily for volume series.

    Raises
    ------
    InputError
        If ``folder`` is not a folder, or holds neither a ``summary.json`` nor a
        result file: the message lists what a run folder holds.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder; expected a run folder written by reconstruct or demo")
    has_summary = (folder / "summary.json").is_file()
    results = [name for name in RESULT_FILES if (folder / name).is_file()]
    if not has_summary and not results:
        raise InputError(f"{folder}: not a tomotime run folder: summary.json and a result "
                         f"({', '.join(RESULT_FILES)}) are missing; expected the --out folder of "
                         "'tomotime reconstruct' or 'tomotime demo'")
    contents = RunContents(folder=folder)
    if has_summary:
        contents.summary = _read_json(folder / "summary.json", contents.notes) or {}
    else:
        contents.notes.append("summary.json is missing; provenance and the input section are omitted")
    if contents.summary.get("output") and (contents.summary.get("input") or {}).get("file"):
        _load_frames(contents)  # a denoised movie, not a reconstruction
        _load_training(contents)
        return contents
    try:
        _load_volumes(contents)
        input_path = _load_input(contents) if has_summary else None
        _load_truth(contents, input_path)
        _load_training(contents)
        _load_evaluation(contents)
    except BaseException:
        contents.close()
        raise
    return contents
