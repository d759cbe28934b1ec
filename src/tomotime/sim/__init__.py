"""Simulated ground truth: static phantoms and dynamic scenarios (volume series).

Volumes are float32 ``(Z, Y, X)`` with values in [0, 1]; elongated objects lie
along Y, the tilt axis. Scenarios return a :class:`~tomotime.data.VolumeSeries`
at times ``0 .. T-1`` s; their ``iter_*`` twins yield one volume at a time.
"""

from tomotime.sim.acquisition import misalign_image, project_rows, simulate_acquisition
from tomotime.sim.alloying import fully_mixed, iter_nanorod_alloying, mixed_intensity_spread, nanorod_alloying
from tomotime.sim.beam_damage import iter_nanoshell_damage, nanoshell_damage
from tomotime.sim.experiments import (iter_nanocube_silica_alloying, iter_nanostar_retraction,
                                      nanocube_silica_alloying, nanostar_retraction)
from tomotime.sim.nanoparticles import core_shell_nanocube, core_shell_nanorod, nanoshell, nanostar
from tomotime.sim.phantoms import PHANTOMS, make_phantom, sea_mine, shepp_logan_3d
from tomotime.sim.reshaping import iter_nanostar_reshaping, nanostar_reshaping, star_volume
from tomotime.sim.scenarios import SCENARIOS, iter_scenario, make_scenario

__all__ = [
    "PHANTOMS",
    "make_phantom",
    "shepp_logan_3d",
    "sea_mine",
    "core_shell_nanorod",
    "core_shell_nanocube",
    "nanoshell",
    "nanostar",
    "SCENARIOS",
    "make_scenario",
    "iter_scenario",
    "nanorod_alloying",
    "iter_nanorod_alloying",
    "fully_mixed",
    "mixed_intensity_spread",
    "nanoshell_damage",
    "iter_nanoshell_damage",
    "nanostar_reshaping",
    "iter_nanostar_reshaping",
    "star_volume",
    "nanostar_retraction",
    "iter_nanostar_retraction",
    "nanocube_silica_alloying",
    "iter_nanocube_silica_alloying",
    "simulate_acquisition",
    "project_rows",
    "misalign_image",
]
