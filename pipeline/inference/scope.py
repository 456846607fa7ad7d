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
``models/scope_gate.json`` (threshold, layer, dims, counts, date); ``python -m pipeline scope fit``
(``pipeline.training.scope_fit``) writes them and ``models/scope_metrics.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from pipeline.imageio import strong_colour
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
    """Share of strongly saturated, not dark pixels (``pipeline.imageio.strong_colour``)."""
    strong = strong_colour(rgb)
    return float(np.count_nonzero(strong)) / strong.size


def _annotation_share(g: np.ndarray, rgb: np.ndarray | None) -> float:
    """Share of pixels in thin, high-contrast bright marks (burned-in text, calipers, rulers, colour boxes).

    A white top-hat keeps bright structures narrower than ~5 px; speckle is low-contrast at that scale, so
    only marks far brighter than their surroundings (>= 60 grey levels) count, dilated to cover the glyphs.
    """
    tophat = cv2.morphologyEx(g, cv2.MORPH_TOPHAT, cv2.getStructuringElement(cv2.MORPH_RECT, (5, 5)))
    marks = (tophat >= 60) & (g >= 180)
    if rgb is not None:
        marks |= strong_colour(rgb)
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
        """Fit on in-scope features (threshold left at 1; ``pipeline.training.scope_fit`` sets it on validation)."""
        u = _unit(features)
        mean = u.mean(axis=0)
        z = u - mean
        _, s, vt = np.linalg.svd(z, full_matrices=False)
        k = min(n_components, len(vt))
        variances = (s[:k] ** 2) / max(len(u) - 1, 1)
        proj = z @ vt[:k].T
        residual_scale = float(((z ** 2).sum(axis=1) - (proj ** 2).sum(axis=1)).clip(min=0).mean())
        return cls(mean, vt[:k].copy(), variances, residual_scale, 1.0, layer)

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
