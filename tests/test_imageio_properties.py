"""Property tests for pipeline.imageio.load_image (hypothesis)."""

from __future__ import annotations

import functools

import cv2
import numpy as np
from bad_inputs import encode, speckle
from dicom_factory import make_dicom
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import ImageLoadError
from pipeline.imageio import MIN_SIDE, LoadedImage, load_image

SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@functools.lru_cache(maxsize=1)
def valid_files() -> tuple[bytes, ...]:
    img = speckle((48, 64), seed=21)
    rgb = np.dstack([img, np.flipud(img), np.fliplr(img)])
    return (
        encode(img, "PNG"),
        encode(rgb, "JPEG", quality=80),
        encode(img, "TIFF"),
        encode(img, "BMP"),
        make_dicom(img),
        make_dicom(img, preamble=False),
        make_dicom(img.astype(np.uint16) * 50, bits=16, window=(6000, 4000)),
    )


def assert_valid_or_load_error(data: bytes) -> None:
    try:
        img = load_image(data, name="fuzz")
    except ImageLoadError as exc:
        assert str(exc).startswith("fuzz: ")
        return
    assert isinstance(img, LoadedImage)
    assert img.pixels.dtype == np.uint8 and img.pixels.ndim == 2
    assert img.rgb.shape == img.pixels.shape + (3,) and img.rgb.dtype == np.uint8
    assert min(img.pixels.shape) >= MIN_SIDE


MAGICS = [
    b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM", b"II*\x00", b"MM\x00*",
    b"\x00" * 128 + b"DICM", b"\x02\x00", b"\x08\x00", b"GIF89a", b"%PDF",
]


@settings(SETTINGS, max_examples=1500)
@given(st.one_of(
    st.binary(max_size=3000),
    st.tuples(st.sampled_from(MAGICS), st.binary(max_size=3000)).map(lambda t: t[0] + t[1]),
))
def test_random_bytes_never_leak_other_errors(data: bytes) -> None:
    assert_valid_or_load_error(data)


@settings(SETTINGS, max_examples=1000)
@given(st.integers(0, 6), st.floats(0, 1), st.binary(max_size=64))
def test_prefixes_of_valid_files(which: int, fraction: float, tail: bytes) -> None:
    data = valid_files()[which]
    cut = int(len(data) * fraction)
    assert_valid_or_load_error(data[:cut])
    assert_valid_or_load_error(data[:cut] + tail)


@settings(SETTINGS, max_examples=1000)
@given(st.integers(0, 6), st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=8))
def test_corrupted_valid_files(which: int, edits: list[tuple[float, int]]) -> None:
    data = bytearray(valid_files()[which])
    for where, value in edits:
        data[min(int(where * len(data)), len(data) - 1)] = value
    assert_valid_or_load_error(bytes(data))


@settings(SETTINGS, max_examples=300)
@given(
    h=st.integers(32, 300),
    w=st.integers(32, 300),
    dtype=st.sampled_from([np.uint8, np.uint16]),
    channels=st.sampled_from([1, 3, 4]),
    ext=st.sampled_from([".png", ".tif", ".bmp", ".jpg"]),
    seed=st.integers(0, 2**16),
)
def test_valid_images_load_with_right_shape(h: int, w: int, dtype, channels: int, ext: str, seed: int) -> None:
    if ext in (".bmp", ".jpg"):
        dtype = np.uint8  # these encoders are 8-bit only
    if ext == ".jpg" and channels == 4:
        channels = 3
    rng = np.random.default_rng(seed)
    top = 255 if dtype == np.uint8 else 65535
    shape = (h, w) if channels == 1 else (h, w, channels)
    array = rng.integers(0, top + 1, shape, dtype=np.int64).astype(dtype)
    ok, buf = cv2.imencode(ext, array)
    assert ok
    img = load_image(buf.tobytes(), name=f"gen{ext}")
    assert img.shape == (h, w)
    assert img.pixels.dtype == np.uint8 and img.rgb.shape == (h, w, 3)
    assert img.format == {".png": "PNG", ".tif": "TIFF", ".bmp": "BMP", ".jpg": "JPEG"}[ext]
    if ext in (".png", ".tif", ".bmp") and channels == 1 and dtype == np.uint8:
        np.testing.assert_array_equal(img.pixels, array)
