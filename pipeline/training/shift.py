"""Scanner-shift benchmark: BUSI test and BUS-BRA's held-out fold under realistic display variations.

A radiologist elsewhere uploads frames that look different from BUSI's: a tinted gray map, a body-mark
pictogram, calipers and text, other gain, time-gain compensation and depth, a brighter near field, black
padding around a wider field of view, blur, speckle, JPEG re-compression. Each variation is generated here
from the real images, at two strengths, with a fixed seed per image (nothing derived is written to disk), sent
through the same path as an upload (PNG or JPEG bytes -> ``imageio.load_image`` -> ``Predictor.predict`` with
the colour version for the gate) and scored for baseline and refined: normal recall, normal -> malignant
rate, benign and malignant recall, accuracy, lesion Dice, normal frames outlined and scope acceptance. Beside
them, lesion-free regions cut from the lesion frames (``regions.lesion_free_items``), each sent as a frame of its
own: normal tissue as each dataset's scanners show it (BUS-BRA has no normal frames).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import NamedTuple

import cv2
import numpy as np

from pipeline.training.regions import lesion_free_items

STRENGTHS: tuple[str, ...] = ("mild", "strong")
Variation = Callable[[np.ndarray, np.ndarray, int, np.random.Generator], tuple[np.ndarray, np.ndarray]]
TINTS = {"blue": (0.80, 0.92, 1.10), "sepia": (1.10, 0.95, 0.72), "green": (0.82, 1.08, 0.86)}


def _tint(name: str) -> Variation:
    def apply(gray, mask, level, rng):
        vec = np.array(TINTS[name], np.float32)
        vec = 1 + (vec - 1) * (0.5 if level == 0 else 1.0)
        rgb = np.clip(gray[:, :, None].astype(np.float32) * vec + (4 if level else 2), 0, 255).astype(np.uint8)
        return rgb, mask
    apply.__doc__ = f"{name}-tinted gray map (the scanner's colour map applied to the gray level)"
    return apply


def pictogram(gray, mask, level, rng):
    """Body-mark pictogram (coloured breast icon with a probe mark) in a lower corner, small coloured icons at the top."""
    rgb = cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)
    h, w = gray.shape
    r = max(8, int(min(h, w) * (0.06 if level == 0 else 0.1)))
    cx = r + 6 if rng.random() < 0.5 else w - r - 6
    cy = h - r - 6
    cv2.circle(rgb, (cx, cy), r, (230, 190, 150), 2)
    cv2.circle(rgb, (cx, cy), max(2, r // 5), (230, 190, 150), -1)
    angle = rng.uniform(0, np.pi)
    dx, dy = int(r * 0.9 * np.cos(angle)), int(r * 0.9 * np.sin(angle))
    cv2.line(rgb, (cx - dx, cy - dy), (cx + dx, cy + dy), (255, 220, 0), 2)
    for i in range(1 + 2 * level):
        x0 = int(w * 0.3) + i * (r + 4)
        cv2.rectangle(rgb, (x0, 3), (x0 + r // 2 + 3, 3 + r // 2 + 3), (60, 200, 255) if i % 2 else (255, 140, 0), -1)
    return rgb, mask


def calipers_text(gray, mask, level, rng):
    """Caliper crosses at the lesion's extremes (or mid-frame) and burned-in text."""
    out = gray.copy()
    h, w = gray.shape
    ys, xs = np.nonzero(mask)
    pts = ([(xs.min(), ys[xs.argmin()]), (xs.max(), ys[xs.argmax()])] if len(xs)
           else [(int(w * 0.35), int(h * 0.5)), (int(w * 0.65), int(h * 0.5))])
    size = 5 if level == 0 else 8
    for x, y in pts:
        cv2.line(out, (int(x) - size, int(y)), (int(x) + size, int(y)), 255, 1)
        cv2.line(out, (int(x), int(y) - size), (int(x), int(y) + size), 255, 1)
    scale = max(0.35, w / 1400) * (1 if level == 0 else 1.5)
    cv2.putText(out, "D1 1.23cm", (8, h - 10), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, 1, cv2.LINE_AA)
    if level:
        cv2.putText(out, "L BREAST 10H 3CM FN", (8, int(20 * scale + 8)), cv2.FONT_HERSHEY_SIMPLEX, scale, 230, 1,
                    cv2.LINE_AA)
    return out, mask


def gain(gray, mask, level, rng):
    """Overall gain up or down (chosen per image) with a gamma change."""
    up = rng.random() < 0.5
    g = (1.25 if level == 0 else 1.6) if up else (0.8 if level == 0 else 0.6)
    x = (gray.astype(np.float32) / 255) ** (0.9 if up else 1.1)
    return np.clip(x * g * 255, 0, 255).astype(np.uint8), mask


def dynamic_range(gray, mask, level, rng):
    """Narrower dynamic range (a flatter, grayer image)."""
    k = 0.7 if level == 0 else 0.45
    x = gray.astype(np.float32)
    return np.clip((x - 128) * k + 128 + 10 * level, 0, 255).astype(np.uint8), mask


def tgc_bands(gray, mask, level, rng):
    """Time-gain-compensation bands: gain varying with depth in a few horizontal bands."""
    h = gray.shape[0]
    depth = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    amp = 0.2 if level == 0 else 0.4
    profile = 1 + amp * np.sin(2 * np.pi * depth * rng.uniform(1.5, 3.0) + rng.uniform(0, np.pi))
    return np.clip(gray.astype(np.float32) * profile, 0, 255).astype(np.uint8), mask


def near_field(gray, mask, level, rng):
    """A brighter near field: gain raised at the top, fading with depth."""
    h = gray.shape[0]
    depth = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    boost = 1 + (0.4 if level == 0 else 0.8) * np.exp(-depth / 0.2)
    lift = (15 if level == 0 else 30) * np.exp(-depth / 0.15)
    return np.clip(gray.astype(np.float32) * boost + lift, 0, 255).astype(np.uint8), mask


def padding(gray, mask, level, rng):
    """Wider field of view / other depth: black padding below and at the sides (856x606-like frames)."""
    h, w = gray.shape
    bottom = int(h * (0.15 if level == 0 else 0.35))
    side = int(w * (0.1 if level == 0 else 0.25))
    pad = ((0, bottom), (side, side))
    return np.pad(gray, pad), np.pad(mask, pad)


def screen_layout(gray, mask, level, rng):
    """Another scanner's screen: blue tint, wide black padding with icons, a body-mark pictogram and text on it.

    The image sits in a wider frame (black padding below and at the sides, a strip above it with small coloured
    icons); the pictogram and a label are drawn on the padding below, as on the unseen hospital's 856x606 frames."""
    h, w = gray.shape
    top, bottom, side = int(h * 0.06), int(h * (0.15 if level == 0 else 0.35)), int(w * (0.08 if level == 0 else 0.2))
    pad = ((top, bottom), (side, side))
    rgb, mask = _tint("blue")(np.pad(gray, pad), np.pad(mask, pad), level, rng)
    fh, fw = rgb.shape[:2]
    s = max(4, top // 2)
    for i in range(3 + 2 * level):  # icons on the strip above the image
        x0 = side + int(w * 0.2) + i * 3 * s
        cv2.rectangle(rgb, (x0, (top - s) // 2), (x0 + s, (top + s) // 2), (60, 200, 255) if i % 2 else (255, 140, 0), -1)
    r = max(6, min(int(min(h, w) * 0.08), (bottom - 8) // 2, (side - 8) // 2 if level else bottom))
    cx = side // 2 if level and side > 2 * r + 8 else side + r + 4
    cy = fh - bottom // 2  # the body mark on the padding below the image
    cv2.circle(rgb, (cx, cy), r, (230, 190, 150), -1)
    cv2.circle(rgb, (cx, cy), max(2, r // 4), (200, 120, 110), -1)
    angle = rng.uniform(0, np.pi)
    dx, dy = int(r * 0.9 * np.cos(angle)), int(r * 0.9 * np.sin(angle))
    cv2.line(rgb, (cx - dx, cy - dy), (cx + dx, cy + dy), (255, 220, 0), 3)
    scale = max(0.35, fw / 1800) * (1 if level == 0 else 1.3)
    cv2.putText(rgb, "L BREAST 10H", (cx + r + 10, cy + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (235, 235, 235), 1,
                cv2.LINE_AA)
    return rgb, mask


def blur_downsample(gray, mask, level, rng):
    """Lower resolution: down-sampled (1/2 or 1/3) and blurred, shown at that size."""
    f = 0.5 if level == 0 else 1 / 3
    h, w = gray.shape
    size = (max(32, int(w * f)), max(32, int(h * f)))
    small = cv2.GaussianBlur(cv2.resize(gray, size, interpolation=cv2.INTER_AREA), (3, 3), 0)
    return small, cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)


def speckle(gray, mask, level, rng):
    """Stronger multiplicative speckle (smoothed gamma-distributed noise)."""
    sigma = 0.2 if level == 0 else 0.4
    noise = rng.gamma(1 / sigma ** 2, sigma ** 2, gray.shape).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (3, 3), 0)
    return np.clip(gray.astype(np.float32) * noise, 0, 255).astype(np.uint8), mask


def jpeg(gray, mask, level, rng):
    """JPEG re-compression (quality 50 or 20); the bytes sent are the JPEG itself."""
    return gray, mask


VARIATIONS: dict[str, Variation] = {
    "tint_blue": _tint("blue"), "tint_sepia": _tint("sepia"), "tint_green": _tint("green"),
    "pictogram": pictogram, "calipers_text": calipers_text, "gain": gain, "dynamic_range": dynamic_range,
    "tgc_bands": tgc_bands, "near_field": near_field, "padding": padding, "screen_layout": screen_layout,
    "blur_downsample": blur_downsample, "speckle": speckle, "jpeg": jpeg,
}
JPEG_QUALITY = (50, 20)
LESION_FREE = "lesion_free_regions"  # the benchmark's row of lesion-free regions of lesion frames
LESION_FREE_WHAT = ("a region of a lesion frame well away from its lesion and its shadow (at most one per frame), "
                    "sent as a frame of its own: normal tissue as this dataset's scanners show it")
REGION_SEED = 20  # fixes which regions are cut


def describe() -> dict[str, str]:
    """One line per variation (what it does)."""
    return {name: (fn.__doc__ or "").strip().splitlines()[0] for name, fn in VARIATIONS.items()}


def image_seed(image: str, variation: str, level: int) -> int:
    """A fixed seed per image, variation and strength."""
    return zlib.crc32(f"{image}|{variation}|{level}".encode())


def varied_bytes(gray: np.ndarray, mask: np.ndarray, image: str, variation: str | None, level: int = 0
                 ) -> tuple[bytes, np.ndarray]:
    """The upload bytes (PNG, or JPEG for ``jpeg``) of one image under one variation, and its ground-truth mask."""
    if variation is None:
        out, m = gray, mask
    else:
        out, m = VARIATIONS[variation](gray, mask, level, np.random.default_rng(image_seed(image, variation, level)))
    return upload_bytes(out, variation, level, image), m


def varied_upload(item, variation: str | None, level: int = 0):
    """One item under one variation as the upload loader reads it (bytes -> ``imageio.load_image``), and its
    ground-truth mask moved with the pixels."""
    from pipeline.imageio import load_image

    data, mask = varied_bytes(item.gray, item.mask, item.image, variation, level)
    return load_image(data, name=item.image), mask


def upload_bytes(pixels: np.ndarray, variation: str | None, level: int = 0, image: str = "image") -> bytes:
    """The file a scanner would hand over for ``pixels`` (gray or RGB): JPEG at the strength's quality for
    ``jpeg``, else PNG."""
    bgr = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR) if pixels.ndim == 3 else pixels
    if variation == "jpeg":
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY[level]])
    else:
        ok, buf = cv2.imencode(".png", bgr)
    if not ok:
        raise RuntimeError(f"could not encode {image} under {variation}")
    return buf.tobytes()


def shifted_conditions(image: str, per_image: int) -> list[tuple[str, int]]:
    """``per_image`` distinct (variation, strength) display variations for one image, drawn with a seed fixed by
    the image's name (the scope gate's fit and the validation choices view each image this way)."""
    conditions = [(v, lv) for v in VARIATIONS for lv in range(len(STRENGTHS))]
    rng = np.random.default_rng(image_seed(image, "scope", per_image))
    return [conditions[i] for i in rng.choice(len(conditions), per_image, replace=False)]


class ShiftedViews(NamedTuple):
    """Images under display variations, loaded as uploads are: grays, colour versions (None for gray files), image
    names, condition names ("variation:strength") and the ground-truth masks moved with the pixels."""

    grays: list[np.ndarray]
    rgbs: list[np.ndarray | None]
    names: list[str]
    conds: list[str]
    masks: list[np.ndarray]


def shifted_views(items, per_image: int) -> ShiftedViews:
    """Each item under ``per_image`` display variations (``shifted_conditions``), loaded as an upload is
    (bytes -> loader)."""
    views = ShiftedViews([], [], [], [], [])
    for it in items:
        for variation, level in shifted_conditions(it.image, per_image):
            loaded, mask = varied_upload(it, variation, level)
            views.grays.append(loaded.pixels)
            views.rgbs.append(loaded.colour)
            views.names.append(it.image)
            views.conds.append(f"{variation}:{STRENGTHS[level]}")
            views.masks.append(mask)
    return views


def _score(rows: list[dict], classes: tuple[str, ...]) -> dict:
    """Per-condition figures for baseline and refined from per-image rows."""
    out: dict = {"images": len(rows)}
    y = np.array([r["label"] for r in rows])
    for key in ("baseline", "refined"):
        pred = np.array([r[key] for r in rows])
        s = {"accuracy": float((pred == y).mean()) if len(y) else None}
        for c in classes:
            sel = y == c
            s[f"{c}_recall"] = float((pred[sel] == c).mean()) if sel.any() else None
        normal = y == "normal"
        s["normal_to_malignant"] = float((pred[normal] == "malignant").mean()) if normal.any() else None
        out[key] = s
    lesion = [r["dice"] for r in rows if r["label"] != "normal"]
    normal_rows = [r for r in rows if r["label"] == "normal"]
    out["dice"] = float(np.mean(lesion)) if lesion else None
    out["normal_outlined"] = float(np.mean([r["outlined"] for r in normal_rows])) if normal_rows else None
    scoped = [r["in_scope"] for r in rows if r["in_scope"] is not None]
    out["scope_accepted"] = float(np.mean(scoped)) if scoped else None
    return out


def run_shift(predictor, datasets: dict[str, list], variations: list[str] | None = None, progress=None,
              lesion_free: bool = True) -> dict:
    """Score every dataset (name -> Items) clean and under each variation and strength, and (``lesion_free``) its
    lesion-free regions."""
    from pipeline.metrics import dice

    names = variations or list(VARIATIONS)
    conditions = [(None, 0)] + [(v, lv) for v in names for lv in range(len(STRENGTHS))]
    classes = tuple(predictor.classes)
    what = describe()
    result: dict = {"variations": {n: what[n] for n in names}, "strengths": list(STRENGTHS), "datasets": {}}
    if lesion_free:
        result["variations"][LESION_FREE] = LESION_FREE_WHAT
    regions = {ds: lesion_free_items(items, 1, REGION_SEED) if lesion_free else [] for ds, items in datasets.items()}
    total = sum(len(items) * len(conditions) + len(regions[ds]) for ds, items in datasets.items())
    done = 0

    def score(items: list, variation: str | None, level: int) -> dict:
        nonlocal done
        rows = []
        for it in items:
            loaded, truth = varied_upload(it, variation, level)
            p = predictor.predict(loaded.pixels, rgb=loaded.colour)
            rows.append({"label": classes[it.label], "baseline": p.baseline_label, "refined": p.label,
                         "dice": dice(p.mask, truth) if truth.any() else None, "outlined": bool(p.mask.any()),
                         "in_scope": p.in_scope})
            done += 1
            if progress:
                progress(done, total)
        return _score(rows, classes)

    for ds_name, items in datasets.items():
        per_condition = {("clean" if variation is None else f"{variation}:{STRENGTHS[level]}"):
                         score(items, variation, level) for variation, level in conditions}
        if regions[ds_name]:
            per_condition[LESION_FREE] = score(regions[ds_name], None, 0)
        result["datasets"][ds_name] = per_condition
    return result
