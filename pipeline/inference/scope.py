"""Scope gate: "does this look like a breast-ultrasound frame?", with a score and a readable reason.

Two parts, both cheap (no extra network pass):

1. Image statistics on the uint8 input, before any model: share of strongly coloured pixels (when the
   input was colour), how uniform the image is, how much of it is pure white. These give *hard refusals*
   with plain reasons ("colour photograph: 62% of pixels are strongly coloured"), and the annotation /
   Doppler *warnings*.
2. A distance model on the baseline classifier's pooled encoder features (``avg_pool``, 1280 values,
   flip-averaged like the classifier's own answer, taken from the same network call): standardised,
   projected by PCA, Mahalanobis distance in the PCA space plus the (scaled) residual off it. Fitted on
   BUSI train + BUS-BRA train images; the threshold is the distance accepting ``ACCEPT_TARGET`` of the
   validation images of both datasets.

``scope_score`` is the distance divided by the threshold: ``<= 1`` is in scope. Refusal by a statistic
sets the score to at least ``REFUSED_SCORE``. Files: ``models/scope_gate.npz`` (arrays) and
``models/scope_gate.json`` (threshold, layer, dims, counts, date); ``python -m pipeline scope fit`` writes
them and ``models/scope_metrics.json``.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from pipeline.inference.modality import ultrasound_redirect

# The baseline classifier's block-19 output (7x7x208), averaged over space: taken from the same network pass as
# the label. Its final pooled features (avg_pool) told pictures from ultrasound worse once the classifier trained
# on two hospitals (97 of 111 non-ultrasound pictures refused at best, against 111 with this layer).
FEATURE_LAYER = "block19_add"
GATE_NPZ = "scope_gate.npz"
GATE_JSON = "scope_gate.json"
METRICS_JSON = "scope_metrics.json"
GATE_VERSION = 1
N_COMPONENTS = 48
MAHA_WEIGHT = 0.2  # share of the in-subspace Mahalanobis term in the distance (the rest: the residual)
ACCEPT_TARGET = 0.99  # share of validation ultrasound images the threshold accepts
REFUSED_SCORE = 2.0  # score reported (at least) when a statistic refuses the image
STATS_SIDE = 256  # statistics are computed on the image shrunk to this longer side

# --- statistics thresholds (hard refusals) ------------------------------------------------------------
COLOUR_SAT_MIN, COLOUR_VALUE_MIN = 0.5, 64  # as pipeline.imageio's Doppler warning
COLOUR_REFUSE = 0.30  # more than this share of strongly coloured pixels: a colour picture
UNIFORM_STD = 4.0  # grey-level standard deviation below this: a uniform image
UNIFORM_PEAK = 0.97  # or more than this share of pixels within +-4 of the most common grey level
WHITE_LEVEL, WHITE_REFUSE = 235, 0.45  # more than 45% near-white pixels: a page / screenshot, not a scan
NOISE_CORR = 0.5  # neighbouring-pixel correlation below this: random noise (speckle is grainy: >= 0.89 seen)
# --- warnings -------------------------------------------------------------------------------------------
ANNOTATION_WARN = 0.15  # share of the frame covered by burned-in marks (text, calipers, colour boxes)


@dataclass(frozen=True)
class ImageStats:
    """Cheap statistics of one image (shares are of all pixels)."""

    colour_share: float | None  # strongly coloured pixels (None for a grayscale input)
    std: float  # grey-level standard deviation
    peak_share: float  # pixels within +-4 grey levels of the most common level
    white_share: float  # pixels >= WHITE_LEVEL
    black_share: float  # pixels <= 8
    annotation_share: float  # small bright/coloured marks with sharp edges (text, calipers, boxes)
    neighbour_corr: float  # correlation of horizontally adjacent pixels (speckle grain makes it high)

    def to_dict(self) -> dict:
        return {k: (None if v is None else round(float(v), 4)) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class ScopeResult:
    """The gate's answer for one image."""

    in_scope: bool
    score: float  # distance / threshold (<= 1 accepted); >= REFUSED_SCORE when a statistic refused
    distance: float
    reason: str | None
    stats: ImageStats
    warnings: tuple[str, ...] = ()


def _shrink(a: np.ndarray, side: int = STATS_SIDE) -> np.ndarray:
    h, w = a.shape[:2]
    s = side / max(h, w)
    if s >= 1:
        return a
    return cv2.resize(a, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def colour_share(rgb: np.ndarray) -> float:
    """Share of strongly saturated, not dark pixels (HSV saturation >= 0.5 and value >= 64)."""
    mx = rgb.max(axis=2).astype(np.int16)
    mn = rgb.min(axis=2).astype(np.int16)
    strong = ((mx - mn) >= COLOUR_SAT_MIN * mx) & (mx >= COLOUR_VALUE_MIN)
    return float(np.count_nonzero(strong)) / strong.size


def _annotation_share(g: np.ndarray, rgb: np.ndarray | None) -> float:
    """Share of pixels in thin, high-contrast bright marks (burned-in text, calipers, rulers, colour boxes).

    A white top-hat keeps bright structures narrower than ~5 px; speckle is low-contrast at that scale, so
    only marks far brighter than their surroundings (>= 60 grey levels) count, dilated to cover the glyphs.
    """
    tophat = cv2.morphologyEx(g, cv2.MORPH_TOPHAT, cv2.getStructuringElement(cv2.MORPH_RECT, (5, 5)))
    marks = (tophat >= 60) & (g >= 180)
    if rgb is not None:
        mx = rgb.max(axis=2).astype(np.int16)
        mn = rgb.min(axis=2).astype(np.int16)
        marks |= ((mx - mn) >= COLOUR_SAT_MIN * mx) & (mx >= COLOUR_VALUE_MIN)
    marks = cv2.dilate(marks.astype(np.uint8), np.ones((3, 3), np.uint8))
    return float(marks.mean())


def image_stats(gray: np.ndarray, rgb: np.ndarray | None = None) -> ImageStats:
    """Statistics of a uint8 grayscale image (and its RGB version when the input was colour)."""
    g = _shrink(np.asarray(gray, np.uint8))
    c = None
    if rgb is not None:
        rgb = _shrink(np.ascontiguousarray(rgb[:, :, :3], np.uint8))
        if rgb.shape[:2] != g.shape:
            rgb = cv2.resize(rgb, (g.shape[1], g.shape[0]), interpolation=cv2.INTER_AREA)
        c = colour_share(rgb)
        if c == 0.0 and np.array_equal(rgb[:, :, 0], rgb[:, :, 1]) and np.array_equal(rgb[:, :, 1], rgb[:, :, 2]):
            rgb = None  # a gray image stored as RGB
    n = g.size
    hist = np.bincount(g.ravel(), minlength=256).astype(np.float64)
    peak = int(hist.argmax())
    levels = np.arange(256, dtype=np.float64)
    mean = float((hist * levels).sum() / n)
    return ImageStats(
        colour_share=c,
        std=float(np.sqrt(max(0.0, (hist * (levels - mean) ** 2).sum() / n))),
        peak_share=float(hist[max(0, peak - 4): peak + 5].sum() / n),
        white_share=float(hist[WHITE_LEVEL:].sum() / n),
        black_share=float(hist[:9].sum() / n),
        annotation_share=_annotation_share(g, rgb),
        neighbour_corr=_neighbour_corr(g),
    )


def _neighbour_corr(g: np.ndarray) -> float:
    a, b = g[:, :-1].astype(np.float32).ravel(), g[:, 1:].astype(np.float32).ravel()
    sa, sb = float(a.std()), float(b.std())
    if sa < 1e-6 or sb < 1e-6:
        return 1.0
    return float(((a - a.mean()) * (b - b.mean())).mean() / (sa * sb))


def refusal(stats: ImageStats) -> str | None:
    """A readable reason when the statistics alone rule the image out, else None."""
    if stats.colour_share is not None and stats.colour_share > COLOUR_REFUSE:
        return (f"colour picture: {stats.colour_share:.0%} of pixels are strongly coloured "
                "(breast ultrasound is grayscale, with at most a small colour-Doppler box)")
    if stats.std < UNIFORM_STD or stats.peak_share > UNIFORM_PEAK:
        return (f"almost no texture: uniform image ({stats.peak_share:.0%} of pixels share one grey level, "
                f"standard deviation {stats.std:.1f})")
    if stats.neighbour_corr < NOISE_CORR:
        return (f"no ultrasound speckle: neighbouring pixels are almost unrelated (correlation "
                f"{stats.neighbour_corr:.2f}), like random noise or fine print")
    if stats.white_share > WHITE_REFUSE:
        return (f"mostly white: {stats.white_share:.0%} of pixels are near white, like a document, "
                "drawing or screenshot (ultrasound frames are mostly dark)")
    return None


def content_warnings(stats: ImageStats) -> list[str]:
    """Warnings for images carrying many burned-in marks (colour Doppler is warned about by
    ``pipeline.imageio`` when the file is loaded, so not repeated here)."""
    out = []
    if stats.annotation_share > ANNOTATION_WARN:
        out.append(f"burned-in annotations (text, calipers, markers) cover about {stats.annotation_share:.0%} of "
                   "the frame; they can mislead the models.")
    return out


# --- the distance model ----------------------------------------------------------------------------------
def _unit(features: np.ndarray) -> np.ndarray:
    f = np.atleast_2d(np.asarray(features, np.float64))
    return f / np.linalg.norm(f, axis=1, keepdims=True).clip(1e-9)


@dataclass
class ScopeGate:
    """Distance of L2-normalised pooled features to the ultrasound subspace found by PCA.

    distance^2 = (1 - w) * residual^2 / mean train residual^2 + w * Mahalanobis^2 in the subspace / k.
    Off-subspace residual carries most of the signal: pictures of other things point elsewhere in
    feature space (per-dimension standardisation or full whitening hid them; tried and rejected).
    """

    mean: np.ndarray  # (d,) mean of the unit-length features
    components: np.ndarray  # (k, d) PCA axes
    variances: np.ndarray  # (k,) variance along each axis
    residual_scale: float  # mean squared residual off the subspace on the fit set
    threshold: float
    feature_layer: str = FEATURE_LAYER
    maha_weight: float = MAHA_WEIGHT
    info: dict = field(default_factory=dict)

    # -- scoring
    def distance(self, features: np.ndarray) -> np.ndarray:
        """Distance of each feature row to the fit set (about 1 on the fit images)."""
        z = _unit(features) - self.mean
        proj = z @ self.components.T
        resid = ((z ** 2).sum(axis=1) - (proj ** 2).sum(axis=1)).clip(min=0) / self.residual_scale
        maha = (proj ** 2 / self.variances).sum(axis=1) / len(self.variances)
        return np.sqrt((1 - self.maha_weight) * resid + self.maha_weight * maha)

    def check(self, gray: np.ndarray, features: np.ndarray, rgb: np.ndarray | None = None) -> ScopeResult:
        """The answer for one image from its uint8 gray (and RGB) pixels and its pooled features."""
        stats = image_stats(gray, rgb)
        dist = float(self.distance(features)[0])
        score = dist / self.threshold
        reason = ultrasound_redirect(rgb) or refusal(stats)  # an H&E picture is sent to the IDC page
        if reason is not None:
            score = max(score, REFUSED_SCORE)
        elif score > 1:
            reason = (f"unlike the breast-ultrasound frames the models were trained on (distance {score:.1f}x "
                      "the acceptance limit set on validation images)")
        warnings = tuple(content_warnings(stats)) if reason is None else ()  # a refusal says enough
        return ScopeResult(reason is None, float(score), dist, reason, stats, warnings)

    # -- fitting / files
    @classmethod
    def fit(cls, features: np.ndarray, n_components: int = N_COMPONENTS, layer: str = FEATURE_LAYER) -> ScopeGate:
        """Fit on in-scope features (threshold left at 1 until :meth:`calibrate`)."""
        u = _unit(features)
        mean = u.mean(axis=0)
        z = u - mean
        _, s, vt = np.linalg.svd(z, full_matrices=False)
        k = min(n_components, len(vt))
        variances = (s[:k] ** 2) / max(len(u) - 1, 1)
        proj = z @ vt[:k].T
        residual_scale = float(((z ** 2).sum(axis=1) - (proj ** 2).sum(axis=1)).clip(min=0).mean())
        return cls(mean, vt[:k].copy(), variances, residual_scale, 1.0, layer)

    def calibrate(self, features: np.ndarray, accept: float = ACCEPT_TARGET) -> float:
        """Set the threshold to the ``accept`` quantile of the distances of in-scope validation features."""
        self.threshold = float(np.quantile(self.distance(features), accept, method="higher"))
        return self.threshold

    def save(self, folder: str | Path, info: dict | None = None) -> None:
        folder = Path(folder)
        self.info = {**self.info, **(info or {})}
        np.savez_compressed(folder / GATE_NPZ, mean=self.mean.astype(np.float32),
                            components=self.components.astype(np.float32), variances=self.variances)
        meta = {"version": GATE_VERSION, "feature_layer": self.feature_layer, "threshold": self.threshold,
                "residual_scale": self.residual_scale, "maha_weight": self.maha_weight, "feature_dims": int(self.mean.shape[0]),
                "pca_components": int(self.components.shape[0]),
                "refusal_rules": {"colour_share_above": COLOUR_REFUSE, "std_below": UNIFORM_STD,
                                  "peak_share_above": UNIFORM_PEAK, "white_share_above": WHITE_REFUSE,
                                  "neighbour_correlation_below": NOISE_CORR},
                **self.info}
        (folder / GATE_JSON).write_text(json.dumps(meta, indent=2) + "\n")

    @classmethod
    def load(cls, folder: str | Path) -> ScopeGate | None:
        """The gate saved in ``folder``, or None when its files are absent."""
        folder = Path(folder)
        npz, meta_file = folder / GATE_NPZ, folder / GATE_JSON
        if not (npz.is_file() and meta_file.is_file()):
            return None
        from pipeline.errors import ModelLoadError

        try:
            meta = json.loads(meta_file.read_text())
            with np.load(npz) as z:
                arrays = {k: z[k].astype(np.float64) for k in ("mean", "components", "variances")}
            info = {k: v for k, v in meta.items()
                    if k not in ("feature_layer", "threshold", "residual_scale", "maha_weight")}
            return cls(arrays["mean"], arrays["components"], arrays["variances"], float(meta["residual_scale"]),
                       float(meta["threshold"]), meta["feature_layer"], float(meta["maha_weight"]), info)
        except Exception as exc:  # noqa: BLE001 - any broken file is one clear error
            raise ModelLoadError(f"scope gate files in {folder} cannot be read ({exc}); refit them with "
                                 "`python -m pipeline scope fit` or delete them") from exc


def today() -> str:
    return dt.date.today().isoformat()


# --- a corpus of pictures that are not breast ultrasound -------------------------------------------------
def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], channels: int, cells: int) -> np.ndarray:
    small = rng.uniform(0, 255, (cells, cells, channels)).astype(np.float32)
    big = cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
    return np.clip(big.reshape(shape[0], shape[1], channels), 0, 255).astype(np.uint8)


def _text_page(rng: np.random.Generator, shape: tuple[int, int], dark: bool) -> np.ndarray:
    h, w = shape
    img = np.full((h, w), 20 if dark else 245, np.uint8)
    words = ["patient", "report", "the", "lorem", "ipsum", "dolor", "result", "2024", "total", "page", "notes"]
    y = 30
    while y < h - 10:
        line = " ".join(rng.choice(words, rng.integers(3, 9)))
        cv2.putText(img, line, (int(rng.integers(5, 30)), y), cv2.FONT_HERSHEY_SIMPLEX,
                    float(rng.uniform(0.5, 0.9)), 230 if dark else 15, 1, cv2.LINE_AA)
        y += int(rng.integers(22, 36))
    return img


def generated_corpus(seed: int = 0) -> Iterator[tuple[str, np.ndarray]]:
    """Synthetic non-ultrasound pictures (uint8 gray or RGB): noise, gradients, flat fields, patterns,
    text pages, coloured shapes, smooth colour "photos", screenshots."""
    rng = np.random.default_rng(seed)
    shapes = [(360, 480), (480, 640), (300, 300), (512, 384)]
    for i, shape in enumerate(shapes):
        h, w = shape
        yield f"uniform_noise_{i}", rng.integers(0, 256, shape, dtype=np.uint8)
        yield f"gaussian_noise_{i}", np.clip(rng.normal(128, 40, shape), 0, 255).astype(np.uint8)
        yield f"colour_noise_{i}", rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        yield f"h_gradient_{i}", np.tile(np.linspace(0, 255, w, dtype=np.float32), (h, 1)).astype(np.uint8)
        yy, xx = np.mgrid[0:h, 0:w]
        yield f"radial_gradient_{i}", (255 * np.hypot(yy - h / 2, xx - w / 2) / np.hypot(h / 2, w / 2)).astype(np.uint8)
        yield f"black_{i}", np.zeros(shape, np.uint8)
        yield f"white_{i}", np.full(shape, 255, np.uint8)
        yield f"gray_{i}", np.full(shape, int(rng.integers(30, 220)), np.uint8)
        cell = int(rng.integers(8, 64))
        yield f"checkerboard_{i}", ((((yy // cell) + (xx // cell)) % 2) * 255).astype(np.uint8)
        yield f"stripes_{i}", ((np.sin(xx / rng.uniform(2, 12)) > 0) * 200 + 30).astype(np.uint8)
        yield f"text_page_{i}", _text_page(rng, shape, dark=False)
        yield f"text_page_dark_{i}", _text_page(rng, shape, dark=True)
        shapes_img = np.full((h, w, 3), rng.integers(0, 256, 3), np.uint8)
        for _ in range(12):
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            if rng.random() < 0.5:
                cv2.circle(shapes_img, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(rng.integers(10, 80)),
                           colour, -1)
            else:
                p = rng.integers(0, [w, h], (2, 2))
                cv2.rectangle(shapes_img, tuple(int(v) for v in p[0]), tuple(int(v) for v in p[1]), colour, -1)
        yield f"colour_shapes_{i}", shapes_img
        yield f"gray_shapes_{i}", cv2.cvtColor(shapes_img, cv2.COLOR_RGB2GRAY)
        photo = _smooth_field(rng, shape, 3, int(rng.integers(3, 8)))
        photo = np.clip(photo.astype(np.int16) + rng.normal(0, 6, photo.shape), 0, 255).astype(np.uint8)
        yield f"smooth_colour_photo_{i}", photo
        yield f"smooth_gray_photo_{i}", cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
        shot = np.full((h, w, 3), 240, np.uint8)  # a "screenshot": title bar, panels, buttons, text
        cv2.rectangle(shot, (0, 0), (w, 28), (40, 70, 160), -1)
        for k in range(4):
            x0 = int(rng.integers(10, w // 2))
            y0 = int(rng.integers(40, h - 60))
            cv2.rectangle(shot, (x0, y0), (x0 + int(rng.integers(60, 200)), y0 + 40), (200, 200, 210), -1)
            cv2.putText(shot, f"Button {k}", (x0 + 5, y0 + 25), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (20, 20, 20), 1)
        yield f"screenshot_{i}", shot


def packaged_corpus() -> Iterator[tuple[str, np.ndarray]]:
    """Real pictures shipped by installed packages (scikit-image's sample images, streamlit's assets).

    Yields nothing for a package that is absent.
    """
    from pipeline.imageio import load_image

    folders = []
    try:
        import skimage.data

        folders.append(("skimage", Path(skimage.data.__file__).parent))
    except ImportError:
        pass
    spec = importlib.util.find_spec("streamlit")  # its bundled images, found without importing it
    if spec is not None and spec.origin:
        folders.append(("streamlit", Path(spec.origin).parent / "static" / "static" / "media"))
    for tag, folder in folders:
        for path in sorted(folder.glob("*")):
            if path.suffix.lower() not in (".png", ".jpg", ".jpeg") or path.stat().st_size < 3000:
                continue
            try:
                img = load_image(path)
            except Exception:  # noqa: BLE001 - multi-frame or unusual samples are skipped
                continue
            yield f"{tag}:{path.name}", np.asarray(img.rgb if img.rgb.shape[2] == 3 else img.pixels)
        if tag == "skimage":
            faces = folder / "lfw_subset.npy"
            if faces.is_file():
                arr = np.load(faces)
                for j in range(0, len(arr), 20):  # 10 small grayscale faces, upscaled
                    face = (np.clip(arr[j], 0, 1) * 255).astype(np.uint8)
                    yield f"skimage:lfw_face_{j}", cv2.resize(face, (200, 200), interpolation=cv2.INTER_CUBIC)


def non_ultrasound_corpus(seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """Generated plus packaged non-ultrasound pictures (name, uint8 gray or RGB array)."""
    return list(generated_corpus(seed)) + list(packaged_corpus())


# --- fitting and evaluation (``python -m pipeline scope fit``) -------------------------------------------
@dataclass
class _Set:
    """Features and statistics of one group of images."""

    features: np.ndarray
    stats: list[ImageStats]
    names: list[str]
    groups: list[str] = field(default_factory=list)  # e.g. BUS-BRA scanner


def _share(flags: np.ndarray) -> dict:
    flags = np.asarray(flags, bool)
    return {"n": int(flags.size), "accepted": int(flags.sum()),
            "share_accepted": round(float(flags.mean()), 4) if flags.size else None}


def _describe(predictor, grays: list[np.ndarray], rgbs: list[np.ndarray | None] | None = None, progress=None,
              layer: str = FEATURE_LAYER) -> tuple:
    feats, stats = [], []
    for i in range(0, len(grays), 32):
        chunk = grays[i:i + 32]
        feats.append(predictor.baseline_features(chunk, layer)[0])
        stats += [image_stats(g, None if rgbs is None else rgbs[i + j]) for j, g in enumerate(chunk)]
        if progress:
            progress(min(i + 32, len(grays)), len(grays))
    return np.concatenate(feats), stats


def fit_and_evaluate(predictor, busi_root: str | Path, busbra_root: str | Path, models_dir: str | Path,
                     n_components: int = N_COMPONENTS, accept: float = ACCEPT_TARGET, say=print) -> dict:
    """Fit the gate on BUSI + BUS-BRA train, set its threshold on both validation sets, evaluate on
    everything (test sets, per BUS-BRA scanner, the non-ultrasound corpus), write the gate files and
    ``scope_metrics.json`` into ``models_dir``; return the metrics."""
    import time

    from pipeline.data import busbra
    from pipeline.data.items import load_items
    from pipeline.progress import printer

    sets: dict[tuple[str, str], _Set] = {}
    for subset in ("train", "val", "test"):
        items = load_items(busi_root, subset)
        f, s = _describe(predictor, [it.gray for it in items], progress=printer(f"BUSI {subset}", 64))
        sets["busi", subset] = _Set(f, s, [it.image for it in items])
    index = busbra.read_index(busbra_root)
    for subset in ("train", "val", "test"):
        rows = index[index["subset"] == subset]
        grays = [busbra.load_sample(r)[0] for _, r in rows.iterrows()]
        f, s = _describe(predictor, grays, progress=printer(f"BUS-BRA {subset}", 64))
        sets["busbra", subset] = _Set(f, s, list(rows["image"]), [busbra.scanner(d) for d in rows["device"]])

    train = np.concatenate([sets["busi", "train"].features, sets["busbra", "train"].features])
    say(f"fitting on {len(train)} train images ({len(sets['busi', 'train'].names)} BUSI + "
        f"{len(sets['busbra', 'train'].names)} BUS-BRA), {n_components} PCA components")
    gate = ScopeGate.fit(train, n_components, FEATURE_LAYER)
    # threshold: the largest of the two datasets' `accept` quantiles, so each validation set is >= accept
    quantiles = {}
    for ds in ("busi", "busbra"):
        v = sets[ds, "val"]
        ok = np.array([refusal(s) is None for s in v.stats])
        quantiles[ds] = float(np.quantile(gate.distance(v.features)[ok], accept, method="higher"))
    gate.threshold = max(quantiles.values())
    say(f"threshold {gate.threshold:.3f} (validation {accept:.0%} quantiles: "
        + ", ".join(f"{k} {v:.3f}" for k, v in quantiles.items()) + ")")

    def accepted(s: _Set, rgbs=None) -> tuple[np.ndarray, list[str | None]]:
        d = gate.distance(s.features) / gate.threshold
        reasons = [refusal(st) for st in s.stats]
        return np.array([r is None and x <= 1 for r, x in zip(reasons, d)]), reasons

    metrics: dict = {"generated": today(), "accept_target_on_validation": accept, "threshold": gate.threshold,
                     "validation_quantiles": quantiles, "ultrasound": {}, "busbra_scanners": {}}
    for (ds, subset), s in sets.items():
        ok, reasons = accepted(s)
        entry = _share(ok)
        entry["refused_by_statistics"] = int(sum(r is not None for r in reasons))
        entry["refused_examples"] = [n for n, a in zip(s.names, ok) if not a][:10]
        metrics["ultrasound"].setdefault(ds, {})[subset] = entry
        if ds == "busbra":
            per = {}
            for g in sorted(set(s.groups)):
                per[g] = _share(ok[np.array(s.groups) == g])
            metrics["busbra_scanners"][subset] = per
        say(f"{ds:>7} {subset:<5}: accepted {entry['accepted']}/{entry['n']} ({entry['share_accepted']:.1%})")

    say("non-ultrasound corpus (generated + packaged pictures)…")
    corpus = non_ultrasound_corpus()
    from pipeline import preprocess

    grays = [preprocess.to_gray(a) for _, a in corpus]
    rgbs = [a if a.ndim == 3 else None for _, a in corpus]
    feats, stats = _describe(predictor, grays, rgbs)
    dist = gate.distance(feats) / gate.threshold
    reasons = [refusal(st) for st in stats]
    refused = np.array([r is not None or x > 1 for r, x in zip(reasons, dist)])
    by_source: dict = {}
    for (name, _), r in zip(corpus, refused):
        src = name.split(":", 1)[0] if ":" in name else "generated"
        e = by_source.setdefault(src, {"n": 0, "refused": 0})
        e["n"] += 1
        e["refused"] += int(r)
    for e in by_source.values():
        e["share_refused"] = round(e["refused"] / e["n"], 4)
    metrics["non_ultrasound"] = {
        "n": len(corpus), "refused": int(refused.sum()), "share_refused": round(float(refused.mean()), 4),
        "refused_by_statistics": int(sum(r is not None for r in reasons)),
        "refused_by_distance_only": int(sum(r is None and x > 1 for r, x in zip(reasons, dist))),
        "by_source": by_source,
        "accepted": [n for (n, _), r in zip(corpus, refused) if not r],
    }
    say(f"non-ultrasound: refused {refused.sum()}/{len(corpus)} ({refused.mean():.1%}); accepted: "
        + (", ".join(metrics["non_ultrasound"]["accepted"]) or "none"))

    # the gate's own cost per image (statistics + distance; the features come from the classifier's pass)
    gray_us, f_us, times = load_items(busi_root, "test", limit=3)[0].gray, sets["busi", "test"].features[:1], []
    for _ in range(30):
        t = time.perf_counter()
        gate.check(gray_us, f_us)
        times.append((time.perf_counter() - t) * 1e3)
    metrics["gate_check_ms_median"] = round(float(np.median(times)), 2)

    counts = {"busi_train": len(sets["busi", "train"].names), "busbra_train": len(sets["busbra", "train"].names),
              "busi_val": len(sets["busi", "val"].names), "busbra_val": len(sets["busbra", "val"].names)}
    gate.save(models_dir, {"fitted_on": counts, "fitted": today(), "accept_target_on_validation": accept,
                           "distance": ("sqrt((1 - w) * residual^2 / mean train residual^2 + w * Mahalanobis^2 in the PCA "
                                        "space / k), on L2-normalised features"),
                           "score": "distance / threshold; <= 1 in scope"})
    metrics["gate"] = {"feature_layer": gate.feature_layer, "feature_dims": int(gate.mean.shape[0]),
                       "pca_components": int(gate.components.shape[0]), "fitted_on": counts}
    Path(models_dir, METRICS_JSON).write_text(json.dumps(metrics, indent=2) + "\n")
    say(f"wrote {Path(models_dir, GATE_NPZ)}, {Path(models_dir, GATE_JSON)} and {Path(models_dir, METRICS_JSON)}")
    return metrics
