"""Inputs a microscope or a spreadsheet actually produces: radians, decimal commas, header lines,
colour images, TIFF pages of several sizes, text in HDF5 angles, and the closed interval [-90, 90]."""

from __future__ import annotations

import logging

import h5py
import numpy as np
import pytest
import tifffile

from tomotime.errors import FormatError, InputError
from tomotime.io import read_tilt_series
from tomotime.io.angles import read_angle_table

N = 7
ANGLES = np.linspace(-60.0, 60.0, N)


@pytest.fixture
def images(rng) -> np.ndarray:
    return rng.uniform(1.0, 2.0, (N, 12, 10)).astype(np.float32)


@pytest.fixture
def npy(tmp_path, images):
    path = tmp_path / "s.npy"
    np.save(path, images)
    return path


def test_angles_in_radians_are_flagged(npy, caplog):
    npy.with_suffix(".rawtlt").write_text("".join(f"{a:.4f}\n" for a in np.radians(ANGLES)))
    with caplog.at_level(logging.WARNING):
        series = read_tilt_series(npy)
    assert "look like radians" in caplog.text and str(npy) in caplog.text
    assert any("look like radians" in w for w in series.metadata["warnings"])
    degrees = read_tilt_series(npy, angles=ANGLES)
    assert degrees.metadata["warnings"] == []
    frames = read_tilt_series(npy, angles=np.zeros(N))  # a frame series at one tilt is not radians
    assert frames.metadata["warnings"] == []


@pytest.mark.parametrize(("text", "angles", "times"), [
    ("-70,000\n-68,500\n-67,000\n", [-70.0, -68.5, -67.0], None),  # fixed decimals
    ("-70,5\n-69,5\n-68,5\n", [-70.5, -69.5, -68.5], None),  # the "times" would not increase
    ("-70,05\n-69,1\n-68,2\n", [-70.05, -69.1, -68.2], None),  # a leading zero is a fraction
    ("-70,5;0,25\n-69,5;1,5\n-68,5;2,75\n", [-70.5, -69.5, -68.5], [0.25, 1.5, 2.75]),  # ; between columns
    ("angle\ttime\n-70,5\t0\n-69,5\t1\n-68,5\t2\n", [-70.5, -69.5, -68.5], [0.0, 1.0, 2.0]),
])
def test_decimal_commas_are_read_as_decimal_points(tmp_path, text, angles, times):
    path = tmp_path / "a.csv"
    path.write_text(text)
    notes: list[str] = []
    got_angles, got_times = read_angle_table(path, notes=notes)
    np.testing.assert_allclose(got_angles, angles)
    assert got_times is None if times is None else np.allclose(got_times, times)
    assert any("decimal commas" in n for n in notes)


@pytest.mark.parametrize("text", ["-60,0\n-58,1\n-56,2\n", "angle,time\n-60,10\n-58,11\n-56,12\n"])
def test_comma_separated_angle_and_time_columns_stay_columns(tmp_path, text):
    path = tmp_path / "a.csv"
    path.write_text(text)
    notes: list[str] = []
    angles, times = read_angle_table(path, notes=notes)
    np.testing.assert_array_equal(angles, [-60, -58, -56])
    assert times is not None and (np.diff(times) > 0).all()
    assert not any("decimal" in n for n in notes)


def test_a_skipped_header_line_is_reported(npy):
    npy.with_suffix(".rawtlt").write_text("tilt series of 2026-05-01 xyz\n" + "".join(f"{a}\n" for a in ANGLES))
    series = read_tilt_series(npy)
    np.testing.assert_array_equal(series.angles, ANGLES)
    assert any("line 1" in n and "skipped" in n and "s.rawtlt" in n for n in series.metadata["notes"])


def test_colour_images_are_refused(tmp_path, images):
    rgb = (np.random.default_rng(0).uniform(0, 255, (40, 50, 3))).astype(np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    np.save(tmp_path / "rgb.npy", rgb)
    np.save(tmp_path / "rgba_stack.npy", np.zeros((5, 40, 50, 4), np.uint8))
    for name in ("rgb.tif", "rgb.npy", "rgba_stack.npy"):
        with pytest.raises(FormatError, match="(?i)colour") as info:
            read_tilt_series(tmp_path / name, angles=np.zeros(40))
        assert name in str(info.value) and "grayscale" in str(info.value)


def test_tiff_pages_of_different_sizes_are_described(tmp_path):
    with tifffile.TiffWriter(tmp_path / "mixed.tif") as tif:
        for size in (32, 32, 16):
            tif.write(np.zeros((size, size), np.uint16))
    with pytest.raises(FormatError, match="3 pages") as info:
        read_tilt_series(tmp_path / "mixed.tif", angles=[0, 1, 2])
    assert "2 x 32x32" in str(info.value) and "1 x 16x16" in str(info.value)
    with tifffile.TiffWriter(tmp_path / "pages.tif") as tif:  # pages of one size written one by one
        for value in (1, 2, 3):
            tif.write(np.full((16, 16), value, np.uint16))
    np.testing.assert_array_equal(read_tilt_series(tmp_path / "pages.tif", angles=[0, 1, 2]).images[:, 0, 0],
                                  [1, 2, 3])


def test_hdf5_angles_that_are_not_numbers_are_refused(tmp_path, images):
    path = tmp_path / "s.h5"
    with h5py.File(path, "w") as f:
        f["images"] = images
        f["angles"] = np.array([f"deg{a:g}" for a in ANGLES], dtype="S")
    with pytest.raises(FormatError, match="angles stored in the file are not numbers") as info:
        read_tilt_series(path)
    assert str(path) in str(info.value)


def test_the_closed_interval_of_plus_minus_90_is_accepted(npy):
    angles = np.linspace(-90.0, 90.0, N)
    series = read_tilt_series(npy, angles=angles)
    np.testing.assert_array_equal(series.angles, angles)
    assert any("same projection" in n for n in series.metadata["notes"])
    with pytest.raises(InputError, match=r"outside \[-90, 90\]"):
        read_tilt_series(npy, angles=np.linspace(-92.0, 92.0, N))


def test_the_real_needle_series_reads_by_default(real_data):
    folder = real_data / "etspy_needle_haadf"
    series = read_tilt_series(folder / "tiltseries.npy")
    assert series.angles[0] == -90 and series.angles[-1] == 90 and len(series) == 91
    assert any("same projection" in n for n in series.metadata["notes"])
