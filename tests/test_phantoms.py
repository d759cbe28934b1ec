"""Static phantoms: contracts, reference geometry and input checks."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.data import shepp_logan_phantom
from skimage.transform import resize

from tomotime.errors import InputError
from tomotime.sim import (
    PHANTOMS,
    core_shell_nanocube,
    core_shell_nanorod,
    make_phantom,
    nanoshell,
    nanostar,
    sea_mine,
    shepp_logan_3d,
)


@pytest.mark.parametrize("name", sorted(PHANTOMS))
@pytest.mark.parametrize("size", [24, (16, 28, 20)])
def test_every_phantom_meets_the_volume_contract(name, size):
    vol = make_phantom(name, size)
    expected = (size,) * 3 if isinstance(size, int) else size
    assert vol.shape == expected
    assert vol.dtype == np.float32
    assert np.isfinite(vol).all()
    assert vol.min() >= 0.0 and vol.max() <= 1.0
    assert vol.max() >= 0.5
    assert (vol == 0).mean() > 0.2, "the object should sit inside the box with empty space around it"
    assert (vol[0] == 0).all() and (vol[-1] == 0).all(), "nothing touches the Z faces"


def test_shape_keyword_matches_size_triple():
    assert np.array_equal(make_phantom("nanorod", shape=(16, 32, 24)), core_shell_nanorod((16, 32, 24)))


def _index(point_xyz, n):
    """Voxel (z, y, x) holding Shepp-Logan phantom point (x, y, z) in a cube of edge n."""
    x, y, z = point_xyz
    c, h = (n - 1) / 2, n / 2
    return tuple(int(round(v)) for v in (c - y * h, c + z * h, c + x * h))


@pytest.mark.parametrize(
    "point, value",
    [
        ((0.0, 0.0, 0.0), 0.2),  # brain: 1 - 0.8
        ((0.0, 0.89, 0.0), 1.0),  # skull, between the two outer ellipsoids
        ((0.22, 0.0, 0.0), 0.0),  # right ventricle: 1 - 0.8 - 0.2
        ((-0.22, 0.0, 0.0), 0.0),  # left ventricle
        ((0.0, 0.35, -0.15), 0.3),  # ellipsoid 5
        ((0.0, 0.1, 0.25), 0.3),  # ellipsoid 6, off the central slice
        ((-0.08, -0.605, 0.0), 0.3),  # ellipsoid 8
        ((0.0, 0.0, 0.9), 0.0),  # beyond the head along its z (the tilt axis)
        ((0.95, 0.0, 0.0), 0.0),  # outside
    ],
)
def test_shepp_logan_has_the_documented_intensities(point, value):
    n = 64
    vol = shepp_logan_3d(n)
    assert vol[_index(point, n)] == pytest.approx(value, abs=1e-6)


def test_shepp_logan_central_slice_matches_the_2d_phantom():
    n = 64
    section = shepp_logan_3d(n)[:, n // 2, :]
    reference = resize(shepp_logan_phantom(), (n, n), order=0, anti_aliasing=False)
    assert np.corrcoef(section.ravel(), reference.ravel())[0, 1] > 0.9
    assert np.corrcoef(section[:, ::-1].ravel(), reference.ravel())[0, 1] < np.corrcoef(
        section.ravel(), reference.ravel())[0, 1], "left-right orientation"


def test_sea_mine_features_and_seeding():
    vol = sea_mine(48, seed=0)
    assert np.array_equal(vol, sea_mine(48, seed=0))
    assert not np.array_equal(vol, sea_mine(48, seed=1))
    n = 48
    c = (n - 1) / 2
    assert vol[int(round(c)), int(round(c)), int(round(c + 0.74 * n / 2))] == pytest.approx(0.5), "membrane"
    assert vol[int(round(c)), int(round(c)), int(round(c))] == 0, "hollow inside the membrane"
    pyramid_axis = vol[int(round(c)), :, int(round(c - 0.25 * n / 2))]
    levels = pyramid_axis[pyramid_axis > 0.5]
    assert np.isclose(levels, 1.0).sum() >= 3 and np.isclose(levels, 0.55).sum() >= 3, "terraces alternate"
    assert (np.abs(np.diff(levels)) > 0.4).all(), "neighbouring terraces differ: high frequencies"
    assert np.isclose(vol, 0.85).sum() > 14, "atom-like spheres"
    smooth = vol[(vol > 0.19) & (vol < 0.66) & ~np.isclose(vol, 0.5) & ~np.isclose(vol, 0.55)]
    assert smooth.size > 100 and smooth.std() > 0.02, "the wedge carries a smoothly varying field"


def test_nanorod_is_a_core_shell_rod_along_y():
    vol = core_shell_nanorod(32)
    assert set(np.unique(vol).tolist()) == {0.0, np.float32(0.3), 1.0}
    particle, core = vol > 0, vol == 1.0
    extent = [np.ptp(np.nonzero(particle)[axis]) + 1 for axis in range(3)]
    assert extent[1] > 2 * extent[0] and extent[1] > 2 * extent[2], f"extents (Z, Y, X) = {extent}"
    assert core.sum() > 0 and (particle & ~core).sum() > core.sum()
    assert np.array_equal(vol, vol[::-1, ::-1, ::-1]), "centred and symmetric"
    shell_only = (vol == np.float32(0.3))
    assert shell_only[:, :, 16].any() and not core[:, 2:4, :].any(), "core does not reach the rod's tips"


def test_nanocube_core_and_shell():
    vol = core_shell_nanocube(32)
    assert set(np.unique(vol).tolist()) == {0.0, np.float32(0.3), 1.0}
    z, y, x = np.nonzero(vol == 1.0)
    assert np.ptp(z) == np.ptp(y) == np.ptp(x), "a cube has equal extents"


def test_nanoshell_is_hollow_and_windows_open_it():
    closed = nanoshell(32)
    assert closed[16, 16, 16] == 0 and closed.max() == 1.0
    cage = nanoshell(32, windows=4, seed=3)
    assert cage.sum() < 0.95 * closed.sum()
    assert (cage <= closed).all()
    assert not np.array_equal(cage, nanoshell(32, windows=4, seed=4))


def test_nanostar_branches_reach_beyond_the_core():
    star = nanostar(48, n_branches=6, seed=0)
    sphere = nanostar(48, n_branches=0)
    z, y, x = np.nonzero(star > 0.5)
    radius = np.sqrt((z - 23.5) ** 2 + (y - 23.5) ** 2 + (x - 23.5) ** 2).max()
    assert radius > 0.7 * 24 > 0.3 * 24 + 2
    assert star.sum() > 1.05 * sphere.sum()
    assert not np.array_equal(star, nanostar(48, n_branches=6, seed=1))
    assert nanostar(48, n_branches=9).sum() > star.sum()


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: make_phantom("teapot", 32), "shepp-logan, sea-mine"),
        (lambda: make_phantom("nanorod", 8), "at least 16"),
        (lambda: make_phantom("nanorod", (32, 32)), "three"),
        (lambda: make_phantom("nanorod", 32.5), "integer"),
        (lambda: make_phantom("nanorod", 32, shape=(32, 32, 32)), "not both"),
        (lambda: make_phantom("nanorod", 32, colour="gold"), "colour"),
        (lambda: shepp_logan_3d(15), "at least 16"),
        (lambda: nanostar(32, n_branches=-1), "n_branches"),
        (lambda: nanoshell(32, windows=1.5), "windows"),
        (lambda: core_shell_nanorod(32, core=1.5), "core"),
    ],
)
def test_bad_input_is_refused(call, match):
    with pytest.raises(InputError, match=match):
        call()
