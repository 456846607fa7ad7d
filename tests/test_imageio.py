"""pipeline.imageio.load_image: corpus of bad inputs, exact round-trips, DICOM handling."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from bad_inputs import EXPECTED_KEYWORDS, bad_input_corpus, doppler_like, encode, exif_rotated_jpeg, speckle
from dicom_factory import make_dicom
from PIL import Image

from pipeline import imageio
from pipeline.errors import BusiError, ImageLoadError, ImageTooLargeError
from pipeline.imageio import MIN_SIDE, SUPPORTED_FORMATS, LoadedImage, describe_supported, load_image

CORPUS = bad_input_corpus()


def _check_valid(img: LoadedImage) -> None:
    assert isinstance(img, LoadedImage)
    assert img.pixels.dtype == np.uint8 and img.pixels.ndim == 2
    assert img.rgb.dtype == np.uint8 and img.rgb.shape == img.pixels.shape + (3,)
    assert min(img.shape) >= MIN_SIDE
    assert img.format in SUPPORTED_FORMATS + ("ARRAY",)


def _check_outcome(name: str, expect: str, load) -> None:
    keywords = EXPECTED_KEYWORDS[name]
    if expect == "error":
        with pytest.raises(ImageLoadError) as info:
            load()
        message = str(info.value)
        assert message.startswith(f"{name}: "), message
        for word in keywords:
            assert word.lower() in message.lower(), (word, message)
        return
    img = load()
    _check_valid(img)
    assert img.name == name
    if expect == "ok":
        assert img.warnings == (), img.warnings
    else:
        assert img.warnings, "expected a warning"
        joined = " | ".join(img.warnings).lower()
        for word in keywords:
            assert word.lower() in joined, (word, img.warnings)


def test_corpus_is_big_enough() -> None:
    assert len(CORPUS) >= 25
    assert {e for _, _, e in CORPUS} == {"error", "warning", "ok"}


@pytest.mark.parametrize(("name", "data", "expect"), CORPUS, ids=[c[0] for c in CORPUS])
def test_corpus_from_bytes(name: str, data: bytes, expect: str) -> None:
    _check_outcome(name, expect, lambda: load_image(data, name=name))


@pytest.mark.parametrize(("name", "data", "expect"), CORPUS, ids=[c[0] for c in CORPUS])
def test_corpus_from_path(name: str, data: bytes, expect: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    _check_outcome(name, expect, lambda: load_image(path))  # name defaults to the base name


def test_a_load_error_is_caught_as_the_project_error() -> None:
    with pytest.raises(BusiError) as info:
        load_image(b"")
    assert type(info.value) is ImageLoadError and str(info.value)


def test_message_without_name_has_no_prefix() -> None:
    with pytest.raises(ImageLoadError, match=r"^the file is empty"):
        load_image(b"")


def test_missing_path_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageLoadError, match="not found"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageLoadError, match="folder"):
        load_image(tmp_path)


def test_unsupported_source_type() -> None:
    with pytest.raises(ImageLoadError, match="cannot load an image from a int"):
        load_image(42)  # type: ignore[arg-type]


# --- exact round trips -------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "TIFF"])
def test_lossless_8bit_grayscale_round_trip(fmt: str) -> None:
    img = speckle(seed=11)
    loaded = load_image(encode(img, fmt))
    assert loaded.format == fmt
    assert loaded.original_dtype == "uint8" and loaded.bit_depth == 8
    np.testing.assert_array_equal(loaded.pixels, img)
    np.testing.assert_array_equal(loaded.rgb, np.repeat(img[:, :, None], 3, axis=2))
    assert loaded.colour is None and not loaded.is_colour  # the display copy is never sent as colour
    assert loaded.pixel_spacing_mm is None
    assert loaded.shape == img.shape


def test_rgb_to_gray_matches_pillow_luminance() -> None:
    rgb = np.random.default_rng(5).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    loaded = load_image(encode(rgb, "PNG"))
    np.testing.assert_array_equal(loaded.rgb, rgb)
    assert loaded.is_colour and loaded.colour is loaded.rgb
    np.testing.assert_array_equal(loaded.pixels, np.asarray(Image.fromarray(rgb).convert("L")))


def test_gray_stored_as_rgb_stays_exact() -> None:
    img = speckle(seed=2)
    loaded = load_image(encode(np.repeat(img[:, :, None], 3, axis=2), "PNG"))
    np.testing.assert_array_equal(loaded.pixels, img)


def test_16bit_scaled_by_min_max() -> None:
    data = np.linspace(1000, 3000, 64 * 80).reshape(64, 80).astype(np.uint16)
    loaded = load_image(encode(data, "PNG"))
    assert loaded.bit_depth == 16 and loaded.original_dtype == "uint16"
    assert loaded.pixels.min() == 0 and loaded.pixels.max() == 255
    expected = np.rint((data.astype(float) - 1000) / 2000 * 255).astype(np.uint8)
    np.testing.assert_array_equal(loaded.pixels, expected)


def test_16bit_times_257_equals_8bit() -> None:
    img = speckle(seed=4)
    img[0, 0], img[0, 1] = 0, 255  # full range, so min..max scaling is the identity
    for fmt in ("PNG", "TIFF"):
        loaded = load_image(encode(img.astype(np.uint16) * 257, fmt))
        np.testing.assert_array_equal(loaded.pixels, img)


def test_alpha_composited_on_black() -> None:
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[..., 3] = 255
    rgba[:32, :, 3] = 0
    rgba[32:40, :, 3] = 128
    loaded = load_image(encode(rgba, "PNG"))
    assert (loaded.pixels[:32] == 0).all()
    assert (loaded.pixels[32:40] == 100).all()  # 200 * 128 / 255 = 100.4
    assert (loaded.pixels[40:] == 200).all()
    assert any("transparent" in w for w in loaded.warnings)


def test_exif_orientation_applied() -> None:
    data, stored = exif_rotated_jpeg()
    loaded = load_image(data, name="rot.jpg")
    assert stored.shape == (200, 160)
    assert loaded.shape == (160, 200)
    clockwise = np.rot90(stored, k=-1).astype(float)
    counter = np.rot90(stored, k=1).astype(float)
    got = loaded.pixels.astype(float)
    assert np.abs(got - clockwise).mean() < 3 < np.abs(got - counter).mean()
    # The bright marker from the stored top-left is now at the top-right.
    assert got[:60, -40:].mean() > 240


@pytest.mark.parametrize("mode", ["1", "P", "LA", "I", "F", "CMYK", "RGBA", "I;16"])
def test_pillow_modes_load(mode: str) -> None:
    base = Image.fromarray(speckle(seed=9))
    im = base.convert(mode) if mode != "I;16" else Image.fromarray(speckle(seed=9).astype(np.uint16) * 100)
    fmt = "JPEG" if mode == "CMYK" else ("TIFF" if mode in ("I", "F") else "PNG")
    loaded = load_image(encode(im, fmt))
    _check_valid(loaded)
    assert loaded.shape == (160, 192)


def test_float_tiff_with_nan_refused() -> None:
    arr = speckle().astype(np.float32)
    arr[5, 5] = np.nan
    with pytest.raises(ImageLoadError, match="NaN"):
        load_image(encode(Image.fromarray(arr, "F"), "TIFF"), name="nan.tif")


# --- input kinds -------------------------------------------------------------------


def test_bytes_path_fileobj_and_array_agree(tmp_path: Path) -> None:
    img = speckle(seed=6)
    data = encode(img, "PNG")
    path = tmp_path / "scan.png"
    path.write_bytes(data)
    results = [
        load_image(data),
        load_image(bytearray(data)),
        load_image(memoryview(data)),
        load_image(path),
        load_image(str(path)),
        load_image(io.BytesIO(data)),
        LoadedImage.from_array(img),
        load_image(img),
    ]
    with open(path, "rb") as fh:
        results.append(load_image(fh))
    for r in results:
        np.testing.assert_array_equal(r.pixels, img)
    assert results[3].name == "scan.png" and results[-1].name == "scan.png"
    assert results[0].name is None
    assert load_image(path, name="custom").name == "custom"


def test_returned_arrays_are_read_only() -> None:
    loaded = load_image(encode(speckle(), "PNG"))
    with pytest.raises(ValueError):
        loaded.pixels[0, 0] = 1
    with pytest.raises(AttributeError):  # frozen dataclass
        loaded.format = "X"  # type: ignore[misc]


def test_name_in_every_error_message() -> None:
    for name, data, expect in CORPUS:
        if expect == "error":
            with pytest.raises(ImageLoadError, match=f"^{name}: "):
                load_image(data, name=name)


# --- numpy arrays ----------------------------------------------------------------


def test_from_array_variants() -> None:
    img = speckle(seed=8)
    assert LoadedImage.from_array(img[:, :, None]).shape == img.shape
    rgb = doppler_like()
    loaded = LoadedImage.from_array(rgb, name="arr")
    assert loaded.format == "ARRAY" and any("Doppler" in w for w in loaded.warnings)
    np.testing.assert_array_equal(LoadedImage.from_array(img.astype(np.float32) / 255).pixels, img)
    np.testing.assert_array_equal(LoadedImage.from_array(img.astype(np.float64)).pixels, img)
    assert LoadedImage.from_array(img > 128).pixels.max() == 255
    u16 = LoadedImage.from_array(img.astype(np.uint16) * 3)
    assert u16.pixels.max() == 255 and u16.original_dtype == "uint16"


@pytest.mark.parametrize(
    ("array", "words"),
    [
        (np.zeros((10, 100), np.uint8), "too small"),
        (np.zeros((64, 64, 2), np.uint8), "shape"),
        (np.zeros((64,), np.uint8), "shape"),
        (np.zeros((64, 64), np.complex64), "dtype"),
        (np.full((64, 64), np.inf, np.float32), "NaN or infinite"),
    ],
)
def test_from_array_refusals(array: np.ndarray, words: str) -> None:
    with pytest.raises(ImageLoadError, match=words):
        LoadedImage.from_array(array, name="arr")


def test_pixel_budget_from_array(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imageio, "MAX_PIXELS", 1000)
    with pytest.raises(ImageLoadError, match="too large"):
        LoadedImage.from_array(np.zeros((64, 64), np.uint8))


def test_large_image_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imageio, "LARGE_SIDE_WARN", 100)
    loaded = load_image(encode(speckle(), "PNG"))
    assert any("very large" in w for w in loaded.warnings)


def test_describe_supported_mentions_formats() -> None:
    text = describe_supported()
    for fmt in SUPPORTED_FORMATS:
        assert fmt in text
    assert str(MIN_SIDE) in text


# --- DICOM ---------------------------------------------------------------------------


def test_dicom_8bit_equals_png() -> None:
    img = speckle(seed=12)
    from_png = load_image(encode(img, "PNG"))
    for preamble in (True, False):
        from_dcm = load_image(make_dicom(img, preamble=preamble))
        assert from_dcm.format == "DICOM"
        np.testing.assert_array_equal(from_dcm.pixels, from_png.pixels)
        np.testing.assert_array_equal(from_dcm.rgb, from_png.rgb)
        assert from_dcm.bit_depth == 8


def test_dicom_whose_preamble_is_a_tiff_header_is_read_as_dicom() -> None:
    """DICOM allows any 128-byte preamble; dual-personality files put a TIFF header there (pydicom's own
    CT_small.dcm does): the DICM marker decides, not the first bytes."""
    img = speckle(seed=13)
    data = bytearray(make_dicom(img, preamble=True))
    data[:8] = b"II*\x00\x08\x00\x00\x00"
    loaded = load_image(bytes(data))
    assert loaded.format == "DICOM"
    np.testing.assert_array_equal(loaded.pixels, load_image(encode(img, "PNG")).pixels)


def test_dicom_16bit_min_max() -> None:
    data = np.linspace(500, 4500, 160 * 192).reshape(160, 192).astype(np.uint16)
    loaded = load_image(make_dicom(data, bits=16))
    expected = np.rint((data.astype(float) - 500) / 4000 * 255).astype(np.uint8)
    np.testing.assert_array_equal(loaded.pixels, expected)
    assert loaded.bit_depth == 16 and loaded.original_dtype == "uint16"


@pytest.mark.parametrize("bits", [8, 16])
def test_dicom_monochrome1_matches_monochrome2(bits: int) -> None:
    img = speckle(seed=13)
    data = img.astype(np.uint16) * 13 if bits == 16 else img
    top = 255 if bits == 8 else 65535
    mono2 = load_image(make_dicom(data, bits=bits))
    mono1 = load_image(make_dicom(top - data.astype(np.int64), bits=bits, photometric="MONOCHROME1"))
    np.testing.assert_array_equal(mono1.pixels, mono2.pixels)
    if bits == 8:
        np.testing.assert_array_equal(mono2.pixels, img)


def test_dicom_rgb() -> None:
    rgb = doppler_like()
    loaded = load_image(make_dicom(rgb, photometric="RGB"), name="color.dcm")
    np.testing.assert_array_equal(loaded.rgb, rgb)
    np.testing.assert_array_equal(loaded.pixels, load_image(encode(rgb, "PNG")).pixels)
    assert any("Doppler" in w for w in loaded.warnings)


@pytest.mark.parametrize("tag", ["PixelSpacing", "ImagerPixelSpacing", "UltrasoundRegions"])
def test_dicom_spacing_read_back(tag: str) -> None:
    loaded = load_image(make_dicom(speckle(), spacing=(0.08, 0.12), spacing_tag=tag))
    assert loaded.pixel_spacing_mm == pytest.approx((0.08, 0.12))


def test_dicom_without_spacing() -> None:
    assert load_image(make_dicom(speckle(), spacing=None)).pixel_spacing_mm is None


def test_dicom_rescale_slope_intercept() -> None:
    img = speckle(seed=14)
    # 8-bit data with slope 2: values leave 0..255, so min..max scaling applies.
    loaded = load_image(make_dicom(img, slope=2, intercept=-10))
    expected = np.rint((img.astype(float) - img.min()) / (int(img.max()) - int(img.min())) * 255)
    np.testing.assert_array_equal(loaded.pixels, expected.astype(np.uint8))
    # A pure offset that stays within 0..255 keeps the 8-bit values (shifted).
    shifted = load_image(make_dicom(np.clip(img, 0, 200), intercept=20))
    np.testing.assert_array_equal(shifted.pixels, np.clip(img, 0, 200) + 20)


def test_dicom_window() -> None:
    data = np.tile(np.arange(0, 4096, 16, dtype=np.uint16), (64, 1))  # 64 x 256 ramp
    loaded = load_image(make_dicom(data, bits=16, window=(2048, 1024)))
    px = loaded.pixels
    assert (px[:, data[0] <= 1536] == 0).all()
    assert (px[:, data[0] >= 2560] == 255).all()
    mid = px[0, (data[0] > 1600) & (data[0] < 2500)]
    assert (np.diff(mid.astype(int)) >= 0).all() and 0 < mid.min() < mid.max() < 255
    assert abs(int(px[0, 128]) - 128) <= 1  # the centre maps to mid-grey
    # Same window expressed in rescaled units gives the same picture (+-1 level:
    # pydicom's LINEAR window uses centre-0.5 / width-1 in output units).
    rescaled = load_image(make_dicom(data, bits=16, slope=2, intercept=-1000, window=(3096, 2048)))
    assert np.abs(rescaled.pixels.astype(int) - px.astype(int)).max() <= 1


def test_dicom_without_preamble_wrong_name(tmp_path: Path) -> None:
    img = speckle(seed=15)
    path = tmp_path / "IM0001"
    path.write_bytes(make_dicom(img, preamble=False))
    loaded = load_image(path)
    assert loaded.format == "DICOM" and loaded.name == "IM0001"
    np.testing.assert_array_equal(loaded.pixels, img)


def test_dicom_rle_compressed_loads() -> None:
    from pydicom import dcmread
    from pydicom.uid import RLELossless

    img = speckle(seed=16)
    ds = dcmread(io.BytesIO(make_dicom(img)))
    ds.compress(RLELossless, encoding_plugin="pydicom")
    buf = io.BytesIO()
    ds.save_as(buf)
    np.testing.assert_array_equal(load_image(buf.getvalue()).pixels, img)


def test_dicom_without_file_meta_implicit_vr() -> None:
    from pydicom import Dataset, dcmread

    img = speckle(seed=17)
    bare = Dataset()
    for element in dcmread(io.BytesIO(make_dicom(img))):
        bare.add(element)
    buf = io.BytesIO()
    bare.save_as(buf, implicit_vr=True, little_endian=True)  # no preamble, no group 0002
    assert buf.getvalue()[:2] == b"\x08\x00"
    loaded = load_image(buf.getvalue(), name="bare")
    assert loaded.format == "DICOM"
    np.testing.assert_array_equal(loaded.pixels, img)


def test_dicom_ybr_full_converted_to_rgb() -> None:
    from pydicom import dcmread
    from pydicom.pixels import convert_color_space

    rgb = doppler_like()
    ds = dcmread(io.BytesIO(make_dicom(rgb, photometric="RGB")))
    ds.PixelData = convert_color_space(rgb, "RGB", "YBR_FULL").tobytes()
    ds.PhotometricInterpretation = "YBR_FULL"
    buf = io.BytesIO()
    ds.save_as(buf)
    loaded = load_image(buf.getvalue())
    assert np.abs(loaded.rgb.astype(int) - rgb.astype(int)).max() <= 2


# --- implausible DICOM values and the per-call pixel limit -------------------------------------------
@pytest.mark.parametrize("kwargs, words", [
    ({"spacing": (0, -1)}, "PixelSpacing (0\\-1) is not two positive numbers"),
    ({"slope": 1e308}, "Rescale Slope/Intercept (1e+308, 0) are implausible"),
    ({"slope": 0}, "Rescale Slope/Intercept (0, 0) are implausible"),
    ({"bits": 16, "slope": 1e308, "window": (100, 50)}, "Rescale Slope/Intercept (1e+308, 0) are implausible"),
    ({"window": (100, -5)}, "Window Center/Width (100, -5) are implausible"),
])
def test_implausible_dicom_values_warn_and_keep_the_image(kwargs: dict, words: str) -> None:
    """Bad header values are named in a warning; the image is neither blanked nor refused."""
    img = speckle()
    loaded = load_image(make_dicom(img, **kwargs))
    assert any(words in w for w in loaded.warnings), loaded.warnings
    assert not any("mostly blank" in w for w in loaded.warnings)
    assert int(loaded.pixels.max()) > int(loaded.pixels.min())
    if "spacing" in kwargs:
        assert loaded.pixel_spacing_mm is None
        assert np.array_equal(loaded.pixels, load_image(make_dicom(img)).pixels)


def test_plausible_dicom_values_give_no_value_warning() -> None:
    loaded = load_image(make_dicom(speckle(), slope=2, intercept=-10, spacing=(0.1, 0.2)))
    assert not any("DICOM" in w for w in loaded.warnings)


def test_max_pixels_lowers_the_limit_for_one_call() -> None:
    data = encode(speckle(), "PNG")
    h, w = load_image(data).shape
    with pytest.raises(ImageTooLargeError, match="too large"):
        load_image(data, name="x.png", max_pixels=h * w - 1)
    assert load_image(data, max_pixels=h * w).shape == (h, w)
    assert load_image(data).shape == (h, w)  # the lower limit does not stay


def test_tinted_gray_map_is_read_as_grayscale_with_a_warning():
    from pipeline.imageio import load_image, tinted_gray_map

    rng = np.random.default_rng(0)
    gray = cv2.GaussianBlur(rng.integers(0, 256, (120, 160)).astype(np.uint8), (5, 5), 0)
    for tint in ((0.8, 0.92, 1.1), (1.1, 0.95, 0.72)):
        rgb = np.clip(gray[:, :, None] * np.array(tint), 0, 255).astype(np.uint8)
        rgb[5:15, 5:15] = (255, 140, 0)  # a small coloured icon does not change the verdict
        loaded = load_image(cv2.imencode(".png", rgb[:, :, ::-1])[1].tobytes())
        assert not loaded.is_colour and loaded.colour is None  # the ultrasound path reads the gray
        assert loaded.rgb[..., 2].mean() != loaded.rgb[..., 0].mean()  # the tint kept for display
        assert any("tinted gray map" in w for w in loaded.warnings)
    plain = np.repeat(gray[:, :, None], 3, axis=2)
    assert not tinted_gray_map(plain, gray)  # plain gray: nothing to convert
    photo = rng.integers(0, 256, (120, 160, 3)).astype(np.uint8)  # colour not tied to the gray level
    assert not tinted_gray_map(photo, cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY))
    assert load_image(cv2.imencode(".png", photo)[1].tobytes()).is_colour
    palette = np.array([[230, 30, 30], [30, 200, 40], [40, 60, 230]], np.uint8)  # flat colours follow the gray too
    blocks = np.kron(palette[rng.integers(0, 3, (6, 8))], np.ones((20, 20, 1), np.uint8))
    assert not tinted_gray_map(blocks, cv2.cvtColor(blocks, cv2.COLOR_RGB2GRAY))
