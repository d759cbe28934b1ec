"""Open a 4D result in napari with time as a slider axis (napari is the optional extra ``tomotime[napari]``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from tomotime.errors import InputError
from tomotime.io import read_volume_series

__all__ = ["NAPARI_MISSING", "result_file", "view_in_napari"]

NAPARI_MISSING = "napari is not installed; install the viewer extra: pip install 'tomotime[napari]'"


def result_file(path: str | Path) -> Path:
    """The volume series of ``path``: the file itself, or ``volumes.h5`` in a run folder.

    Raises
    ------
    InputError
        If ``path`` is a folder without ``volumes.h5``, or does not exist.
    """
    path = Path(path)
    if path.is_dir():
        if not (path / "volumes.h5").is_file():
            raise InputError(f"{path}: no volumes.h5 in this folder; expected a run folder of a time-resolved "
                             "reconstruction or a volumes.h5 file")
        return path / "volumes.h5"
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    return path


def view_in_napari(path: str | Path, *, block: bool = True) -> Any:
    """Show the volume series ``(T, Z, Y, X)`` in napari: sliders for t and z, scale in nm.

    The HDF5 dataset is handed to napari as is, so only the displayed volume is read.

    Returns
    -------
    napari.Viewer

    Raises
    ------
    InputError
        If napari is not installed (naming the extra), or ``path`` holds no volume series.
    """
    if importlib.util.find_spec("napari") is None:
        raise InputError(NAPARI_MISSING)
    series = read_volume_series(result_file(path))
    import napari

    voxel = series.voxel_size
    viewer = napari.Viewer(title=f"tomotime: {path}")
    viewer.add_image(series.data, name=Path(path).name, scale=(1.0, voxel, voxel, voxel), colormap="gray",
                     metadata={"times_s": list(map(float, series.times)), "voxel_size_nm": voxel})
    viewer.dims.axis_labels = ("t", "z (nm)", "y (nm)", "x (nm)")
    viewer.scale_bar.visible = True
    viewer.scale_bar.unit = "nm"
    if block:
        napari.run()
    return viewer
