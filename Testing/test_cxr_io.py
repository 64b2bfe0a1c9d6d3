"""Radiographs (PNG, JPEG, DICOM CR) as one-slice Volumes: pixels, MONOCHROME1, spacing, transfer
syntaxes and geometry through NRRD and a real MRML scene, on the real radiographs in ../shared/data/cxr."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from XAIMedSlicerLib.errors import XAIError
from XAIMedSlicerLib.io.radiograph import is_radiograph_path, radiograph_info, read_radiograph
from XAIMedSlicerLib.io.volumes import read_volume, write_volume

TOL = 1e-4
M2, M1 = "cxr/siim_cr_monochrome2.dcm", "cxr/siim_cr_monochrome1.dcm"
CROP = (slice(300, 556), slice(200, 520))  # 256 rows x 320 columns: not square, so a transpose shows


def _pil(path):
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img)


def _expected_ras(volume, i, j):
    """A PA radiograph: i to the patient's left (-R), j to the feet (-S), from origin 0."""
    si, sj, _ = volume.spacing
    return np.array([-i * si, 0.0, -j * sj])


def test_png_pixels_and_default_geometry(shared_data):
    path = shared_data("cxr/00000001_000.png")
    volume, info = read_radiograph(path)
    pixels = _pil(path)
    assert volume.array.shape == (1, *pixels.shape)
    np.testing.assert_array_equal(volume.array[0], pixels.astype(np.float32))
    assert volume.spacing == (1.0, 1.0, 1.0)
    assert info.source_format == "png" and info.spacing_source.startswith("default")
    assert info.orientation == ("L", "F") and not info.inverted
    np.testing.assert_allclose(volume.index_to_ras((37, 401, 0)), _expected_ras(volume, 37, 401), atol=TOL)
    # read_volume hands PNG files to the radiograph reader
    np.testing.assert_array_equal(read_volume(path).array, volume.array)


def test_jpeg_pixels_rows_columns_and_given_spacing(shared_data):
    path = shared_data("cxr/pa_normal_cc0.jpg")
    volume, info = read_radiograph(path, pixel_spacing=(0.2, 0.25))
    pixels = _pil(path)
    assert pixels.shape[0] != pixels.shape[1]
    assert volume.array.shape == (1, pixels.shape[0], pixels.shape[1])
    np.testing.assert_array_equal(volume.array[0], pixels.astype(np.float32))
    # DICOM order (row spacing, column spacing) -> Volume (i = column, j = row)
    assert volume.spacing == (0.25, 0.2, 1.0)
    assert info.source_format == "jpeg" and info.spacing_source == "given"
    last = (pixels.shape[1] - 1, pixels.shape[0] - 1)
    np.testing.assert_allclose(volume.index_to_ras((*last, 0)), _expected_ras(volume, *last), atol=TOL)


def test_dicom_monochrome2_spacing_and_baseline_jpeg(shared_data):
    import pydicom

    path = shared_data(M2)
    volume, info = read_radiograph(path)
    ds = pydicom.dcmread(path)
    np.testing.assert_array_equal(volume.array[0], ds.pixel_array.astype(np.float32))
    assert info.transfer_syntax == pydicom.uid.JPEGBaseline8Bit
    assert info.photometric == "MONOCHROME2" and not info.inverted
    assert info.spacing_source == "PixelSpacing" and info.view_position == "PA"
    np.testing.assert_allclose(volume.spacing, (0.168, 0.168, 1.0), atol=1e-9)
    assert is_radiograph_path(path) and radiograph_info(path)["photometric"] == "MONOCHROME2"


def test_dicom_monochrome1_is_inverted(shared_data):
    m2 = read_radiograph(shared_data(M2))[0]
    m1, info = read_radiograph(shared_data(M1))
    assert info.photometric == "MONOCHROME1" and info.inverted
    # the same stored pixels, displayed inverted: bright = dense means 2^BitsStored - 1 - stored
    np.testing.assert_array_equal(m1.array, 255.0 - m2.array)
    assert m1.same_grid(m2)
    # the test file stores MONOCHROME2's pixels under a MONOCHROME1 header: its lungs (dark air in
    # MONOCHROME2) must come out brighter than the mediastinum once it is read as bright = dense
    lung, mediastinum = (slice(400, 600), slice(150, 350)), (slice(400, 600), slice(450, 570))
    assert m2.array[0][lung].mean() < m2.array[0][mediastinum].mean()
    assert m1.array[0][lung].mean() > m1.array[0][mediastinum].mean()


SLOPE, INTERCEPT = 2.0, -100.0  # a modality rescale in the compressed files' headers


def _header(shared_data, photometric: str, rows: int, columns: int, rescale: bool = False):
    import pydicom

    ds = pydicom.dcmread(shared_data(M2))
    ds.decompress()
    ds = copy.deepcopy(ds)
    ds.PhotometricInterpretation = photometric
    ds.Rows, ds.Columns = rows, columns
    if rescale:
        ds.RescaleSlope, ds.RescaleIntercept = SLOPE, INTERCEPT
    return ds


def _gdcm_compressed(shared_data, pixels, compressor: str, photometric: str, tmp_path):
    """A CR file whose pixel data GDCM (inside SimpleITK) compressed; header from the real file."""
    import pydicom
    import SimpleITK as sitk

    raw = tmp_path / f"gdcm_{compressor}.dcm"
    writer = sitk.ImageFileWriter()
    writer.SetImageIO("GDCMImageIO")
    writer.SetFileName(str(raw))
    writer.SetUseCompression(True)
    writer.SetCompressor(compressor)
    writer.Execute(sitk.GetImageFromArray(np.ascontiguousarray(pixels)))
    encoded = pydicom.dcmread(raw)
    ds = _header(shared_data, photometric, *pixels.shape, rescale=True)
    ds.file_meta.TransferSyntaxUID = encoded.file_meta.TransferSyntaxUID
    ds.PixelData = encoded.PixelData
    ds["PixelData"].VR = "OB"
    out = tmp_path / f"cr_{compressor}_{photometric}.dcm"
    ds.save_as(out, enforce_file_format=True)
    return out


def _pydicom_compressed(shared_data, pixels, uid, photometric: str, tmp_path):
    ds = _header(shared_data, photometric, *pixels.shape, rescale=True)
    ds.compress(uid, np.ascontiguousarray(pixels), encoding_plugin="pyjpegls" if "4.8" in uid else "")
    out = tmp_path / f"cr_{uid}_{photometric}.dcm"
    ds.save_as(out, enforce_file_format=True)
    return out


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_compressed_transfer_syntaxes_decode_exactly(shared_data, tmp_path, photometric):
    import pydicom
    from pydicom import uid

    pixels = pydicom.dcmread(shared_data(M2)).pixel_array[CROP]
    stored = pixels.astype(np.float64) if photometric == "MONOCHROME2" else 255.0 - pixels
    expected = (SLOPE * stored + INTERCEPT).astype(np.float32)  # bright = dense after the rescale
    files = {
        uid.JPEGLosslessSV1: _gdcm_compressed(shared_data, pixels, "JPEG", photometric, tmp_path),
        uid.JPEG2000Lossless: _gdcm_compressed(shared_data, pixels, "JPEG2000", photometric, tmp_path),
        uid.JPEGLSLossless: _pydicom_compressed(
            shared_data, pixels, uid.JPEGLSLossless, photometric, tmp_path
        ),
        uid.RLELossless: _pydicom_compressed(shared_data, pixels, uid.RLELossless, photometric, tmp_path),
    }
    for syntax, path in files.items():
        volume, info = read_radiograph(path)
        assert info.transfer_syntax == syntax
        np.testing.assert_array_equal(volume.array[0], expected, err_msg=str(syntax.name))
        np.testing.assert_allclose(volume.spacing, (0.168, 0.168, 1.0), atol=1e-9)


def test_undecodable_pixels_are_one_line_error(shared_data, tmp_path):
    ds = _header(shared_data, "MONOCHROME2", 256, 320)
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGLosslessSV1

    ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1
    ds.PixelData = encapsulate([b"\xff\xd8 not a jpeg stream \xff\xd9"])
    ds["PixelData"].VR = "OB"
    path = tmp_path / "broken.dcm"
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(XAIError) as err:
        read_radiograph(path)
    assert "cannot decode the pixels of broken.dcm" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["cxr/00027426_000.png", "cxr/pa_normal_cc0.jpg", M2, M1])
def test_geometry_round_trip_nrrd_and_mrml(shared_data, tmp_path, name):
    from XAIMedSlicerLib.scene import add_volume, create_scene, volume_from_node

    volume = read_radiograph(shared_data(name))[0]
    write_volume(volume, tmp_path / "r.nrrd")
    back = read_volume(tmp_path / "r.nrrd")
    scene = create_scene()
    node = add_volume(scene, volume, "radiograph")
    assert node.GetImageData().GetDimensions() == (volume.array.shape[2], volume.array.shape[1], 1)
    from_scene = volume_from_node(node)
    for other in (back, from_scene):
        assert other.array.shape == volume.array.shape
        np.testing.assert_allclose(other.ijk_to_ras(), volume.ijk_to_ras(), atol=TOL)
        np.testing.assert_array_equal(other.array, volume.array)
    corner = (volume.array.shape[2] - 1, volume.array.shape[1] - 1, 0)
    np.testing.assert_allclose(from_scene.index_to_ras(corner), _expected_ras(volume, *corner[:2]), atol=TOL)


def test_bad_inputs_are_one_line_errors(shared_data, tmp_path):
    fake = tmp_path / "not_an_image.png"
    fake.write_text("hello")
    cases = [
        (lambda: read_radiograph(fake), "cannot read not_an_image.png as an image"),
        (lambda: read_radiograph(tmp_path / "missing.png"), "file not found"),
        (lambda: read_radiograph(shared_data(M2), pixel_spacing=(0.2, -1)), "invalid pixel spacing"),
    ]
    for call, message in cases:
        with pytest.raises(XAIError) as err:
            call()
        assert message in str(err.value) and "\n" not in str(err.value)
    # a CT slice and a CT series folder are not claimed as radiographs
    assert not is_radiograph_path(shared_data("dicom/pydicom/CT_small.dcm"))
    assert not is_radiograph_path(shared_data("dicom/ct_head_series"))


def test_patient_orientation_and_imager_spacing(shared_data, tmp_path):
    """A lateral DX (PatientOrientation P\\F: columns to the back, rows to the feet) with only
    ImagerPixelSpacing: i points posterior (-A in RAS), j to the feet, k = i x j to the patient's right."""
    ds = _header(shared_data, "MONOCHROME2", 256, 320)
    import pydicom

    pixels = pydicom.dcmread(shared_data(M2)).pixel_array[CROP]
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.Modality, ds.PatientOrientation, ds.ViewPosition = "DX", ["P", "F"], "LL"
    del ds.PixelSpacing
    ds.ImagerPixelSpacing = [0.2, 0.15]
    path = tmp_path / "lateral.dcm"
    ds.save_as(path, enforce_file_format=True)
    volume, info = read_radiograph(path)
    assert info.orientation == ("P", "F") and info.spacing_source == "ImagerPixelSpacing"
    assert volume.spacing == (0.15, 0.2, 1.0)
    np.testing.assert_array_equal(volume.array[0], pixels.astype(np.float32))
    ras = volume.ijk_to_ras()
    np.testing.assert_allclose(ras[:3, 0], [0.0, -0.15, 0.0], atol=1e-12)  # +i: posterior
    np.testing.assert_allclose(ras[:3, 1], [0.0, 0.0, -0.2], atol=1e-12)  # +j: feet
    np.testing.assert_allclose(ras[:3, 2], [1.0, 0.0, 0.0], atol=1e-12)  # +k: patient right
    assert np.linalg.det(np.asarray(volume.direction)) == pytest.approx(1.0)
    # given spacing wins over the file's
    assert read_radiograph(path, pixel_spacing=0.5)[0].spacing == (0.5, 0.5, 1.0)


def test_16_bit_and_rgb_png(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(3)
    grey16 = rng.integers(0, 4096, size=(40, 56), dtype=np.uint16)
    Image.fromarray(grey16).save(tmp_path / "g16.png")
    volume, info = read_radiograph(tmp_path / "g16.png")
    np.testing.assert_array_equal(volume.array[0], grey16.astype(np.float32))
    rgb = rng.integers(0, 256, size=(40, 56, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    volume, info = read_radiograph(tmp_path / "rgb.png")
    assert info.photometric == "RGB->L"
    np.testing.assert_array_equal(volume.array[0], np.asarray(Image.fromarray(rgb).convert("L"), np.float32))
