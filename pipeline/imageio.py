"""The one image loader used by every entry point (CLI, Predictor, dashboard).

``load_image`` turns bytes, a path or a binary file object into a ``LoadedImage``:
an 8-bit grayscale ``pixels`` array for the models plus an 8-bit RGB ``rgb`` array
for display. The format is decided by the content (magic bytes), never by the
file name. Every failure is an :class:`~pipeline.errors.ImageLoadError` with a
message meant for the user (prefixed with the input's name when known).

Policies
--------
* Formats: PNG, JPEG, BMP, TIFF (Pillow) and DICOM (pydicom). GIF, WebP, HEIC,
  JPEG 2000 files, PDF, ZIP and text are refused.
* Multi-frame inputs (DICOM with NumberOfFrames > 1, multi-page TIFF, animated
  PNG) are refused: the models work on one frame and picking one silently
  could give a prediction on the wrong frame.
* Alpha (RGBA / LA / transparent palette): composited on black (the usual
  ultrasound background), i.e. ``colour * alpha / 255``; a warning is added
  when any pixel is not fully opaque.
* Colour -> grayscale: ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B) in the
  exact integer form Pillow's ``convert("L")`` uses, so R=G=B stays unchanged.
* 8-bit data is kept as is. Data with more than 8 bits (16-bit PNG/TIFF,
  32-bit int / float TIFF, 16-bit DICOM without a window) is scaled linearly
  from its actual min..max to 0..255 (a constant image becomes all 0).
* DICOM: Modality LUT / Rescale Slope+Intercept, then VOI LUT / Window
  Center+Width when present, else the 8-bit rule above (8-bit data whose
  rescaled values are integers in 0..255 is kept as is, so an 8-bit
  MONOCHROME2 DICOM gives the same ``pixels`` as the equivalent PNG), else
  min..max. MONOCHROME1 is inverted. YBR is converted to RGB by pydicom.
* Nothing global is changed (no ``ImageFile.LOAD_TRUNCATED_IMAGES``, no
  ``Image.MAX_IMAGE_PIXELS``, no pydicom config).
* Returned arrays are read-only; copy them before modifying in place.
"""

from __future__ import annotations

import contextvars
import io
import math
import os
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pipeline.errors import ImageLoadError, ImageTooLargeError

# --- size limits -----------------------------------------------------------------
MIN_SIDE = 32  # px; smaller sides are refused (nothing meaningful to classify)
MAX_PIXELS = 40_000_000  # width*height budget, checked from the header before decoding
MAX_FILE_BYTES = 512 * 1024 * 1024  # files larger than this are not even read
_pixel_limit: contextvars.ContextVar[int | None] = contextvars.ContextVar("pixel_limit", default=None)  # load_image(max_pixels=)
# DICOM Rescale Slope/Intercept beyond these are implausible (a corrupt header): the rescale is ignored
MAX_RESCALE_SLOPE = 1e6
MAX_RESCALE_INTERCEPT = 1e9

# --- warning thresholds (out-of-scope inputs that still load) --------------------
SMALL_SIDE_WARN = 128  # px; a shorter side than this is "very small" (upscaled a lot)
LARGE_SIDE_WARN = 4096  # px; a longer side than this is heavily downscaled for the models
# Colour Doppler / colour overlay: a pixel is "strongly saturated colour" when its HSV
# saturation (max-min)/max >= COLOUR_SAT_MIN and its value max >= COLOUR_VALUE_MIN
# (dark pixels have meaningless hue/saturation, JPEG chroma noise stays far below 0.5).
COLOUR_SAT_MIN = 0.5
COLOUR_VALUE_MIN = 64  # on 0..255
# ...and the image is flagged when more than this fraction of its pixels are such
# (1 %: a Doppler box is usually several %, caliper marks / text are far less).
COLOUR_FRACTION_WARN = 0.01
# A tinted gray map (a scanner's colour map applied to the gray level: blue, sepia, green B-mode) is still
# grayscale ultrasound: every channel is a function of the luminance. It is taken as such when at least
# TINT_SHARE of the pixels lie within TINT_TOLERANCE levels of their channel's mean at their luminance (icons,
# a pictogram or calipers in colour may make up the rest) and the channels differ by TINT_MIN_SPREAD on average.
TINT_SHARE = 0.97
TINT_TOLERANCE = 6
TINT_MIN_SPREAD = 2.0
TINT_SAMPLE = 1_000_000  # pixels looked at, at most (a regular subsample of larger images)
# ...and only for a frame of real gray content: at least TINT_MIN_SIDE px on a side, TINT_MIN_LEVELS distinct gray
# levels and at most TINT_MAX_STRONG of strongly saturated pixels (a few flat colours, an H&E patch or a colour
# photograph are not tinted gray maps even when their colours happen to follow the luminance)
TINT_MIN_SIDE = 100
TINT_MIN_LEVELS = 32
TINT_MAX_STRONG = 0.03
# Mostly blank: more than BLANK_FRACTION of pixels within +-BLANK_TOLERANCE grey
# levels of the most common value, or a global standard deviation below BLANK_STD.
BLANK_TOLERANCE = 4
BLANK_FRACTION = 0.95
BLANK_STD = 2.0

SUPPORTED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "BMP", "TIFF", "DICOM")
PILLOW_FORMATS = frozenset({"PNG", "JPEG", "BMP", "TIFF"})

# Photometric interpretations accepted for DICOM.
_DICOM_MONO = ("MONOCHROME1", "MONOCHROME2")
_DICOM_COLOUR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "PALETTE COLOR")

Source = bytes | bytearray | memoryview | str | os.PathLike | BinaryIO


def describe_supported(max_pixels: int | None = None) -> str:
    """One-paragraph help text for UIs listing what can be loaded (``max_pixels``: a lower limit in force)."""
    limit = min(max_pixels, MAX_PIXELS) if max_pixels else MAX_PIXELS
    return (
        "Supported: PNG, JPEG, BMP, TIFF (8 or 16 bit; grayscale, RGB, RGBA, palette) "
        "and single-frame DICOM (uncompressed, RLE, JPEG baseline/JPEG 2000). "
        f"Each side must be at least {MIN_SIDE} px and the image at most "
        f"{limit / 1e6:.{0 if limit % 1_000_000 == 0 else 1}f} megapixels. Colour images are converted to grayscale; "
        "multi-frame files (cine loops, multi-page TIFF) must be exported as single frames."
    )


@dataclass(frozen=True, eq=False)
class LoadedImage:
    """A decoded input image.

    ``pixels``: uint8 (H, W) grayscale for the models. ``rgb``: uint8 (H, W, 3) for
    display. ``pixel_spacing_mm``: (row, col) mm per pixel when the file says so.
    """

    pixels: np.ndarray
    rgb: np.ndarray
    format: str
    original_dtype: str
    bit_depth: int
    pixel_spacing_mm: tuple[float, float] | None = None
    warnings: tuple[str, ...] = ()
    name: str | None = None
    is_colour: bool = False  # colour the ultrasound path must read; False for a gray file (``rgb`` repeats the gray
    # image) and for a tinted gray map (``rgb`` keeps the tint, for display and the histopathology path)

    @property
    def colour(self) -> np.ndarray | None:
        """The colour pixels when the file held colour, else None (what the scope gate reads)."""
        return self.rgb if self.is_colour else None

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width)."""
        return (int(self.pixels.shape[0]), int(self.pixels.shape[1]))

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @classmethod
    def from_array(cls, array: np.ndarray, *, name: str | None = None) -> LoadedImage:
        """Build from a numpy array; see :func:`image_from_array`."""
        return image_from_array(array, name=name)


# ---------------------------------------------------------------------------------
# public entry points
# ---------------------------------------------------------------------------------


def load_image(source: Source | np.ndarray, *, name: str | None = None, max_pixels: int | None = None) -> LoadedImage:
    """Load an image from bytes, a path, a binary file object (or a numpy array).

    ``name`` (default: the file's base name when known) is used in messages.
    ``max_pixels`` lowers the width*height limit (``MAX_PIXELS``) for this call, e.g. for a server
    (ImageTooLargeError above it, from the header, before decoding).
    File objects are read from their current position. Raises ImageLoadError.
    """
    token = _pixel_limit.set(min(max_pixels, MAX_PIXELS) if max_pixels else None)
    try:
        return _load_image(source, name)
    finally:
        _pixel_limit.reset(token)


def _load_image(source: Source | np.ndarray, name: str | None) -> LoadedImage:
    if isinstance(source, np.ndarray):
        return image_from_array(source, name=name)
    data, name = _read_source(source, name)
    prefix = _prefix(name)
    if len(data) == 0:
        raise ImageLoadError(f"{prefix}the file is empty (0 bytes).")
    try:
        fmt = sniff_format(data)
        if fmt in PILLOW_FORMATS:
            return _decode_pillow(data, fmt, name)
        if fmt == "DICOM":
            return _decode_dicom(data, name, forced=False)
        if fmt is None and _may_be_dicom_without_preamble(data):
            result = _decode_dicom(data, name, forced=True)
            if result is not None:
                return result
        raise ImageLoadError(f"{prefix}{_not_an_image_message(data, fmt)}")
    except ImageLoadError:
        raise
    except MemoryError:
        raise
    except RecursionError as exc:  # deeply nested junk in a decoder
        raise ImageLoadError(f"{prefix}the file is corrupt and cannot be decoded ({exc}).") from exc
    except Exception as exc:  # any decoder failure becomes the project's error type
        raise ImageLoadError(
            f"{prefix}the file is corrupt or not a readable image "
            f"({type(exc).__name__}: {exc})."
        ) from exc


def image_from_array(array: np.ndarray, *, name: str | None = None) -> LoadedImage:
    """Build a LoadedImage from a numpy array (same checks and warnings as files).

    Shapes: (H, W), (H, W, 1), (H, W, 3) RGB order (not OpenCV's BGR), (H, W, 4)
    RGBA. dtypes: uint8 as is; bool -> 0/255; other integers scaled by min..max;
    floats must be finite: values within 0..1 are taken as normalised (x255),
    values within 0..255 as 8-bit levels, anything else is scaled by min..max.
    """
    prefix = _prefix(name)
    if not isinstance(array, np.ndarray):
        raise ImageLoadError(f"{prefix}expected a numpy array, got {type(array).__name__}.")
    arr = array
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        channels = 1
    elif arr.ndim == 3 and arr.shape[2] in (3, 4):
        channels = arr.shape[2]
    else:
        raise ImageLoadError(
            f"{prefix}unsupported array shape {tuple(array.shape)}: expected (H, W), "
            "(H, W, 1), (H, W, 3) or (H, W, 4)."
        )
    h, w = int(arr.shape[0]), int(arr.shape[1])
    _check_size(w, h, name)
    kind = arr.dtype.kind
    if kind == "b":
        arr8 = arr.astype(np.uint8) * np.uint8(255)
        bit_depth = 1
    elif arr.dtype == np.uint8:
        arr8 = arr
        bit_depth = 8
    elif kind in "ui":
        arr8 = _minmax_to_uint8(arr)
        bit_depth = arr.dtype.itemsize * 8
    elif kind == "f":
        if not np.all(np.isfinite(arr)):
            raise ImageLoadError(f"{prefix}the array contains NaN or infinite values.")
        lo, hi = float(arr.min()), float(arr.max())
        if lo >= 0.0 and hi <= 1.0:
            arr8 = _unit_to_uint8(arr.astype(np.float64))
        elif lo >= 0.0 and hi <= 255.0:
            arr8 = _unit_to_uint8(arr.astype(np.float64) / 255.0)
        else:
            arr8 = _minmax_to_uint8(arr)
        bit_depth = arr.dtype.itemsize * 8
    else:
        raise ImageLoadError(f"{prefix}unsupported array dtype {arr.dtype}.")
    warnings: list[str] = []
    if channels == 1:
        gray, rgb, is_colour = arr8, None, False
    else:
        rgb = arr8[:, :, :3]
        if channels == 4:
            rgb = _composite_on_black(rgb, arr8[:, :, 3], warnings)
        gray, is_colour = _luminance(rgb), True
    return _finish(
        gray, rgb, fmt="ARRAY", original_dtype=array.dtype.name, bit_depth=bit_depth,
        name=name, warnings=warnings, is_colour=is_colour,
    )


def sniff_format(data: bytes) -> str | None:
    """The format named by the content's magic bytes (one of SUPPORTED_FORMATS,
    another recognised non-supported name such as "GIF"/"PDF", or None)."""
    if len(data) >= 132 and data[128:132] == b"DICM":  # first: a DICOM preamble may itself be a TIFF header
        return "DICOM"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"BM") and len(data) >= 26:
        return "BMP"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if data[:4] in (b"II+\x00", b"MM\x00+"):
        return "BigTIFF"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    if data[4:8] == b"ftyp":
        return "HEIC/MP4"
    if data.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n") or data.startswith(b"\xff\x4f\xff\x51"):
        return "JPEG 2000"
    if data.startswith(b"%PDF"):
        return "PDF"
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "ZIP"
    if data[:2] == b"\x1f\x8b":
        return "GZIP"
    return None


# ---------------------------------------------------------------------------------
# input handling and messages
# ---------------------------------------------------------------------------------


def _prefix(name: str | None) -> str:
    return f"{name}: " if name else ""


def _read_source(source: object, name: str | None) -> tuple[bytes, str | None]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if len(data) > MAX_FILE_BYTES:
            raise ImageLoadError(f"{_prefix(name)}{_file_too_big(len(data))}")
        return data, name
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if name is None:
            name = os.path.basename(path) or path
        prefix = _prefix(name)
        try:
            size = os.path.getsize(path)
            if os.path.isdir(path):
                raise ImageLoadError(f"{prefix}is a folder, not an image file ({path}).")
            if size > MAX_FILE_BYTES:
                raise ImageLoadError(f"{prefix}{_file_too_big(size)}")
            with open(path, "rb") as fh:
                return fh.read(MAX_FILE_BYTES + 1), name
        except FileNotFoundError as exc:
            raise ImageLoadError(f"{prefix}file not found: {path}") from exc
        except PermissionError as exc:
            raise ImageLoadError(f"{prefix}permission denied reading {path}") from exc
        except OSError as exc:
            raise ImageLoadError(f"{prefix}cannot read {path}: {exc}") from exc
    read = getattr(source, "read", None)
    if callable(read):
        if name is None:
            raw_name = getattr(source, "name", None)
            if isinstance(raw_name, (str, os.PathLike)):
                name = os.path.basename(os.fspath(raw_name)) or None
        try:
            data = read(MAX_FILE_BYTES + 1)
        except MemoryError:
            raise
        except Exception as exc:
            raise ImageLoadError(f"{_prefix(name)}cannot read the file object: {exc}") from exc
        if isinstance(data, str):
            raise ImageLoadError(f"{_prefix(name)}the file object is in text mode; open it with 'rb'.")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ImageLoadError(f"{_prefix(name)}the file object did not return bytes.")
        data = bytes(data)
        if len(data) > MAX_FILE_BYTES:
            raise ImageLoadError(f"{_prefix(name)}{_file_too_big(len(data))}")
        return data, name
    raise ImageLoadError(
        f"{_prefix(name)}cannot load an image from a {type(source).__name__}; "
        "pass bytes, a path, a binary file object or a numpy array."
    )


def _file_too_big(size: int) -> str:
    return (f"the file is too large ({size / 2**20:.0f} MiB; the limit is "
            f"{MAX_FILE_BYTES // 2**20} MiB).")


def _not_an_image_message(data: bytes, fmt: str | None) -> str:
    supported = ", ".join(SUPPORTED_FORMATS)
    if fmt == "GIF":
        return (f"GIF images are not supported (limited to 256 colours, often animated); "
                f"please export the image as PNG. Supported formats: {supported}.")
    if fmt in ("WebP", "HEIC/MP4", "JPEG 2000", "BigTIFF"):
        return f"{fmt} files are not supported; please convert to PNG. Supported formats: {supported}."
    if fmt in ("PDF", "ZIP", "GZIP"):
        extra = " (extract the images first)" if fmt in ("ZIP", "GZIP") else ""
        return f"this is a {fmt} file, not an image{extra}. Supported formats: {supported}."
    head = data[:4096]
    if b"\x00" not in head:
        try:
            head.decode("utf-8")
            return f"this is a text file, not an image. Supported formats: {supported}."
        except UnicodeDecodeError as exc:
            if exc.start >= len(head) - 4:  # a multi-byte char cut by the 4 KiB slice
                return f"this is a text file, not an image. Supported formats: {supported}."
    return f"not a recognised image format (unknown content). Supported formats: {supported}."


def _check_size(width: int, height: int, name: str | None) -> None:
    prefix = _prefix(name)
    if width <= 0 or height <= 0:
        raise ImageLoadError(f"{prefix}the image has no pixels ({width}x{height}).")
    limit = _pixel_limit.get() or MAX_PIXELS
    if width * height > limit:
        raise ImageTooLargeError(
            f"{prefix}the image is too large: {width}x{height} = "
            f"{width * height / 1e6:.1f} megapixels exceeds the limit of "
            f"{limit / 1e6:.{0 if limit % 1_000_000 == 0 else 1}f} megapixels."
        )
    if min(width, height) < MIN_SIDE:
        raise ImageLoadError(
            f"{prefix}the image is too small: {width}x{height} px; each side must be "
            f"at least {MIN_SIDE} px."
        )


# ---------------------------------------------------------------------------------
# pixel helpers
# ---------------------------------------------------------------------------------


def _unit_to_uint8(t: np.ndarray) -> np.ndarray:
    """Map values in 0..1 to 0..255 (round half to even, clipped)."""
    return np.clip(np.rint(t * 255.0), 0, 255).astype(np.uint8)


def _minmax_to_uint8(arr: np.ndarray, invert: bool = False) -> np.ndarray:
    """Scale by the array's actual min..max to 0..255 (constant -> 0)."""
    a = arr.astype(np.float64)
    lo, hi = float(a.min()), float(a.max())
    if hi <= lo:
        return np.zeros(a.shape, dtype=np.uint8)
    t = (hi - a) / (hi - lo) if invert else (a - lo) / (hi - lo)
    return _unit_to_uint8(t)


ROWS_PER_CHUNK = 256  # colour work is done this many rows at a time, so a large frame needs no full-size temporaries


def _row_chunks(height: int):
    for top in range(0, height, ROWS_PER_CHUNK):
        yield slice(top, min(top + ROWS_PER_CHUNK, height))


def _luminance(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma in Pillow's exact integer form (weights sum to 65536), computed in row chunks."""
    out = np.empty(rgb.shape[:-1], np.uint8)
    for rows in _row_chunks(rgb.shape[0]):
        r, g, b = (rgb[rows, ..., c].astype(np.uint32) for c in range(3))
        out[rows] = ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)
    return out


def _saturated_count(rgb: np.ndarray) -> int:
    """Pixels of strongly saturated colour (see COLOUR_SAT_MIN / COLOUR_VALUE_MIN), counted in row chunks."""
    return sum(int(np.count_nonzero(strong_colour(rgb[rows]))) for rows in _row_chunks(rgb.shape[0]))


def _composite_on_black(colour: np.ndarray, alpha: np.ndarray, warnings: list[str]) -> np.ndarray:
    """colour * alpha / 255, rounded; warns when anything is not fully opaque."""
    if int(alpha.min()) < 255:
        warnings.append("the image has transparent pixels; they were composited on black.")
    a = alpha.astype(np.uint32)
    if colour.ndim == 3:
        a = a[:, :, None]
    return ((colour.astype(np.uint32) * a + 127) // 255).astype(np.uint8)


def tinted_gray_map(rgb: np.ndarray, gray: np.ndarray) -> bool:
    """True when a colour image is a gray image under a colour map (each channel a function of the luminance)."""
    if min(gray.shape) < TINT_MIN_SIDE:
        return False
    step = max(1, int(math.ceil(math.sqrt(gray.size / TINT_SAMPLE))))
    g = gray[::step, ::step].ravel().astype(np.intp)
    sample = rgb[::step, ::step]
    if len(np.unique(g)) < TINT_MIN_LEVELS or strong_colour(sample).mean() > TINT_MAX_STRONG:
        return False
    c = sample.reshape(-1, 3).astype(np.float32)
    if np.abs(c - c.mean(axis=1, keepdims=True)).mean() < TINT_MIN_SPREAD:
        return False  # (nearly) plain gray: nothing to convert
    counts = np.maximum(np.bincount(g, minlength=256), 1)
    close = np.ones(len(g), bool)
    for ch in range(3):
        mean = np.bincount(g, weights=c[:, ch], minlength=256) / counts
        close &= np.abs(c[:, ch] - mean[g]) <= TINT_TOLERANCE
    return bool(close.mean() >= TINT_SHARE)


def strong_colour(rgb: np.ndarray) -> np.ndarray:
    """Boolean map of strongly saturated, not dark pixels (the loader's Doppler warning, the scope gate's statistics)."""
    mx = rgb.max(axis=2).astype(np.int16)
    mn = rgb.min(axis=2).astype(np.int16)
    return ((mx - mn) >= COLOUR_SAT_MIN * mx) & (mx >= COLOUR_VALUE_MIN)


def _content_warnings(gray: np.ndarray, rgb: np.ndarray | None) -> list[str]:
    out: list[str] = []
    h, w = gray.shape
    if min(h, w) < SMALL_SIDE_WARN:
        out.append(
            f"very small image ({w}x{h} px, under {SMALL_SIDE_WARN} px on a side); "
            "it will be upscaled and results may be unreliable."
        )
    if max(h, w) > LARGE_SIDE_WARN:
        out.append(
            f"very large image ({w}x{h} px); it will be downscaled heavily for the "
            "models and fine detail may be lost."
        )
    n = gray.size
    hist = np.bincount(gray.ravel(), minlength=256).astype(np.float64)
    peak = int(hist.argmax())
    near = hist[max(0, peak - BLANK_TOLERANCE): peak + BLANK_TOLERANCE + 1].sum() / n
    levels = np.arange(256, dtype=np.float64)
    mean = float((hist * levels).sum() / n)
    std = math.sqrt(max(0.0, float((hist * (levels - mean) ** 2).sum() / n)))
    if near > BLANK_FRACTION or std < BLANK_STD:
        out.append(
            f"the image is mostly blank ({near:.0%} of pixels near grey level {peak}, "
            f"std {std:.1f}); it may not be an ultrasound frame."
        )
    if rgb is not None:
        frac = _saturated_count(rgb) / n
        if frac > COLOUR_FRACTION_WARN:
            out.append(
                f"{frac:.1%} of pixels are strongly saturated colour: this looks like a "
                "colour Doppler / colour overlay image, which the models were not "
                "trained on (they expect B-mode grayscale); results may be unreliable."
            )
    return out


def _finish(
    gray: np.ndarray,
    rgb: np.ndarray | None,
    *,
    fmt: str,
    original_dtype: str,
    bit_depth: int,
    name: str | None,
    warnings: list[str],
    is_colour: bool,
    spacing: tuple[float, float] | None = None,
) -> LoadedImage:
    gray = np.ascontiguousarray(gray, dtype=np.uint8)
    if gray.ndim != 2:  # defensive: decoders must hand over 2-D data
        raise ImageLoadError(f"{_prefix(name)}decoded data has unexpected shape {gray.shape}.")
    h, w = gray.shape
    _check_size(w, h, name)
    if is_colour and rgb is not None and tinted_gray_map(rgb, gray):
        warnings = [*warnings, "a tinted gray map (the scanner's colour map applied to the gray level): analysed as "
                               "grayscale, from its luminance."]
        is_colour = False  # rgb keeps the tint for display (and the IDC path); the ultrasound path reads the gray
    if rgb is None:
        rgb = np.repeat(gray[:, :, None], 3, axis=2)
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    all_warnings = list(warnings) + _content_warnings(gray, rgb if is_colour else None)
    gray.setflags(write=False)
    rgb.setflags(write=False)
    return LoadedImage(
        pixels=gray, rgb=rgb, format=fmt, original_dtype=original_dtype,
        bit_depth=int(bit_depth), pixel_spacing_mm=spacing,
        warnings=tuple(all_warnings), name=name, is_colour=bool(is_colour),
    )


# ---------------------------------------------------------------------------------
# Pillow formats
# ---------------------------------------------------------------------------------


def _decode_pillow(data: bytes, fmt: str, name: str | None) -> LoadedImage:
    prefix = _prefix(name)
    corrupt = f"{prefix}the {fmt} data is truncated or corrupt and cannot be fully decoded"
    try:
        im = Image.open(io.BytesIO(data), formats=[fmt])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(
            f"{prefix}the image is too large: its header claims more pixels than the "
            f"limit of {(_pixel_limit.get() or MAX_PIXELS) / 1e6:.0f} megapixels (possible decompression bomb)."
        ) from exc
    except MemoryError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageLoadError(f"{corrupt} (its header is not valid).") from exc
    except Exception as exc:
        raise ImageLoadError(f"{corrupt} (bad header: {exc}).") from exc
    with im:
        width, height = im.size
        _check_size(width, height, name)  # from the header, before any pixel is decoded
        try:
            n_frames = int(getattr(im, "n_frames", 1)) if fmt in ("TIFF", "PNG") else 1
        except MemoryError:
            raise
        except Exception as exc:
            raise ImageLoadError(f"{corrupt} ({exc}).") from exc
        if n_frames > 1:
            what = "pages" if fmt == "TIFF" else "frames (animated PNG)"
            raise ImageLoadError(
                f"{prefix}only single-frame images are supported; this {fmt} has "
                f"{n_frames} {what}. Export the frame you want as a single image."
            )
        try:
            im.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageTooLargeError(f"{prefix}the image is too large ({exc}).") from exc
        except MemoryError:
            raise
        except Exception as exc:  # OSError, SyntaxError, ValueError, EOFError, zlib.error...
            raise ImageLoadError(f"{corrupt} ({type(exc).__name__}: {exc}).") from exc
        warnings: list[str] = []
        try:
            oriented = ImageOps.exif_transpose(im, in_place=True)  # no copy of a large frame
        except MemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 - a broken EXIF block must not refuse the image
            warnings.append(f"EXIF orientation could not be read ({exc}); shown as stored.")
            oriented = im
        if oriented is None:
            oriented = im
        return _pillow_to_image(oriented, data, fmt, name, warnings)


def _png_bit_depth(data: bytes) -> int | None:
    if len(data) > 24 and data[12:16] == b"IHDR":
        return int(data[24])
    return None


def _pillow_to_image(
    im: Image.Image, data: bytes, fmt: str, name: str | None, warnings: list[str]
) -> LoadedImage:
    prefix = _prefix(name)
    mode = im.mode
    bit_depth = 8
    rgb: np.ndarray | None = None
    is_colour = False
    if mode == "1":
        gray = np.asarray(im.convert("L"))
        bit_depth = 1
    elif mode == "L":
        gray = np.asarray(im)
    elif mode.startswith("I;16") or mode in ("I", "F"):
        arr = np.asarray(im)
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise ImageLoadError(f"{prefix}the image contains NaN or infinite values.")
        gray = _minmax_to_uint8(arr)
        bit_depth = 16 if mode.startswith("I;16") else 32
    elif mode in ("LA", "La"):
        arr = np.asarray(im.convert("LA") if mode == "La" else im)
        gray = _composite_on_black(arr[:, :, 0], arr[:, :, 1], warnings)
    else:
        if mode in ("P", "PA"):
            has_alpha = mode == "PA" or "transparency" in im.info
            im = im.convert("RGBA" if has_alpha else "RGB")
        elif mode in ("RGBa", "RGBX"):
            im = im.convert("RGBA" if mode == "RGBa" else "RGB")
        elif mode not in ("RGB", "RGBA"):
            try:
                im = im.convert("RGB")  # CMYK, YCbCr, LAB, HSV
            except MemoryError:
                raise
            except Exception as exc:
                raise ImageLoadError(
                    f"{prefix}unsupported image mode {mode!r} in this {fmt} file ({exc})."
                ) from exc
        arr = np.asarray(im)
        if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.dtype != np.uint8:
            raise ImageLoadError(f"{prefix}unsupported image mode {mode!r} in this {fmt} file.")
        rgb = arr[:, :, :3]
        if arr.shape[2] == 4:
            rgb = _composite_on_black(rgb, arr[:, :, 3], warnings)
        gray = _luminance(rgb)
        is_colour = True
    if fmt == "PNG":
        bit_depth = _png_bit_depth(data) or bit_depth
    original_dtype = "uint8" if bit_depth <= 8 else "uint16" if bit_depth == 16 else (
        "float32" if mode == "F" else "int32")
    return _finish(
        gray, rgb, fmt=fmt, original_dtype=original_dtype, bit_depth=bit_depth,
        name=name, warnings=warnings, is_colour=is_colour,
    )


# ---------------------------------------------------------------------------------
# DICOM
# ---------------------------------------------------------------------------------


def _may_be_dicom_without_preamble(data: bytes) -> bool:
    """A preamble-less DICOM starts with a group 0002 or 0008 element tag."""
    return len(data) >= 8 and data[:2] in (b"\x02\x00", b"\x08\x00", b"\x00\x02", b"\x00\x08")


def _decode_dicom(data: bytes, name: str | None, *, forced: bool) -> LoadedImage | None:
    """Decode a DICOM file; with ``forced`` (no preamble), None when it does not parse
    into something that looks like a DICOM image."""
    import pydicom
    from pydicom.pixels import apply_color_lut, get_decoder, pixel_array

    prefix = _prefix(name)
    try:
        header = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, force=forced)
        header_keys = set(header.keys())
    except MemoryError:
        raise
    except Exception as exc:
        if forced:
            return None
        raise ImageLoadError(f"{prefix}the DICOM header is corrupt or truncated ({exc}).") from exc
    if forced and not (
        {0x00280010, 0x00280011} <= header_keys or 0x00080016 in header_keys
    ):  # needs Rows+Columns or an SOP Class UID to count as DICOM
        return None

    frames = _dicom_int(header, "NumberOfFrames", 1)
    if frames > 1:
        raise ImageLoadError(
            f"{prefix}only single-frame images are supported; this DICOM has {frames} "
            "frames (a cine loop or multi-frame series). Export the frame you want "
            "as a single-frame DICOM or PNG."
        )
    if "Rows" in header and "Columns" in header:
        _check_size(_dicom_int(header, "Columns", 0), _dicom_int(header, "Rows", 0), name)

    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=forced)
    except MemoryError:
        raise
    except Exception as exc:
        raise ImageLoadError(f"{prefix}the DICOM file is corrupt or truncated ({exc}).") from exc
    if "PixelData" not in ds:
        extra = ""
        if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
            extra = " (it has float pixel data, which is not supported)"
        else:
            sop = ds.get("SOPClassUID")
            if sop is not None:
                extra = f" (SOP class: {getattr(sop, 'name', sop)})"
        raise ImageLoadError(f"{prefix}the DICOM file contains no pixel data{extra}.")
    if "Rows" not in ds or "Columns" not in ds:
        raise ImageLoadError(f"{prefix}the DICOM file has pixel data but no Rows/Columns.")
    rows, cols = _dicom_int(ds, "Rows", 0), _dicom_int(ds, "Columns", 0)
    _check_size(cols, rows, name)

    # Transfer syntax: preamble-less files may lack the file meta group.
    if not hasattr(ds, "file_meta") or ds.file_meta is None:
        ds.file_meta = pydicom.dataset.FileMetaDataset()
    ts = ds.file_meta.get("TransferSyntaxUID")
    if ts is None:
        implicit, little = ds.original_encoding
        ts = pydicom.uid.ImplicitVRLittleEndian if implicit else (
            pydicom.uid.ExplicitVRLittleEndian if little else pydicom.uid.ExplicitVRBigEndian)
        ds.file_meta.TransferSyntaxUID = ts
    ts = pydicom.uid.UID(str(ts))
    ts_label = f"{ts.name} ({ts})" if ts.name != str(ts) else str(ts)
    try:
        decoder = get_decoder(ts)
    except NotImplementedError as exc:
        raise ImageLoadError(
            f"{prefix}the DICOM transfer syntax {ts_label} is not supported."
        ) from exc
    if not decoder.is_available:
        raise ImageLoadError(
            f"{prefix}the DICOM pixel data is compressed with {ts_label} and no decoder "
            "for it is installed (needs e.g. pylibjpeg or gdcm). Export it uncompressed "
            "or as PNG."
        )

    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    samples = _dicom_int(ds, "SamplesPerPixel", 1)
    if photometric not in _DICOM_MONO + _DICOM_COLOUR:
        raise ImageLoadError(
            f"{prefix}unsupported DICOM photometric interpretation {photometric or '(missing)'!r}."
        )
    try:
        arr = pixel_array(ds)
    except MemoryError:
        raise
    except Exception as exc:
        raise ImageLoadError(
            f"{prefix}the DICOM pixel data cannot be decoded; it may be truncated or corrupt "
            f"({type(exc).__name__}: {exc})."
        ) from exc
    bits_stored = _dicom_int(ds, "BitsStored", _dicom_int(ds, "BitsAllocated", 8))
    original_dtype = arr.dtype.name
    warnings: list[str] = []
    spacing = _dicom_spacing(ds, warnings)

    if photometric in _DICOM_MONO:
        if arr.ndim != 2 or samples != 1:
            raise ImageLoadError(
                f"{prefix}unexpected DICOM pixel array shape {arr.shape} for {photometric}."
            )
        gray = _dicom_mono_to_uint8(arr, ds, invert=photometric == "MONOCHROME1", warnings=warnings)
        rgb, is_colour = None, False
    else:
        if photometric == "PALETTE COLOR":
            arr = apply_color_lut(arr, ds)
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise ImageLoadError(
                f"{prefix}unexpected DICOM pixel array shape {arr.shape} for {photometric}."
            )
        if arr.dtype == np.uint8:
            rgb = arr
        elif photometric == "PALETTE COLOR" and arr.dtype == np.uint16:
            rgb = ((arr.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
        else:
            rgb = _minmax_to_uint8(arr)
        gray, is_colour = _luminance(rgb), True
    return _finish(
        gray, rgb, fmt="DICOM", original_dtype=original_dtype, bit_depth=bits_stored,
        name=name, warnings=warnings, is_colour=is_colour, spacing=spacing,
    )


def _dicom_int(ds: object, keyword: str, default: int) -> int:
    try:
        value = ds.get(keyword)  # type: ignore[attr-defined]
        return default if value is None or value == "" else int(value)
    except (TypeError, ValueError):
        return default


def _dicom_float(ds: object, keyword: str) -> float | None:
    """The (first) value of a numeric DICOM element as a float: None when absent, NaN when not a number."""
    value = ds.get(keyword)  # type: ignore[attr-defined]
    if not isinstance(value, (str, bytes)) and hasattr(value, "__len__"):
        value = value[0] if len(value) else None  # a multi-valued element (e.g. two windows)
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _plausible_rescale(ds: object, warnings: list[str]) -> bool:
    """False, with a warning, when Rescale Slope/Intercept are zero, not finite or absurdly large."""
    slope, intercept = _dicom_float(ds, "RescaleSlope"), _dicom_float(ds, "RescaleIntercept")
    bad_slope = slope is not None and not (math.isfinite(slope) and 0 < abs(slope) <= MAX_RESCALE_SLOPE)
    bad_intercept = intercept is not None and not (math.isfinite(intercept) and abs(intercept) <= MAX_RESCALE_INTERCEPT)
    if bad_slope or bad_intercept:
        warnings.append(
            f"the DICOM Rescale Slope/Intercept ({slope:g}, {0 if intercept is None else intercept:g}) are implausible "
            "(zero, not finite or too large); they were ignored and the stored pixel values used as they are.")
        return False
    return True


def _plausible_window(ds: object, warnings: list[str]) -> bool:
    """False, with a warning, when the Window Center/Width are not finite or the width is not positive."""
    center, width = _dicom_float(ds, "WindowCenter"), _dicom_float(ds, "WindowWidth")
    if center is None or width is None:
        return False
    if math.isfinite(center) and math.isfinite(width) and width >= 1:  # pydicom needs >= 1 (LINEAR)
        return True
    warnings.append(f"the DICOM Window Center/Width ({center:g}, {width:g}) are implausible (the width must be at "
                    "least 1); the window was ignored and the image scaled from its darkest to its brightest pixel.")
    return False


def _dicom_mono_to_uint8(arr: np.ndarray, ds: object, *, invert: bool, warnings: list[str]) -> np.ndarray:
    """Modality LUT, then VOI LUT/window (or keep 8-bit / min..max), then 0..255. Implausible rescale or window
    values are ignored with a warning rather than blanking the image."""
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    rescale_ok = _plausible_rescale(ds, warnings)
    values = apply_modality_lut(arr, ds) if rescale_ok else arr
    if rescale_ok and np.asarray(values).dtype.kind == "f" and not np.all(np.isfinite(values)):
        warnings.append("the DICOM rescale overflows (values not finite); it was ignored.")
        values, rescale_ok = arr, False
    has_window = "WindowCenter" in ds and "WindowWidth" in ds and rescale_ok and _plausible_window(ds, warnings)
    has_voi_lut = bool(ds.get("VOILUTSequence"))
    if has_window or has_voi_lut:
        out = apply_voi_lut(values, ds).astype(np.float64)
        lo, hi = _voi_output_range(ds, windowing=not has_voi_lut)
        if hi <= lo:
            return np.zeros(out.shape, dtype=np.uint8)
        t = (hi - out) / (hi - lo) if invert else (out - lo) / (hi - lo)
        return _unit_to_uint8(t)
    bits_stored = _dicom_int(ds, "BitsStored", 8)
    if bits_stored <= 8:
        v = np.asarray(values)
        if v.size and float(v.min()) >= 0 and float(v.max()) <= 255 and (
            v.dtype.kind in "ui" or np.array_equal(v, np.rint(v))
        ):
            v8 = v.astype(np.uint8)
            return (255 - v8).astype(np.uint8) if invert else v8
    return _minmax_to_uint8(values, invert=invert)


def _voi_output_range(ds: object, *, windowing: bool) -> tuple[float, float]:
    """Output range of pydicom's apply_voi_lut (mirrors pydicom.pixels.processing)."""
    if not windowing:
        item = ds.VOILUTSequence[0]  # type: ignore[attr-defined]
        return 0.0, float(2 ** int(item.LUTDescriptor[2]) - 1)
    bits = _dicom_int(ds, "BitsStored", 8)
    if ds.get("ModalityLUTSequence"):  # type: ignore[attr-defined]
        lut_bits = int(ds.ModalityLUTSequence[0].LUTDescriptor[2])  # type: ignore[attr-defined]
        y_min, y_max = 0.0, float(2**lut_bits - 1)
    elif _dicom_int(ds, "PixelRepresentation", 0) == 0:
        y_min, y_max = 0.0, float(2**bits - 1)
    else:
        y_min, y_max = float(-(2 ** (bits - 1))), float(2 ** (bits - 1) - 1)
    slope = ds.get("RescaleSlope")  # type: ignore[attr-defined]
    intercept = ds.get("RescaleIntercept")  # type: ignore[attr-defined]
    if slope is not None and intercept is not None:
        y_min, y_max = y_min * float(slope) + float(intercept), y_max * float(slope) + float(intercept)
    return min(y_min, y_max), max(y_min, y_max)


def _dicom_spacing(ds: object, warnings: list[str]) -> tuple[float, float] | None:
    """(row, col) mm: PixelSpacing, ImagerPixelSpacing, else ultrasound regions (cm)."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(keyword)  # type: ignore[attr-defined]
        if value is None or value == "":
            continue
        try:
            row, col = float(value[0]), float(value[1])
            if len(value) == 2 and _positive(row) and _positive(col):
                return (row, col)
        except (TypeError, ValueError, IndexError):
            pass
        warnings.append(f"the DICOM {keyword} ({_dicom_text(value)}) is not two positive numbers of mm; it was "
                        "ignored, so measurements are in pixels.")
    regions = ds.get("SequenceOfUltrasoundRegions") or []  # type: ignore[attr-defined]
    found: list[tuple[float, float]] = []
    for region in regions:
        try:
            if int(region.get("PhysicalUnitsXDirection", 0)) != 3:
                continue
            if int(region.get("PhysicalUnitsYDirection", 0)) != 3:
                continue
            dx = abs(float(region.get("PhysicalDeltaX")))
            dy = abs(float(region.get("PhysicalDeltaY")))
        except (TypeError, ValueError):
            continue
        if _positive(dx) and _positive(dy):
            found.append((dy * 10.0, dx * 10.0))  # cm -> mm, (row, col)
    if not found:
        return None
    if any(abs(f[0] - found[0][0]) > 1e-9 or abs(f[1] - found[0][1]) > 1e-9 for f in found):
        warnings.append(
            f"the DICOM has {len(found)} calibrated ultrasound regions with different "
            "pixel spacings; the first one is used."
        )
    return found[0]


def _dicom_text(value: object) -> str:
    """A DICOM value as short text for a message (multi-values joined by backslashes, as DICOM writes them)."""
    items = list(value) if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue" else [value]
    return "\\".join(str(v) for v in items)[:60]


def _positive(x: float) -> bool:
    return math.isfinite(x) and x > 0
