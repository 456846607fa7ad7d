"""A generated corpus of bad and unusual image inputs, shared by the loader, CLI
and dashboard tests (import with ``from bad_inputs import bad_input_corpus``).

Each entry is ``(name, data, expectation)`` with expectation ``"error"`` (must raise
ImageLoadError), ``"warning"`` (loads, with a warning) or ``"ok"`` (loads, no
warnings). ``EXPECTED_KEYWORDS[name]`` lists words the error message / one of the
warnings must contain (case-insensitive). Everything is built in memory, fast.
"""

from __future__ import annotations

import functools
import io
import struct
import zipfile
import zlib

import numpy as np
from dicom_factory import make_dicom
from PIL import Image

# Words each entry's error message (or one of its warnings) must contain.
EXPECTED_KEYWORDS: dict[str, tuple[str, ...]] = {
    "empty.png": ("empty", "0 bytes"),
    "random.bin": ("not a recognised image",),
    "notes.png": ("text file",),
    "report.pdf": ("pdf", "not an image"),
    "images.zip": ("zip", "not an image"),
    "truncated.png": ("truncated or corrupt",),
    "truncated.jpg": ("truncated or corrupt",),
    "bad_crc.png": ("truncated or corrupt",),
    "corrupt_idat.png": ("truncated or corrupt",),
    "png_magic_then_garbage.png": ("truncated or corrupt",),
    "tiny_1x1.png": ("too small", "1x1", "32"),
    "thin_20x500.png": ("too small", "500x20"),
    "bomb_30000x30000.png": ("too large",),
    "big_header_8000x8000.png": ("too large", "8000x8000", "megapixels"),
    "animation.gif": ("gif", "not supported"),
    "fake.webp": ("webp", "not supported"),
    "multipage.tif": ("single-frame", "3 pages"),
    "gray16.png": (),
    "rgba_transparent.png": ("transparent", "black"),
    "palette.png": (),
    "cmyk.jpg": (),
    "la.png": (),
    "exif_rotated.jpg": (),
    "gray16.tif": (),
    "gray.bmp": (),
    "doppler.png": ("colour doppler",),
    "blank.png": ("mostly blank",),
    "small_100x90.png": ("very small",),
    "multiframe.dcm": ("single-frame", "4 frames"),
    "no_pixels.dcm": ("no pixel data",),
    "huge_header.dcm": ("too large", "60000x50000"),
    "jpeg_lossless.dcm": ("jpeg lossless", "1.2.840.10008.1.2.4.70", "no decoder"),
    "truncated_pixels.dcm": ("truncated",),
    "dicom_wrong_ext.jpg": (),
    "dicom_no_preamble": (),
    "png_named.jpg": (),
    "page.html.jpg": ("text file",),
}

SIZE = (160, 192)  # (H, W) of the "ok" images: above the small-image warning


def speckle(shape: tuple[int, int] = SIZE, seed: int = 0) -> np.ndarray:
    """A uint8 ultrasound-like image: a gradient with speckle (not blank)."""
    rng = np.random.default_rng(seed)
    h, w = shape
    grad = np.linspace(30, 200, w)[None, :] * np.ones((h, 1))
    noise = rng.normal(0, 25, (h, w))
    return np.clip(grad + noise, 0, 255).astype(np.uint8)


def encode(array_or_image: np.ndarray | Image.Image, fmt: str, **params: object) -> bytes:
    """Encode with Pillow and return the bytes."""
    im = array_or_image if isinstance(array_or_image, Image.Image) else Image.fromarray(array_or_image)
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_with_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height but holds one compressed row only."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (width + 1))
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)
            + _png_chunk(b"IEND", b""))


def exif_rotated_jpeg() -> tuple[bytes, np.ndarray]:
    """A 200x160 (HxW) stored JPEG with EXIF Orientation=6 (display: rotate 90 deg CW).

    Returns the bytes and the stored array (so tests can compare with np.rot90)."""
    stored = speckle((200, 160), seed=7)
    stored[:40, :60] = 255  # a bright marker in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(stored, "JPEG", quality=95, exif=exif.tobytes()), stored


def doppler_like() -> np.ndarray:
    """Grey speckle with a saturated red/blue blob (about 8 % of pixels): RGB uint8."""
    gray = speckle(seed=3)
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    yy, xx = np.mgrid[: SIZE[0], : SIZE[1]]
    blob = (yy - 80) ** 2 + (xx - 96) ** 2 < 28**2
    red = blob & (xx < 96)
    blue = blob & (xx >= 96)
    rgb[red] = (220, 20, 20)
    rgb[blue] = (20, 40, 230)
    return rgb


@functools.lru_cache(maxsize=1)
def _corpus() -> tuple[tuple[str, bytes, str], ...]:
    img = speckle()
    png = encode(img, "PNG")
    jpg = encode(img, "JPEG", quality=90)
    rng = np.random.default_rng(1234)
    out: list[tuple[str, bytes, str]] = []

    def add(name: str, data: bytes, expect: str) -> None:
        assert name in EXPECTED_KEYWORDS, name
        out.append((name, data, expect))

    # --- not images at all --------------------------------------------------------
    add("empty.png", b"", "error")
    random_bytes = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    add("random.bin", b"\xa7" + random_bytes, "error")  # first byte: no magic matches
    add("notes.png", b"Patient notes\nlesion at 3 o'clock, 12 mm\n" * 20, "error")
    add("report.pdf", b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n%%EOF\n", "error")
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as zf:
        zf.writestr("image.png", png)
    add("images.zip", zbuf.getvalue(), "error")
    add("page.html.jpg", b"<!DOCTYPE html><html><body>Not found</body></html>\n", "error")

    # --- damaged files ------------------------------------------------------------
    add("truncated.png", png[: len(png) // 2], "error")
    add("truncated.jpg", jpg[: len(jpg) // 2], "error")
    bad_crc = bytearray(png)
    bad_crc[29] ^= 0xFF  # the IHDR CRC (bytes 29..32)
    add("bad_crc.png", bytes(bad_crc), "error")
    idat = png.index(b"IDAT")
    corrupt = bytearray(png)
    for i in range(idat + 10, min(idat + 60, len(png) - 20)):
        corrupt[i] ^= 0x5A
    add("corrupt_idat.png", bytes(corrupt), "error")
    add("png_magic_then_garbage.png", b"\x89PNG\r\n\x1a\n" + random_bytes[:512], "error")

    # --- sizes ----------------------------------------------------------------------
    add("tiny_1x1.png", encode(np.full((1, 1), 128, np.uint8), "PNG"), "error")
    add("thin_20x500.png", encode(speckle((20, 500)), "PNG"), "error")
    add("bomb_30000x30000.png", png_with_header(30000, 30000), "error")
    add("big_header_8000x8000.png", png_with_header(8000, 8000), "error")
    add("small_100x90.png", encode(speckle((90, 100)), "PNG"), "warning")

    # --- formats we refuse --------------------------------------------------------
    add("animation.gif", encode(Image.fromarray(img).convert("P"), "GIF"), "error")
    add("fake.webp", b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 32, "error")
    pages = [Image.fromarray(speckle(seed=s)) for s in range(3)]
    add("multipage.tif", encode(pages[0], "TIFF", save_all=True, append_images=pages[1:]), "error")

    # --- unusual but valid ------------------------------------------------------------
    add("gray16.png", encode((img.astype(np.uint16) * 257), "PNG"), "ok")
    rgba = np.dstack([np.repeat(img[:, :, None], 3, axis=2), np.full(SIZE, 255, np.uint8)])
    rgba[:20, :20, 3] = 0
    add("rgba_transparent.png", encode(rgba, "PNG"), "warning")
    add("palette.png", encode(Image.fromarray(img).convert("P"), "PNG"), "ok")
    add("cmyk.jpg", encode(Image.fromarray(img).convert("CMYK"), "JPEG", quality=90), "ok")
    la = np.dstack([img, np.full(SIZE, 255, np.uint8)])
    add("la.png", encode(Image.fromarray(la, "LA"), "PNG"), "ok")
    add("exif_rotated.jpg", exif_rotated_jpeg()[0], "ok")
    add("gray16.tif", encode((img.astype(np.uint16) * 257), "TIFF"), "ok")
    add("gray.bmp", encode(img, "BMP"), "ok")
    add("png_named.jpg", png, "ok")

    # --- out-of-scope content (warnings) -------------------------------------------
    add("doppler.png", encode(doppler_like(), "PNG"), "warning")
    blank = np.zeros(SIZE, np.uint8)
    blank[70:75, 90:95] = 200
    add("blank.png", encode(blank, "PNG"), "warning")

    # --- DICOM ------------------------------------------------------------------------
    add("multiframe.dcm", make_dicom(img, frames=4), "error")
    add("no_pixels.dcm", make_dicom(img, with_pixel_data=False), "error")
    add("huge_header.dcm", make_dicom(img, rows=50000, columns=60000), "error")
    add("jpeg_lossless.dcm",
        make_dicom(img, transfer_syntax="1.2.840.10008.1.2.4.70"), "error")
    full = make_dicom(img)
    add("truncated_pixels.dcm", full[: len(full) - img.size // 2], "error")
    add("dicom_wrong_ext.jpg", full, "ok")
    add("dicom_no_preamble", make_dicom(img, preamble=False), "ok")
    assert len({n for n, _, _ in out}) == len(out) == len(EXPECTED_KEYWORDS)
    return tuple(out)


def bad_input_corpus() -> list[tuple[str, bytes, str]]:
    """(name, bytes, "error" | "warning" | "ok") for every corpus entry."""
    return list(_corpus())
