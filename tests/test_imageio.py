"""helpers.imageio: every format and every bad file the cache and the app can meet."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from PIL import Image

from helpers.imageio import (
    ImageReadError,
    MultiFrameWarning,
    decode_image,
    describe_image,
    read_image,
)


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _gradient(h=20, w=30) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 8, y * 12, (x + y) * 4], axis=-1).clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "BMP", "PPM", "WEBP"])
def test_lossless_rgb_formats_round_trip(fmt):
    arr = _gradient()
    kw = {"lossless": True} if fmt == "WEBP" else {}
    out = read_image(_save(Image.fromarray(arr), fmt, **kw))
    assert out.dtype == np.uint8 and out.shape == (20, 30, 3)
    np.testing.assert_array_equal(out, arr)


def test_pgm_grey_is_one_channel(tmp_path):
    arr = _gradient()[..., 0]
    path = tmp_path / "x.pgm"
    Image.fromarray(arr).save(path)
    out = read_image(path)
    assert out.shape == (20, 30, 1)
    np.testing.assert_array_equal(out[..., 0], arr)
    assert read_image(path, channels=3).shape == (20, 30, 3)


def test_jpeg_exif_rotation_applied():
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = 255  # left half white
    img = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    out = decode_image(_save(img, "JPEG", exif=exif, quality=95))
    assert out.array.shape == (40, 20, 3)  # rotated: width and height swapped
    assert out.array[:15, :, 0].mean() > 200 and out.array[-15:, :, 0].mean() < 50  # white half is now on top
    assert any("EXIF orientation 6" in n for n in out.notes)


def test_16bit_scaled_by_range():
    arr16 = np.linspace(1000, 3000, 20 * 30).reshape(20, 30).astype(np.uint16)
    data = _save(Image.fromarray(arr16), "PNG")
    assert describe_image(data)["bit_depth"] == 16
    out = read_image(data)
    assert out.shape == (20, 30, 1) and out.dtype == np.uint8
    assert out.min() == 0 and out.max() == 255
    expected = np.rint((arr16.astype(float) - 1000) / 2000 * 255).astype(np.uint8)
    np.testing.assert_array_equal(out[..., 0], expected)


def test_16bit_tiff_and_constant_image():
    const = np.full((8, 8), 777, np.uint16)
    out = read_image(_save(Image.fromarray(const), "TIFF"))
    assert out.shape == (8, 8, 1) and (out == 0).all()


def test_rgba_composited_on_black_and_white():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 0
    rgba[0, 0, 3] = 255
    rgba[1, 1, 3] = 128
    data = _save(Image.fromarray(rgba, "RGBA"), "PNG")
    black = read_image(data)
    assert black.shape == (4, 4, 3)
    assert tuple(black[0, 0]) == (200, 0, 0)
    assert tuple(black[2, 2]) == (0, 0, 0)
    assert black[1, 1, 0] == round(200 * 128 / 255)
    white = read_image(data, background=255)
    assert tuple(white[2, 2]) == (255, 255, 255)


def test_la_palette_cmyk_and_1bit():
    la = Image.fromarray(np.stack([np.full((4, 4), 100, np.uint8), np.full((4, 4), 255, np.uint8)], -1), "LA")
    assert read_image(_save(la, "PNG")).shape == (4, 4, 1)
    assert (read_image(_save(la, "PNG")) == 100).all()

    pal = Image.fromarray(_gradient()).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    out = read_image(_save(pal, "PNG"))
    assert out.shape == (20, 30, 3)
    grey_pal = Image.fromarray(_gradient()[..., 0]).convert("P")
    assert read_image(_save(grey_pal, "GIF")).shape == (20, 30, 1)

    cmyk = Image.new("CMYK", (5, 6), (0, 255, 255, 0))  # pure red
    out = read_image(_save(cmyk, "JPEG", quality=100))
    assert out.shape == (6, 5, 3) and out[..., 0].mean() > 200 and out[..., 1].mean() < 60

    bw = Image.fromarray((np.eye(8) * 255).astype(np.uint8)).convert("1")
    out = read_image(_save(bw, "PNG"))
    assert out.shape == (8, 8, 1) and set(np.unique(out)) == {0, 255}


def test_rgb_to_grey_uses_luma():
    arr = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.uint8)
    grey = read_image(_save(Image.fromarray(arr), "PNG"), channels=1)
    expected = np.asarray(Image.fromarray(arr).convert("L"))
    np.testing.assert_array_equal(grey[..., 0], expected)


def test_multiframe_first_frame_and_warning():
    frames = [Image.fromarray(np.full((6, 6), v, np.uint8)) for v in (10, 200, 90)]
    buf = io.BytesIO()
    frames[0].save(buf, format="TIFF", save_all=True, append_images=frames[1:])
    with pytest.warns(MultiFrameWarning, match="3 frames"):
        out = read_image(buf.getvalue())
    assert (out == 10).all()
    assert describe_image(buf.getvalue())["frames"] == 3


@pytest.mark.parametrize(
    "data, pattern",
    [
        (b"", "empty"),
        (b"this is plainly a text file, not an image" * 3, "not a recognised image"),
    ],
)
def test_empty_and_non_image(data, pattern):
    with pytest.raises(ImageReadError, match=pattern):
        read_image(data)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "absent.png")
    with pytest.raises(ImageReadError, match="folder"):
        read_image(tmp_path)


def test_truncated_png_and_jpeg():
    for fmt in ("PNG", "JPEG"):
        data = _save(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)), fmt)
        with pytest.raises(ImageReadError, match="truncated|damaged|decoded"):
            read_image(data[: len(data) // 2])


def test_decompression_bomb_refused():
    data = _save(Image.new("L", (300, 300)), "PNG")
    with pytest.raises(ImageReadError, match="decompression bomb"):
        read_image(data, max_pixels=300 * 299)
    assert read_image(data, max_pixels=300 * 300).shape == (300, 300, 1)


def test_image_read_error_is_value_error():
    assert issubclass(ImageReadError, ValueError)


# ----------------------------------------------------------------------------- DICOM


def _dicom_bytes(pixels: np.ndarray, photometric="MONOCHROME2", window=None, rescale=(1.0, 0.0), frames=1) -> bytes:
    pytest.importorskip("pydicom")
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("synthetic.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.PatientID = "TEST"
    ds.Rows, ds.Columns = pixels.shape[-2:]
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = 0
    ds.RescaleSlope, ds.RescaleIntercept = rescale
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def test_dicom_window_applied():
    pixels = np.array([[0, 1000, 1500], [2000, 2500, 4000]], np.uint16)
    data = _dicom_bytes(pixels, window=(2000, 1001))  # window 1500..2500
    out = decode_image(data)
    assert out.format == "DICOM" and out.array.shape == (2, 3, 1)
    v = out.array[..., 0]
    assert v[0, 0] == 0 and v[0, 1] == 0 and v[1, 2] == 255  # clipped outside the window
    assert abs(int(v[1, 0]) - 128) <= 1  # the centre maps to mid-grey
    assert any("window" in n for n in out.notes)


def test_dicom_rescale_then_window():
    pixels = np.array([[0, 100, 200]], np.uint16)
    # values become 2*p - 100 = -100, 100, 300; a window 0..200 puts 100 at mid-grey
    out = read_image(_dicom_bytes(pixels, window=(100, 201), rescale=(2.0, -100.0)))
    assert out[0, 0, 0] == 0 and abs(int(out[0, 1, 0]) - 128) <= 1 and out[0, 2, 0] == 255


def test_dicom_monochrome1_inverted_and_range_without_window():
    pixels = np.array([[0, 2048, 4095]], np.uint16)
    mono2 = read_image(_dicom_bytes(pixels))
    mono1 = read_image(_dicom_bytes(pixels, photometric="MONOCHROME1"))
    assert list(mono2[0, :, 0]) == [0, 128, 255]
    assert list(mono1[0, :, 0]) == [255, 127, 0]
    info = describe_image(_dicom_bytes(pixels))
    assert info["format"] == "DICOM" and info["bit_depth"] == 12 and info["size"] == (3, 1)


def test_dicom_multiframe_first_frame():
    pixels = np.stack([np.full((4, 4), v, np.uint16) for v in (0, 4095)])
    pixels[0, 0, 0] = 4095
    with pytest.warns(MultiFrameWarning):
        out = read_image(_dicom_bytes(pixels, frames=2))
    assert out.shape == (4, 4, 1) and out[0, 0, 0] == 255 and out[1, 1, 0] == 0


def test_broken_dicom_is_image_read_error():
    data = _dicom_bytes(np.zeros((8, 8), np.uint16))
    with pytest.raises(ImageReadError):
        read_image(data[:-40])


# ----------------------------------------------------------------------------- the real samples


def test_real_samples_decode(real_data):
    from pathlib import Path

    files = [
        next((real_data / "pbc/PBC_dataset_normal_DIB/basophil").glob("*.jpg")),
        next((real_data / "nih/images").glob("*.png")),
        next((real_data / "mias/all-mias").glob("*.pgm")),
        next((real_data / "covid/images").glob("*.jpeg")),
    ]
    for path in files:
        arr = read_image(Path(path))
        assert arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[-1] in (1, 3)
    with pytest.raises(ImageReadError):
        read_image(real_data / "pbc/PBC_dataset_normal_DIB/neutrophil/.DS_169665.jpg")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rgba = [p for p in sorted((real_data / "nih/images").glob("*.png")) if describe_image(p)["mode"] == "RGBA"]
        assert rgba, "the NIH sample is documented to hold RGBA PNGs"
        for p in rgba[:2]:
            assert read_image(p).shape[-1] == 3
