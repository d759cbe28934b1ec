"""TiltSeries and VolumeSeries: validation at the door, selection, lazy reading."""

from __future__ import annotations

from dataclasses import FrozenInstanceError

import h5py
import numpy as np
import pytest

from tomotime.data import TiltSeries, VolumeSeries, check_stack, check_times
from tomotime.errors import InputError
from tomotime.geometry import Pose


@pytest.fixture
def series(rng) -> TiltSeries:
    images = rng.random((5, 4, 6)).astype(np.float32)
    poses = np.arange(20, dtype=np.float32).reshape(5, 4)
    return TiltSeries(images, angles=[-40.0, 10.0, -10.0, 40.0, 0.0], times=[0.0, 1.0, 2.0, 3.0, 4.5],
                      pixel_size=0.5, poses=poses)


def test_defaults_and_types(rng):
    raw = rng.integers(0, 60000, (3, 4, 5)).astype(np.uint16)
    meta = {"source": "test"}
    ts = TiltSeries(raw, angles=[-10, 0, 10], metadata=meta)
    assert ts.images.dtype == np.float32 and np.array_equal(ts.images, raw.astype(np.float32))
    assert ts.angles.dtype == np.float64
    np.testing.assert_array_equal(ts.times, [0.0, 1.0, 2.0])
    assert ts.pixel_size == 1.0 and ts.poses is None
    assert len(ts) == 3 and ts.shape == (3, 4, 5)
    meta["source"] = "changed"
    assert ts.metadata == {"source": "test"}
    assert "n=3" in repr(ts) and "shape=(4, 5)" in repr(ts)
    with pytest.raises(FrozenInstanceError):
        ts.angles = np.zeros(3)


IMAGES = np.ones((3, 4, 5), np.float32)
ANGLES = [-10.0, 0.0, 10.0]


def _images_with(index, value) -> np.ndarray:
    images = IMAGES.copy()
    images[index] = value
    return images


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(angles=[0.0, 10.0]), r"angles: 2 angles given for 3 images"),
        (dict(angles=[0.0, 1.0, 2.0, 3.0]), r"angles: 4 angles given for 3 images"),
        (dict(images=_images_with((1, 2, 3), np.nan)), r"images: holds NaN or Inf .*\(1, 2, 3\)"),
        (dict(images=_images_with((0, 0, 0), -np.inf)), r"images: holds NaN or Inf"),
        (dict(images=np.ones(5)), r"images: expected a stack \(N, Y, X\), got a 1-D"),
        (dict(images=np.ones((4, 5))), r"images: expected a stack \(N, Y, X\), got a 2-D"),
        (dict(images=np.ones((3, 1, 4, 5))), r"images: expected a stack \(N, Y, X\), got a 4-D"),
        (dict(images=np.ones((0, 4, 5)), angles=[]), r"images: the array is empty"),
        (dict(images=np.ones((3, 0, 5))), r"images: the array is empty"),
        (dict(images=IMAGES.astype(np.complex64)), r"images: expected real numbers"),
        (dict(images=np.full((3, 4, 5), "a")), r"images: expected real numbers"),
        (dict(angles=[0.0, np.nan, 1.0]), r"angles: holds NaN or Inf"),
        (dict(angles=[0.0, 95.0, 1.0]), r"angles: 95.0 deg lies outside \[-90, 90\].*allow_wide_angles"),
        (dict(angles=[-90.5, 0.0, 10.0]), r"angles: -90.5 deg lies outside"),
        (dict(angles=[0.0, 10.0, 90.01]), r"angles: 90.01 deg lies outside"),
        (dict(times=[0.0, 1.0, 1.0]), r"times: must strictly increase; duplicated at index 2"),
        (dict(times=[0.0, 2.0, 1.0]), r"times: must strictly increase; decreasing at index 2"),
        (dict(times=[0.0, 1.0]), r"times: expected 3 values, got 2"),
        (dict(times=[0.0, np.nan, 2.0]), r"times: holds NaN or Inf"),
        (dict(pixel_size=0.0), r"pixel_size=0.0: expected a positive size in nm"),
        (dict(pixel_size=-1.0), r"pixel_size=-1.0"),
        (dict(pixel_size=np.nan), r"pixel_size=nan"),
        (dict(pixel_size=np.inf), r"pixel_size=inf"),
        (dict(poses=np.zeros((3, 3))), r"poses: expected shape \(N, 4\)"),
        (dict(poses=np.zeros(4)), r"poses: expected shape \(N, 4\)"),
        (dict(poses=np.zeros((2, 4))), r"poses: 2 poses given for 3 images"),
    ],
)
def test_bad_tilt_series_input(kwargs, match):
    args = {"images": IMAGES, "angles": ANGLES, **kwargs}
    with pytest.raises(InputError, match=match):
        TiltSeries(**args)


def test_wide_angles_and_pose_objects_accepted():
    ts = TiltSeries(IMAGES, angles=[-90.0, 45.0, 120.0], allow_wide_angles=True,
                    poses=[Pose(), Pose(axis_rotation=1.0), Pose(shift_y=2.0, shift_x=-3.0)])
    np.testing.assert_array_equal(ts.angles, [-90.0, 45.0, 120.0])
    assert ts.poses.shape == (3, 4) and ts.poses.dtype == np.float32
    np.testing.assert_array_equal(ts.poses[2], [0.0, 0.0, 2.0, -3.0])


def test_select_orders_by_time_and_carries_everything(series):
    sub = series.select([3, 1])
    np.testing.assert_array_equal(sub.times, [1.0, 3.0])
    np.testing.assert_array_equal(sub.angles, [10.0, 40.0])
    np.testing.assert_array_equal(sub.images, series.images[[1, 3]])
    np.testing.assert_array_equal(sub.poses, series.poses[[1, 3]])
    assert sub.pixel_size == 0.5 and len(series) == 5
    np.testing.assert_array_equal(series.select(series.angles > 0).angles, [10.0, 40.0])
    np.testing.assert_array_equal(series.select(slice(None, None, 2)).times, [0.0, 2.0, 4.5])
    assert len(series.select(4)) == 1
    with pytest.raises(InputError, match="select: no views selected"):
        series.select(series.angles > 100)


def test_time_window_is_inclusive(series):
    np.testing.assert_array_equal(series.time_window(1.0, 3.0).times, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(series.time_window(1.5, 4.0).angles, [-10.0, 40.0])
    with pytest.raises(InputError, match=r"time_window: no views between 3.2 and 4.4 s"):
        series.time_window(3.2, 4.4)


def test_sinogram_is_a_row_of_every_image(series):
    np.testing.assert_array_equal(series.sinogram(2), series.images[:, 2, :])
    np.testing.assert_array_equal(series.sinogram(-1), series.images[:, 3, :])
    assert series.sinogram(0).shape == (5, 6)
    for row in (4, -5):
        with pytest.raises(InputError, match=f"row={row}"):
            series.sinogram(row)


def test_sorted_by_angle(series):
    ordered = series.sorted_by_angle()
    np.testing.assert_array_equal(ordered.angles, [-40.0, -10.0, 0.0, 10.0, 40.0])
    np.testing.assert_array_equal(ordered.images, series.images[[0, 2, 4, 1, 3]])
    np.testing.assert_array_equal(ordered.poses, series.poses[[0, 2, 4, 1, 3]])
    np.testing.assert_array_equal(ordered.times, np.arange(5.0))


def test_check_stack_and_times_directly():
    assert check_stack(np.ones((2, 3), np.int64), name="frame", ndim=2).dtype == np.float32
    with pytest.raises(InputError, match=r"frame: expected an image \(Y, X\)"):
        check_stack(np.ones(3), name="frame", ndim=2)
    assert check_stack(np.array([[[np.nan]]]), finite=False).shape == (1, 1, 1)
    np.testing.assert_array_equal(check_times([0, 0.5, 2], 3), [0.0, 0.5, 2.0])


def test_real_tilt_series(real_data):
    folder = real_data / "etspy_needle_haadf"
    raw = np.load(folder / "tiltseries.npy")
    angles = np.loadtxt(folder / "tiltseries.rawtlt")
    ts = TiltSeries(raw, angles, pixel_size=17.995)  # the closed interval [-90, 90]
    assert ts.shape == (91, 64, 64) and ts.images.dtype == np.float32
    np.testing.assert_array_equal(ts.sinogram(32), raw[:, 32, :].astype(np.float32))
    inner = ts.select(np.abs(ts.angles) < 90)
    assert len(inner) == 89 and TiltSeries(inner.images, inner.angles).angles.max() == 88.0


# --- VolumeSeries ---------------------------------------------------------------------------


def test_volume_series_in_memory(rng):
    data = rng.random((3, 2, 4, 5))
    vs = VolumeSeries(data, times=[0.0, 0.5, 2.0], voxel_size=0.3)
    assert vs.data.dtype == np.float32 and vs.shape == (3, 2, 4, 5) and len(vs) == 3
    np.testing.assert_allclose(vs[1], data[1], rtol=1e-6)
    assert vs[1].dtype == np.float32
    assert [v.shape for v in vs] == [(2, 4, 5)] * 3
    np.testing.assert_allclose(vs.to_numpy(), data, rtol=1e-6)
    assert vs.index_at(0.3) == 1 and vs.index_at(1.6) == 2 and vs.index_at(-5) == 0
    sub = vs.select_times([0, 2])
    np.testing.assert_array_equal(sub.times, [0.0, 2.0])
    np.testing.assert_array_equal(sub[1], vs[2])
    assert sub.voxel_size == 0.3 and "shape=(3, 2, 4, 5)" in repr(vs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(data=np.ones((2, 3, 4))), r"data: expected a series \(T, Z, Y, X\)"),
        (dict(data=np.ones((2, 2, 3, 4, 5))), r"data: expected a series \(T, Z, Y, X\)"),
        (dict(data=np.ones((0, 2, 3, 4))), r"data: the series is empty"),
        (dict(data=np.full((2, 2, 3, 4), np.inf)), r"data: holds NaN or Inf"),
        (dict(times=[1.0]), r"times: expected 2 values"),
        (dict(times=[1.0, 1.0]), r"times: must strictly increase; duplicated"),
        (dict(times=[1.0, 0.0]), r"times: must strictly increase; decreasing"),
        (dict(voxel_size=0.0), r"voxel_size=0.0"),
        (dict(voxel_size=np.nan), r"voxel_size=nan"),
    ],
)
def test_bad_volume_series_input(kwargs, match):
    args = {"data": np.ones((2, 2, 3, 4)), **kwargs}
    with pytest.raises(InputError, match=match):
        VolumeSeries(**args)


class _CountingDataset:
    """Wraps an h5py dataset and records every read."""

    def __init__(self, dataset: h5py.Dataset) -> None:
        self.dataset, self.reads = dataset, []
        self.shape, self.dtype = dataset.shape, dataset.dtype

    def __getitem__(self, key):
        self.reads.append(key)
        return self.dataset[key]


def test_volume_series_reads_lazily_from_hdf5(tmp_path, rng):
    data = rng.random((4, 3, 5, 6)).astype(np.float32)
    with h5py.File(tmp_path / "series.h5", "w") as f:
        f.create_dataset("volumes", data=data, chunks=(1, 3, 5, 6))
    with h5py.File(tmp_path / "series.h5", "r") as f:
        vs = VolumeSeries(f["volumes"], times=[0, 1, 2, 5])
        assert isinstance(vs.data, h5py.Dataset) and vs.shape == (4, 3, 5, 6)
        np.testing.assert_array_equal(vs[3], data[3])
        np.testing.assert_array_equal(vs.to_numpy(), data)

        counting = _CountingDataset(f["volumes"])
        lazy = VolumeSeries(counting)
        assert counting.reads == []
        np.testing.assert_array_equal(lazy[2], data[2])
        assert counting.reads == [2]
        lazy.select_times([1, 3])
        assert counting.reads == [2, 1, 3]
