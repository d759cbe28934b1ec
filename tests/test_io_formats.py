"""Folders of single images, SerialEM .mdoc, IMOD extended headers and MATLAB stacks; bad input."""

from __future__ import annotations

import shutil

import h5py
import mrcfile
import numpy as np
import pytest
import scipy.io
import tifffile
from conftest import REAL_DATA

from tomotime.errors import FormatError, MissingAnglesError
from tomotime.io import read_tilt_series
from tomotime.io import folder as folder_module
from tomotime.io._common import RawStack
from tomotime.io.emformats import acquisition_metadata
from tomotime.io.mdoc import read_mdoc


def write_tifs(folder, names, shape=(8, 10), dtype=np.uint16):
    folder.mkdir(exist_ok=True)
    for k, name in enumerate(names):
        tifffile.imwrite(folder / name, np.full(shape, k + 1, dtype=dtype))


def test_folder_with_angles_in_the_names_is_ordered_by_angle(tmp_path):
    write_tifs(tmp_path / "t", ["tilt_+30.tif", "tilt_-60.tif", "tilt_0.tif", "tilt_-7.5.tif"])
    s = read_tilt_series(tmp_path / "t")
    np.testing.assert_array_equal(s.angles, [-60, -7.5, 0, 30])
    np.testing.assert_array_equal(s.images[:, 0, 0], [2, 4, 3, 1])  # file k holds k + 1
    assert s.metadata["angles_from"].startswith("file names")
    assert s.metadata["files"] == ["tilt_-60.tif", "tilt_-7.5.tif", "tilt_0.tif", "tilt_+30.tif"]
    glob = read_tilt_series(str(tmp_path / "t" / "tilt_*0.tif"))
    np.testing.assert_array_equal(glob.angles, [-60, 0, 30])


def test_folder_without_angles_says_how_to_supply_them(tmp_path):
    write_tifs(tmp_path / "t", [f"img_{k:03d}.tif" for k in range(3)])
    with pytest.raises(MissingAnglesError, match=r"img_000.tif first, img_002.tif last.*--angles FILE.*angles.rawtlt"):
        read_tilt_series(tmp_path / "t")
    (tmp_path / "t" / "angles.rawtlt").write_text("-20\n0\n20\n")
    s = read_tilt_series(tmp_path / "t")
    np.testing.assert_array_equal(s.angles, [-20, 0, 20])
    np.testing.assert_array_equal(s.images[:, 0, 0], [1, 2, 3])
    np.testing.assert_array_equal(read_tilt_series(tmp_path / "t", angles=[1, 2, 3]).angles, [1, 2, 3])


def test_folder_with_mixed_sizes_or_dtypes_is_refused(tmp_path):
    write_tifs(tmp_path / "a", ["t_-10.tif", "t_10.tif"])
    tifffile.imwrite(tmp_path / "a" / "t_0.tif", np.zeros((8, 12), np.uint16))
    with pytest.raises(FormatError, match=r"differ in size: t_-10.tif is 8 x 10 but t_0.tif is 8 x 12"):
        read_tilt_series(tmp_path / "a")
    write_tifs(tmp_path / "b", ["t_-10.tif", "t_10.tif"])
    tifffile.imwrite(tmp_path / "b" / "t_0.tif", np.zeros((8, 10), np.uint8))
    with pytest.raises(FormatError, match="differ in data type: t_-10.tif is uint16 but t_0.tif is uint8"):
        read_tilt_series(tmp_path / "b")
    with pytest.raises(FormatError, match="no files match"):
        read_tilt_series(str(tmp_path / "b" / "*.dm4"))


def test_folder_angles_and_times_from_file_metadata(tmp_path, monkeypatch):
    write_tifs(tmp_path / "m", ["a.tif", "b.tif", "c.tif"])
    meta = {"a.tif": (10.0, "2024-01-01T10:00:05"), "b.tif": (-10.0, "2024-01-01T10:00:00"),
            "c.tif": (30.0, "2024-01-01T10:00:12")}

    def fake(path):
        alpha, when = meta[path.name]
        return RawStack(images=np.zeros((4, 4), np.uint16), format="tif",
                        extra={"stage_alpha_deg": alpha, "acquired": when})

    monkeypatch.setitem(folder_module._READERS, ".tif", fake)
    s = read_tilt_series(tmp_path / "m")
    np.testing.assert_array_equal(s.angles, [-10, 10, 30])
    np.testing.assert_array_equal(s.times, [0, 5, 12])
    assert "metadata" in s.metadata["angles_from"] and "metadata" in s.metadata["times_from"]
    hyperspy = {"Acquisition_instrument": {"TEM": {"Stage": {"tilt_alpha": -42.5}}},
                "General": {"date": "2023-03-31", "time": "16:24:15"}}
    assert acquisition_metadata(hyperspy) == {"stage_alpha_deg": -42.5, "acquired": "2023-03-31T16:24:15"}


MDOC = """PixelSpacing = 7.88
ImageFile = stack.mrc

[ZValue = 0]
TiltAngle = -30.01
DateTime = 31-Mar-23  16:24:15

[ZValue = 1]
TiltAngle = 0.02
DateTime = 31-Mar-23  16:24:20

[ZValue = 2]
TiltAngle = 29.98
DateTime = 31-Mar-23  16:25:01
"""


def test_serialem_mdoc_angles_and_times(tmp_path):
    with mrcfile.new(tmp_path / "stack.mrc") as m:
        m.set_data(np.zeros((3, 6, 6), np.float32))
    (tmp_path / "stack.mrc.mdoc").write_text(MDOC)
    s = read_tilt_series(tmp_path / "stack.mrc")
    np.testing.assert_allclose(s.angles, [-30.01, 0.02, 29.98])
    np.testing.assert_allclose(s.times, [0, 5, 46])
    assert s.metadata["angles_from"].endswith("stack.mrc.mdoc")
    assert read_mdoc(tmp_path / "stack.mrc.mdoc")[2]["pixel_size_nm"] == pytest.approx(0.788)


def test_imod_extended_header_angles(tmp_path):
    angles = np.array([-60.0, -30.5, 0.0, 30.25, 60.0])
    with mrcfile.new(tmp_path / "imod.st") as m:
        m.set_data(np.zeros((5, 4, 4), np.float32))
        m.set_extended_header(np.round(angles * 100).astype("<i2").view(np.uint8).view("V1"))
        m.header.exttyp = b"SERI"
        extra = bytearray(m.header.extra2.tobytes())
        extra[16:20] = np.array([2, 1], "<i2").tobytes()  # nint = 2 bytes per section, nreal = 1: tilt angle
        m.header.extra2 = bytes(extra)
    s = read_tilt_series(tmp_path / "imod.st")
    np.testing.assert_allclose(s.angles, angles)
    assert s.metadata["angles_from"] == "file"


def test_mat_v5_struct_and_v73(tmp_path):
    data = np.random.default_rng(0).random((6, 5, 4)).astype(np.float32)  # MATLAB order (Y, X, N)
    angles = np.array([-30.0, -10, 10, 30])
    scipy.io.savemat(tmp_path / "a.mat", {"stack": {"data": data, "angles": angles, "pix_sz": 0.5}})
    s = read_tilt_series(tmp_path / "a.mat")
    np.testing.assert_array_equal(s.images, np.moveaxis(data, 2, 0))
    np.testing.assert_array_equal(s.angles, angles)
    assert s.pixel_size == 0.5
    assert any("nm assumed" in n for n in s.metadata["notes"])
    with h5py.File(tmp_path / "b.mat", "w", userblock_size=512) as f:
        f.create_dataset("tilts/data", data=data.T)  # MATLAB v7.3 stores column-major: reversed axes
        f.create_dataset("tilts/angles", data=angles[None, :].T)
    with open(tmp_path / "b.mat", "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 .")
        f.seek(124)
        f.write(b"\x00\x02IM")
    s = read_tilt_series(tmp_path / "b.mat")
    np.testing.assert_array_equal(s.images, np.moveaxis(data, 2, 0))
    np.testing.assert_array_equal(s.angles, angles)
    assert s.metadata["format"] == "mat-v7.3"


# ------------------------------------------------------------------ the real files


def real(path):
    p = REAL_DATA / path
    if not p.exists():
        pytest.skip(f"real data not found at {p}")
    return p


def test_rosettasciio_is_a_core_dependency():
    import rsciio

    assert rsciio.__version__


def test_real_liquid_cell_mat_matches_the_npy_conversion():
    s = read_tilt_series(real("liquid_cell_au_assembly_n6/N6_liquid_sample_stack.mat"))
    folder = REAL_DATA / "liquid_cell_au_assembly_n6"
    np.testing.assert_allclose(s.images, np.load(folder / "tiltseries_uint8.npy") / 255.0, atol=1e-6)
    np.testing.assert_array_equal(s.angles, np.loadtxt(folder / "tiltseries.rawtlt"))
    assert s.pixel_size == pytest.approx(0.26)


def test_real_serialem_mdoc():
    angles, times, info = read_mdoc(real("formats/serialem_mdoc/test_000.mdoc"))
    assert angles.shape == (2,) and np.allclose(angles, -0.000488)
    np.testing.assert_array_equal(times, [0, 2])
    assert info["image_file"] == "test0.mrc"


def test_real_single_image_files_as_a_folder_series(tmp_path):
    src = real("formats/velox_emd/Acquisition_18.emd")
    for angle in (-20, 20):
        (tmp_path / f"tilt_{angle}.emd").symlink_to(src.resolve())
    s = read_tilt_series(str(tmp_path / "tilt_*.emd"))
    assert s.shape == (2, 1024, 1024)
    np.testing.assert_array_equal(s.angles, [-20, 20])
    assert s.pixel_size == pytest.approx(0.01225, rel=1e-3)


def test_real_dm3_stack_in_a_folder_is_refused_with_advice(tmp_path):
    shutil.copy(real("etspy_needle_haadf/HAADF.dm3"), tmp_path / "tilt_0.dm3")
    with pytest.raises(FormatError, match="one 2-D image per file"):
        read_tilt_series(tmp_path)


def test_real_bright_field_tem_frames_are_flagged_and_the_haadf_series_are_not():
    from tomotime.preprocess import convert_contrast, looks_like_bright_field

    tem = read_tilt_series(real("formats/tia_ser/64x64x5_TEM_preview.emi"), angles=[-2.0, -1, 0, 1, 2])
    assert looks_like_bright_field(tem)[0]  # a dark tip on the bright vacuum
    assert not looks_like_bright_field(convert_contrast(tem, mode="log"))[0]
    for path in ("etspy_needle_haadf/tiltseries.npy", "ncem_idp_fib_haadf/haadf_tiltseries.npy",
                 "liquid_cell_au_assembly_n6/N6_liquid_sample_stack.mat"):
        assert not looks_like_bright_field(read_tilt_series(real(path)))[0], path


def test_info_on_a_folder_says_where_angles_and_times_came_from(tmp_path):
    from cli_helpers import invoke

    write_tifs(tmp_path / "t", ["tilt_-30.tif", "tilt_0.tif", "tilt_30.tif"])
    result = invoke("info", tmp_path / "t")
    assert result.exit_code == 0, result.output
    assert "read from 3 image files, tilt_-30.tif .. tilt_30.tif" in result.output
    assert "from file names" in result.output and "times" in result.output
    odd = tmp_path / "scan[1].npy"
    np.save(odd, np.zeros((2, 4, 4), np.uint16))
    (tmp_path / "scan[1].rawtlt").write_text("0\n10\n")
    assert read_tilt_series(odd).shape == (2, 4, 4)  # a file name with glob characters is still a file
