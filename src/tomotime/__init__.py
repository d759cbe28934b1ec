"""tomotime: self-supervised and dynamic electron tomography in PyTorch."""

from tomotime.data import TiltSeries, VolumeSeries
from tomotime.errors import FormatError, InputError, OutputExistsError, TomotimeError
from tomotime.geometry import Pose, dose_symmetric_angles, grs_angles, incremental_angles

__version__ = "0.1.0"

__all__ = [
    "TiltSeries",
    "VolumeSeries",
    "Pose",
    "grs_angles",
    "incremental_angles",
    "dose_symmetric_angles",
    "TomotimeError",
    "InputError",
    "FormatError",
    "OutputExistsError",
    "__version__",
]
