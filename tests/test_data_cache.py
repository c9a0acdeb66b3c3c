"""Decode-once cache: same bytes back, rebuilt when the sources change, the resize rule, bad files."""

from __future__ import annotations

import io
import os
import time

import numpy as np
import pytest
from PIL import Image

from helpers.data.cache import cached_images, decode_resize, prepare_image


def _write_images(folder, n=6, size=(40, 30)):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    files = []
    for i in range(n):
        p = folder / f"img{i}.png"
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(p)
        files.append(p)
    return files


def test_same_bytes_back_and_reuse(tmp_path):
    files = _write_images(tmp_path / "src")
    first = cached_images("toy", "train", files, 16, source="synthetic", cache_root=tmp_path / "c", progress=False)
    assert first.built and first.images.shape == (6, 16, 16, 3) and first.images.dtype == np.uint8
    assert isinstance(first.images, np.memmap)
    for f, img in zip(files, first.images):
        np.testing.assert_array_equal(img, decode_resize(f, 16, 3)[0])
    second = cached_images("toy", "train", files, 16, source="synthetic", cache_root=tmp_path / "c", progress=False)
    assert not second.built and second.path == first.path
    np.testing.assert_array_equal(np.asarray(second.images), np.asarray(first.images))
    # another size or source is another cache
    other = cached_images("toy", "train", files, 8, source="synthetic", cache_root=tmp_path / "c", progress=False)
    assert other.built and other.path != first.path


def test_rebuilt_when_a_source_file_changes(tmp_path):
    files = _write_images(tmp_path / "src")
    first = cached_images("toy", "train", files, 16, source="real", cache_root=tmp_path / "c", progress=False)
    old = first.path
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(files[2])
    st = os.stat(files[2])
    os.utime(files[2], ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    again = cached_images("toy", "train", files, 16, source="real", cache_root=tmp_path / "c", progress=False)
    assert again.built and again.path != old and not old.exists(), "stale cache replaced"
    assert np.asarray(again.images[2]).max() == 0
    # and when a file is added
    more = _write_images(tmp_path / "src2", n=1)
    third = cached_images("toy", "train", files + more, 16, source="real", cache_root=tmp_path / "c", progress=False)
    assert third.built and len(third.images) == 7


def test_pad_to_square_then_resize():
    img = np.full((20, 40, 1), 200, np.uint8)  # wide: padded above and below with black
    out = prepare_image(img, 20)
    assert out.shape == (20, 20, 1)
    assert out[0, :, 0].max() == 0 and out[-1, :, 0].max() == 0, "padding rows are black"
    assert out[10, :, 0].min() == 200, "content is kept whole, not cropped"
    assert prepare_image(np.full((8, 8, 3), 7, np.uint8), 8).tolist() == np.full((8, 8, 3), 7).tolist()


def test_equalize_option():
    grad = np.tile(np.linspace(100, 140, 32).astype(np.uint8), (32, 1))[..., None]
    out = prepare_image(grad, 32, preprocess="equalize")
    assert out.min() < 20 and out.max() > 235, "equalisation spreads a narrow histogram"
    with pytest.raises(ValueError):
        prepare_image(grad, 32, preprocess="clahe")


def test_equalised_colour_files_are_equalised_as_grey_then_repeated(tmp_path):
    """With ``equalize`` and three channels, each image holds the equalised grey image three times."""
    from helpers.preprocessing import prepare_file

    files = _write_images(tmp_path / "src", n=3)
    res = cached_images(
        "toy", "train", files, 16, source="real", channels=3, preprocess="equalize", cache_root=tmp_path / "c"
    )
    assert res.images.shape == (3, 16, 16, 3)
    for img, f in zip(res.images, files):
        assert (img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all()
        grey, decoded = prepare_file(f, 16, 1, "equalize")
        assert decoded.array.shape[-1] == 1  # decoded as grey, whatever the channels asked for
        np.testing.assert_array_equal(img, np.repeat(grey, 3, axis=-1))
        np.testing.assert_array_equal(img, prepare_file(f.read_bytes(), 16, 3, "equalize")[0])


def test_bad_files_skipped_and_counted(tmp_path):
    src = tmp_path / "src"
    good = _write_images(src, n=3)
    rng = np.random.default_rng(1)
    jpeg = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(jpeg, format="JPEG")
    (src / "truncated.jpg").write_bytes(jpeg.getvalue()[:800])
    (src / "empty.png").write_bytes(b"")
    (src / "text.jpg").write_text("hello")
    Image.fromarray(np.arange(40 * 30, dtype=np.uint16).reshape(30, 40) * 50).save(src / "deep.png")
    rgba = np.zeros((30, 40, 4), np.uint8)
    rgba[..., 3] = 128
    rgba[..., 1] = 255
    Image.fromarray(rgba, "RGBA").save(src / "alpha.png")
    Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).convert("P").save(src / "palette.png")
    exif = Image.Exif()
    exif[0x0112] = 8
    Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(src / "rotated.jpg", exif=exif)
    names = ("truncated.jpg", "empty.png", "text.jpg", "deep.png", "alpha.png", "palette.png", "rotated.jpg")
    files = good + [src / n for n in names]
    res = cached_images("bad", "train", files, 16, source="synthetic", cache_root=tmp_path / "c", progress=False)
    assert res.images.shape == (7, 16, 16, 3)
    assert res.kept.tolist() == [0, 1, 2, 6, 7, 8, 9]
    rep = res.report
    assert rep["requested"] == 10 and rep["kept"] == 7 and len(rep["skipped"]) == 3
    reasons = " ".join(s["reason"] for s in rep["skipped"])
    assert "empty" in reasons and "not a recognised image" in reasons
    assert "truncated" in reasons or "decoded" in reasons
    conv = " ".join(rep["conversions"])
    assert "16-bit" in conv and "RGBA" in conv and "palette" in conv and "EXIF" in conv
    # the 16-bit image was scaled by its range, so its grey levels span 0..255
    deep = np.asarray(res.images[3])
    assert deep.min() <= 2 and deep.max() >= 200


def test_nothing_decodable_is_an_error(tmp_path):
    (tmp_path / "a.png").write_bytes(b"")
    with pytest.raises(ValueError, match="none of the 1 files"):
        cached_images("bad", "train", [tmp_path / "a.png"], 8, source="real", cache_root=tmp_path / "c", progress=False)


def test_real_pbc_cache_matches_direct_decode(real_data, tmp_path):
    files = sorted((real_data / "pbc/PBC_dataset_normal_DIB/platelet").glob("*.jpg"))[:5]
    t0 = time.perf_counter()
    res = cached_images("pbc", "probe", files, 24, source="real", cache_root=tmp_path, progress=False)
    assert time.perf_counter() - t0 < 60
    for f, img in zip(files, res.images):
        np.testing.assert_array_equal(img, decode_resize(f, 24, 3)[0])


def test_empty_split_gives_empty_array(tmp_path):
    res = cached_images("toy", "valid", [], 8, source="real", cache_root=tmp_path, progress=False)
    assert res.images.shape == (0, 8, 8, 3) and len(res.kept) == 0


def test_no_progress_bar_when_the_book_is_built(monkeypatch):
    from helpers.data import cache

    monkeypatch.delenv("MEDVIT_PROGRESS", raising=False)
    bar = cache._progress_bar(10, "toy/train", 8, progress=True)
    assert bar is not None
    bar.close()
    monkeypatch.setenv("MEDVIT_PROGRESS", "0")  # make book and make test: a saved page would show a frozen bar
    assert cache._progress_bar(10, "toy/train", 8, progress=True) is None
