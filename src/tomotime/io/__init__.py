"""Reading and writing tilt series, volumes and volume series.

Readers pick the format from the file extension and raise ``FormatError``
naming the file for anything they cannot use. Writers are atomic (temporary
file + rename) and never replace an existing file unless ``overwrite=True``.
"""

from tomotime.io.angles import read_angle_table, read_angles, read_times, write_angles, write_times
from tomotime.io.atomic import atomic_path, check_output
from tomotime.io.emformats import read_em
from tomotime.io.jsonfile import write_json
from tomotime.io.mrc import write_tilt_series, write_volume_mrc
from tomotime.io.read import TILT_SERIES_SUFFIXES, VOLUME_SUFFIXES, read_tilt_series, read_volume
from tomotime.io.tiff import write_volume_tiff
from tomotime.io.volume_series import (
    VolumeSeriesWriter,
    read_volume_series,
    write_volume_series,
    write_volume_series_mrcs,
)

__all__ = [
    "read_tilt_series",
    "read_volume",
    "read_angles",
    "read_times",
    "read_angle_table",
    "read_em",
    "read_volume_series",
    "write_tilt_series",
    "write_volume_mrc",
    "write_volume_tiff",
    "write_volume_series",
    "write_volume_series_mrcs",
    "write_angles",
    "write_times",
    "VolumeSeriesWriter",
    "write_json",
    "atomic_path",
    "check_output",
    "TILT_SERIES_SUFFIXES",
    "VOLUME_SUFFIXES",
]
