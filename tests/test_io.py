"""Readers and writers of tomotime.io: round trips, sidecars, bad input, atomic output."""

from __future__ import annotations

import h5py
import mrcfile
import numpy as np
import pytest
import tifffile
from mrcfile.dtypes import get_ext_header_dtype

from tomotime.data import TiltSeries, VolumeSeries
from tomotime.errors import FormatError, InputError, OutputExistsError
from tomotime.io import (
    VolumeSeriesWriter,
    atomic_path,
    read_angle_table,
    read_angles,
    read_tilt_series,
    read_times,
    read_volume,
    read_volume_series,
    write_tilt_series,
    write_volume_mrc,
    write_volume_series,
    write_volume_series_mrcs,
    write_volume_tiff,
)
from tomotime.io.volume_series import default_chunks


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def stack(rng):
    return rng.random((5, 6, 7), dtype=np.float32)


ANGLES = np.array([-60.0, -30.5, 0.0, 29.25, 61.0])


def _series(stack, **kw):
    return TiltSeries(images=stack, angles=ANGLES, times=[0.0, 0.5, 1.25, 2.0, 3.5], pixel_size=0.37, **kw)


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name)


# ----------------------------------------------------------------------------- round trips


def test_tilt_series_mrc_round_trip(tmp_path, stack):
    path = tmp_path / "ts.mrc"
    write_tilt_series(path, _series(stack))
    assert (tmp_path / "ts.rawtlt").is_file() and (tmp_path / "ts.times").is_file()
    back = read_tilt_series(path)
    np.testing.assert_array_equal(back.images, stack)
    np.testing.assert_allclose(back.angles, ANGLES, atol=1e-6)
    np.testing.assert_allclose(back.times, [0.0, 0.5, 1.25, 2.0, 3.5], atol=1e-6)
    assert back.pixel_size == pytest.approx(0.37, rel=1e-6)
    assert back.metadata["source"] == str(path) and back.metadata["format"] == "mrc"
    assert back.metadata["angles_from"] == str(tmp_path / "ts.rawtlt")
    with mrcfile.open(path) as mrc:
        assert mrc.voxel_size.x == pytest.approx(3.7, rel=1e-6)  # stored in angstrom
        assert mrc.is_image_stack()


@pytest.mark.parametrize("writer", [write_volume_mrc, write_volume_tiff])
def test_volume_round_trip(tmp_path, rng, writer):
    vol = rng.standard_normal((4, 5, 6)).astype(np.float32)
    path = tmp_path / ("vol.mrc" if writer is write_volume_mrc else "vol.tif")
    writer(path, vol, voxel_size=0.37)
    back, voxel = read_volume(path)
    assert back.dtype == np.float32 and back.shape == (4, 5, 6)
    np.testing.assert_array_equal(back, vol)
    assert voxel == pytest.approx(0.37, rel=1e-6)


def test_volume_npy_and_hdf5(tmp_path, rng):
    vol = rng.random((3, 4, 5)).astype(np.float32)
    np.save(tmp_path / "v.npy", vol.astype(np.float64))
    back, voxel = read_volume(tmp_path / "v.npy")
    np.testing.assert_allclose(back, vol)
    assert voxel == 1.0
    with h5py.File(tmp_path / "v.h5", "w") as f:
        f.create_dataset("volume", data=vol).attrs["voxel_size_nm"] = 2.5
        f.create_dataset("other", data=np.zeros((2, 2, 2)))
    back, voxel = read_volume(tmp_path / "v.h5")
    np.testing.assert_array_equal(back, vol)
    assert voxel == 2.5


def test_tilt_series_hdf5(tmp_path, stack):
    with h5py.File(tmp_path / "a.h5", "w") as f:
        ds = f.create_dataset("images", data=stack)
        ds.attrs["pixel_size"] = 0.5
        f.create_dataset("angles", data=ANGLES)
        f.attrs["times"] = np.arange(5) * 2.0
    ts = read_tilt_series(tmp_path / "a.h5")
    np.testing.assert_array_equal(ts.images, stack)
    np.testing.assert_array_equal(ts.angles, ANGLES)
    np.testing.assert_array_equal(ts.times, np.arange(5) * 2.0)
    assert ts.pixel_size == 0.5 and ts.metadata["format"] == "hdf5"
    # The only 3-D dataset is used whatever its name; angles as an attribute of it.
    with h5py.File(tmp_path / "b.hdf5", "w") as f:
        f.create_dataset("scan/haadf", data=stack).attrs["angles"] = ANGLES[::-1]
    ts = read_tilt_series(tmp_path / "b.hdf5")
    np.testing.assert_array_equal(ts.angles, ANGLES[::-1])
    assert ts.metadata["dataset"] == "/scan/haadf"


def test_mrc_fei_extended_header_angles(tmp_path, stack):
    ext = np.zeros(5, dtype=get_ext_header_dtype(b"FEI1"))
    ext["Alpha tilt"] = ANGLES
    ext["Metadata size"] = ext.dtype.itemsize
    with mrcfile.new(tmp_path / "fei.mrc") as mrc:
        mrc.set_data(stack)
        mrc.set_extended_header(ext)
        mrc.header.exttyp = b"FEI1"
    ts = read_tilt_series(tmp_path / "fei.mrc")
    np.testing.assert_array_equal(ts.angles, ANGLES)
    assert ts.metadata["angles_from"] == "file"


# ----------------------------------------------------------------------------- angles, times, sidecars


def test_read_angles_plain_with_comments(tmp_path):
    path = tmp_path / "a.tlt"
    path.write_text("# tilts\n-60\n\n -30.5 \n0\n")
    np.testing.assert_array_equal(read_angles(path), [-60.0, -30.5, 0.0])
    np.testing.assert_array_equal(read_times(path), [-60.0, -30.5, 0.0])


def test_read_angle_table_csv_header(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("Time (s), Tilt angle (deg)\n0.0, -10\n1.5, 20\n3.0, 5\n")
    angles, times = read_angle_table(path)
    np.testing.assert_array_equal(angles, [-10.0, 20.0, 5.0])
    np.testing.assert_array_equal(times, [0.0, 1.5, 3.0])
    np.testing.assert_array_equal(read_times(path), [0.0, 1.5, 3.0])
    plain = tmp_path / "b.csv"
    plain.write_text("-10,0\n20,1.5\n")
    np.testing.assert_array_equal(read_angles(plain), [-10.0, 20.0])
    np.testing.assert_array_equal(read_times(plain), [0.0, 1.5])


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty"),
        ("# only a comment\n", "no numbers"),
        ("1\n2\nthree\n", "line 3"),
        ("1\nnan\n", "NaN"),
        ("1,2\n3\n", "columns"),
        ("foo,bar\n1,2\n", "no angle column"),
    ],
)
def test_read_angles_bad(tmp_path, text, match):
    path = tmp_path / "bad.rawtlt"
    path.write_text(text)
    with pytest.raises(FormatError, match=match) as info:
        read_angles(path)
    assert str(path) in str(info.value)


def test_tiff_stack_with_csv_sidecar(tmp_path, stack):
    tifffile.imwrite(tmp_path / "s.tif", stack)
    (tmp_path / "s.csv").write_text("angle,time\n" + "".join(f"{a},{t}\n" for a, t in zip(ANGLES, [0, 1, 2, 4, 8])))
    ts = read_tilt_series(tmp_path / "s.tif", pixel_size=0.2)
    np.testing.assert_array_equal(ts.images, stack)
    np.testing.assert_array_equal(ts.angles, ANGLES)
    np.testing.assert_array_equal(ts.times, [0, 1, 2, 4, 8])
    assert ts.pixel_size == 0.2 and ts.metadata["format"] == "tiff"
    assert ts.metadata["times_from"] == "angle file"


def test_sidecar_order_and_explicit_override(tmp_path, stack):
    np.save(tmp_path / "s.npy", stack)
    (tmp_path / "s.tlt").write_text("\n".join(str(a) for a in ANGLES))
    (tmp_path / "s.txt").write_text("\n".join(str(-a) for a in ANGLES))
    assert np.array_equal(read_tilt_series(tmp_path / "s.npy").angles, ANGLES)  # .tlt before .txt
    (tmp_path / "s.rawtlt").write_text("\n".join(str(a + 1) for a in ANGLES))
    assert np.array_equal(read_tilt_series(tmp_path / "s.npy").angles, ANGLES + 1)  # .rawtlt first
    explicit = read_tilt_series(tmp_path / "s.npy", angles=[1, 2, 3, 4, 5], times=[0, 2, 4, 6, 8])
    np.testing.assert_array_equal(explicit.angles, [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(explicit.times, [0, 2, 4, 6, 8])
    assert explicit.metadata["angles_from"] == "argument"
    from_file = read_tilt_series(tmp_path / "s.npy", angles=tmp_path / "s.txt")
    np.testing.assert_array_equal(from_file.angles, -ANGLES)


# ----------------------------------------------------------------------------- bad input


def _truncated_mrc(path, stack):
    with mrcfile.new(path) as mrc:
        mrc.set_data(stack)
    data = path.read_bytes()
    path.write_bytes(data[: 1024 + 50])


@pytest.mark.parametrize(
    ("name", "make", "error", "match"),
    [
        ("empty.mrc", lambda p, s: p.write_bytes(b""), FormatError, "empty"),
        ("cut.mrc", _truncated_mrc, FormatError, "truncated"),
        ("image.mrc", lambda p, s: mrcfile.new(p, data=s[0]).close(), FormatError, "single 2-D image"),
        ("image.npy", lambda p, s: np.save(p, s[0]), FormatError, "single 2-D image"),
        ("line.npy", lambda p, s: np.save(p, s[0, 0]), FormatError, "1-D array"),
        ("series.npy", lambda p, s: np.save(p, s[None]), FormatError, "4-D array"),
        ("empty.npy", lambda p, s: p.write_bytes(b""), FormatError, "empty"),
        ("cut.npy", lambda p, s: (np.save(p, s), p.write_bytes(p.read_bytes()[:200])), FormatError, "truncated"),
        ("junk.tif", lambda p, s: p.write_bytes(b"not a tiff at all"), FormatError, "TIFF"),
        ("junk.h5", lambda p, s: p.write_bytes(b"not hdf5 at all"), FormatError, "HDF5"),
        ("stack.xyz", lambda p, s: p.write_bytes(b"1"), FormatError, "unknown format"),
        ("nan.npy", lambda p, s: np.save(p, np.where(s > 0.9, np.nan, s)), InputError, "NaN"),
        ("inf.npy", lambda p, s: np.save(p, np.where(s > 0.9, np.inf, s)), InputError, "NaN or Inf"),
    ],
)
def test_bad_stack_files(tmp_path, stack, name, make, error, match):
    path = tmp_path / name
    make(path, stack)
    (tmp_path / (path.stem + ".rawtlt")).write_text("\n".join(str(a) for a in ANGLES))
    with pytest.raises(error, match=match) as info:
        read_tilt_series(path)
    assert str(path) in str(info.value)


def test_missing_file_and_missing_angles(tmp_path, stack):
    with pytest.raises(FormatError, match="no such file"):
        read_tilt_series(tmp_path / "nope.mrc")
    np.save(tmp_path / "s.npy", stack)
    with pytest.raises(FormatError, match="no tilt angles found") as info:
        read_tilt_series(tmp_path / "s.npy")
    assert str(tmp_path / "s.npy") in str(info.value)
    with pytest.raises(FormatError, match="no such file"):
        read_tilt_series(tmp_path / "s.npy", angles=tmp_path / "missing.rawtlt")


def test_angle_count_mismatch_names_both_files(tmp_path, stack):
    np.save(tmp_path / "s.npy", stack)
    (tmp_path / "s.rawtlt").write_text("-10\n0\n10\n")
    with pytest.raises(InputError, match="3 angles given for 5 images") as info:
        read_tilt_series(tmp_path / "s.npy")
    assert str(tmp_path / "s.npy") in str(info.value) and "s.rawtlt" in str(info.value)
    with pytest.raises(InputError, match="s.npy"):
        read_tilt_series(tmp_path / "s.npy", angles=ANGLES, times=[0, 1, 1, 2, 3])
    with pytest.raises(InputError, match="allow_wide_angles"):
        read_tilt_series(tmp_path / "s.npy", angles=[-95, -45, 0, 45, 95])
    wide = read_tilt_series(tmp_path / "s.npy", angles=[-95, -45, 0, 45, 95], allow_wide_angles=True)
    assert wide.angles[0] == -95


def test_read_volume_rejects_stack_dims(tmp_path, stack):
    np.save(tmp_path / "img.npy", stack[0])
    with pytest.raises(FormatError, match="expected a volume"):
        read_volume(tmp_path / "img.npy")
    (tmp_path / "vol.dm3").write_bytes(b"x")
    with pytest.raises(FormatError, match="unknown format"):
        read_volume(tmp_path / "vol.dm3")


# ----------------------------------------------------------------------------- atomic output


@pytest.mark.parametrize("writer", [write_volume_mrc, write_volume_tiff])
def test_writers_refuse_to_overwrite(tmp_path, rng, writer):
    path = tmp_path / "out.dat"
    path.write_bytes(b"precious")
    with pytest.raises(OutputExistsError, match="out.dat"):
        writer(path, "not even a volume")  # the existence check comes before any other work
    assert path.read_bytes() == b"precious"
    writer(path, rng.random((2, 3, 4)), overwrite=True)
    assert path.read_bytes() != b"precious"
    assert _leftovers(tmp_path) == []


def test_write_tilt_series_checks_sidecars_first(tmp_path, stack):
    (tmp_path / "ts.times").write_text("keep\n")
    with pytest.raises(OutputExistsError, match="ts.times"):
        write_tilt_series(tmp_path / "ts.mrc", _series(stack))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ts.times"]
    write_tilt_series(tmp_path / "ts.mrc", _series(stack), overwrite=True)
    np.testing.assert_allclose(read_times(tmp_path / "ts.times"), [0.0, 0.5, 1.25, 2.0, 3.5])


def test_atomic_path_cleans_up_on_error(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "x.txt") as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    with atomic_path(tmp_path / "x.txt") as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".txt" and not (tmp_path / "x.txt").exists()
        tmp.write_text("done")
    assert (tmp_path / "x.txt").read_text() == "done"


# ----------------------------------------------------------------------------- volume series


def _volume_series(rng, t=3):
    return VolumeSeries(rng.random((t, 4, 5, 6), dtype=np.float32), times=[0.0, 1.5, 4.0][:t], voxel_size=0.8)


def test_volume_series_round_trip_lazy_and_chunked(tmp_path, rng):
    series = _volume_series(rng)
    path = write_volume_series(tmp_path / "vs.h5", series)
    back = read_volume_series(path)
    assert isinstance(back.data, h5py.Dataset)  # lazy: nothing loaded yet
    np.testing.assert_array_equal(back[1], series[1])
    np.testing.assert_array_equal(back.to_numpy(), series.to_numpy())
    np.testing.assert_array_equal(back.times, [0.0, 1.5, 4.0])
    assert back.voxel_size == pytest.approx(0.8)
    with h5py.File(path) as f:
        assert f["volumes"].chunks == (1, 4, 5, 6)
        assert f["volumes"].dtype == np.float32
        assert f.attrs["axes"] == "TZYX"


def test_default_chunks_hold_one_time_point():
    assert default_chunks((10, 256, 256, 256)) == (1, 16, 256, 256)  # 4 MiB
    assert default_chunks((2, 4, 2048, 4096)) == (1, 1, 256, 4096)
    assert default_chunks((3, 4, 5, 6)) == (1, 4, 5, 6)


def test_volume_series_writer_small_chunks(tmp_path, rng):
    series = _volume_series(rng, t=2)
    with VolumeSeriesWriter(tmp_path / "c.h5", shape=series.shape, chunks=(1, 2, 5, 6)) as writer:
        for t in (1, 0):
            writer.write(t, series[t])
    with h5py.File(tmp_path / "c.h5") as f:
        assert f["volumes"].chunks == (1, 2, 5, 6)
        np.testing.assert_array_equal(f["volumes"][0], series[0])


def test_volume_series_writer_leaves_nothing_on_error(tmp_path, rng):
    series = _volume_series(rng)
    with pytest.raises(RuntimeError, match="boom"):
        with VolumeSeriesWriter(tmp_path / "vs.h5", shape=series.shape) as writer:
            writer.write(0, series[0])
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InputError, match="never written"):
        with VolumeSeriesWriter(tmp_path / "vs.h5", shape=series.shape) as writer:
            writer.write(0, series[0])
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InputError, match="shape"):
        with VolumeSeriesWriter(tmp_path / "vs.h5", shape=series.shape) as writer:
            writer.write(0, np.zeros((4, 5, 7)))
    assert list(tmp_path.iterdir()) == []


def test_volume_series_writer_refuses_existing(tmp_path, rng):
    (tmp_path / "vs.h5").write_bytes(b"precious")
    with pytest.raises(OutputExistsError):
        VolumeSeriesWriter(tmp_path / "vs.h5", shape=(1, 2, 2, 2))
    assert (tmp_path / "vs.h5").read_bytes() == b"precious"
    with pytest.raises(InputError, match="times"):
        VolumeSeriesWriter(tmp_path / "new.h5", shape=(2, 2, 2, 2), times=[1.0, 1.0])


def test_volume_series_mrcs(tmp_path, rng):
    series = _volume_series(rng)
    paths = write_volume_series_mrcs(tmp_path / "out", series)
    assert [p.name for p in paths] == ["t0000.mrc", "t0001.mrc", "t0002.mrc"]
    vol, voxel = read_volume(paths[2])
    np.testing.assert_array_equal(vol, series[2])
    assert voxel == pytest.approx(0.8, rel=1e-6)
    np.testing.assert_allclose(read_times(tmp_path / "out" / "times.txt"), series.times)
    with pytest.raises(OutputExistsError, match="t0000.mrc"):
        write_volume_series_mrcs(tmp_path / "out", series)
