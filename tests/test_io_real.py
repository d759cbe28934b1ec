"""Readers on real microscope files (small public data sets next to the repository)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tomotime.errors import FormatError
from tomotime.io import read_angles, read_em, read_tilt_series, read_volume

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"

pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason=f"real data folder {REAL} is absent")

NEEDLE = REAL / "etspy_needle_haadf"
TIA = REAL / "formats" / "tia_ser"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path.name} is not available")
    return path


def test_needle_dm3_angles_and_pixel_size():
    ts = read_tilt_series(_need(NEEDLE / "HAADF.dm3"), allow_wide_angles=True)
    assert ts.shape == (91, 64, 64)
    np.testing.assert_allclose(ts.angles, np.arange(-90.0, 90.1, 2.0))
    assert ts.pixel_size == pytest.approx(17.995, abs=1e-3)
    assert ts.metadata["format"] == "dm3" and ts.metadata["angles_from"] == "file"
    np.testing.assert_array_equal(read_tilt_series(NEEDLE / "HAADF.dm3").angles, ts.angles)  # [-90, 90] by default


def test_needle_npy_matches_dm3():
    dm3 = read_tilt_series(_need(NEEDLE / "HAADF.dm3"), allow_wide_angles=True)
    npy = read_tilt_series(_need(NEEDLE / "tiltseries.npy"), allow_wide_angles=True)
    np.testing.assert_array_equal(npy.images, dm3.images)
    np.testing.assert_allclose(npy.angles, dm3.angles)
    assert npy.metadata["angles_from"].endswith("tiltseries.rawtlt")


def test_emdb_map_as_volume():
    vol, voxel = read_volume(_need(REAL / "formats" / "mrc" / "EMD-3197.map"))
    assert vol.shape == (20, 20, 20) and vol.dtype == np.float32
    assert voxel == pytest.approx(1.14, rel=1e-5)
    assert np.isfinite(vol).all() and vol.std() > 0


def test_velox_emd_single_image():
    path = _need(REAL / "formats" / "velox_emd" / "Acquisition_18.emd")
    raw = read_em(path)
    assert raw.images.shape == (1024, 1024) and raw.images.dtype == np.uint16
    assert raw.pixel_size == pytest.approx(0.01225, rel=1e-3)
    with pytest.raises(FormatError, match="Acquisition_18.emd.*single 2-D image"):
        read_tilt_series(path, angles=[0.0])


@pytest.mark.parametrize(
    ("name", "shape", "dtype", "pixel"),
    [
        ("03_Scanning_Preview_1.ser", (5, 128, 128), np.uint16, 0.3844),
        ("64x64x5_TEM_preview_1.ser", (5, 64, 64), np.float32, 6.282),
    ],
)
def test_tia_ser_frames(name, shape, dtype, pixel):
    path = _need(TIA / name)
    with pytest.raises(FormatError, match="no tilt angles found"):
        read_tilt_series(path)
    ts = read_tilt_series(path, angles=[-40, -20, 0, 20, 40])
    assert ts.shape == shape and ts.metadata["format"] == "ser"
    assert ts.pixel_size == pytest.approx(pixel, rel=1e-3)
    raw = read_em(path)
    assert raw.images.dtype == dtype
    np.testing.assert_array_equal(ts.images, raw.images.astype(np.float32))


def test_tia_emi_reads_its_ser():
    emi = read_tilt_series(_need(TIA / "03_Scanning_Preview.emi"), angles=[-40, -20, 0, 20, 40])
    ser = read_tilt_series(_need(TIA / "03_Scanning_Preview_1.ser"), angles=[-40, -20, 0, 20, 40])
    np.testing.assert_array_equal(emi.images, ser.images)


def test_liquid_cell_repeated_angles():
    folder = REAL / "liquid_cell_au_assembly_n6"
    ts = read_tilt_series(_need(folder / "tiltseries_uint8.npy"), angles=_need(folder / "tiltseries.rawtlt"),
                          pixel_size=0.26)
    assert ts.shape == (116, 256, 256)
    assert ts.angles.min() == -46 and ts.angles.max() == 44
    assert len(np.unique(ts.angles)) < len(ts.angles)  # continuous tilting repeats angles
    np.testing.assert_array_equal(ts.angles, read_angles(folder / "tiltseries.rawtlt"))
    np.testing.assert_array_equal(ts.times, np.arange(116))
    assert ts.images.max() <= 255 and ts.images.min() >= 0
