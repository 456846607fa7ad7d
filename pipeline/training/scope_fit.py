"""Fitting the scope gate (``python -m pipeline scope fit``) and the non-ultrasound picture corpus it is judged on.

The gate's runtime (statistics, distance, files) is ``pipeline.inference.scope``; this fits it on BUSI + BUS-BRA
train through the Predictor's baseline features, sets its threshold on both validation sets and measures it.
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

from pipeline.inference.bundle import record_files
from pipeline.inference.scope import (
    ACCEPT_TARGET,
    FEATURE_LAYER,
    GATE_JSON,
    GATE_NPZ,
    METRICS_JSON,
    N_COMPONENTS,
    ImageStats,
    ScopeGate,
    image_stats,
    refusal,
)


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

    def accepted(s: _Set) -> tuple[np.ndarray, list[str | None]]:
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
    record_files(models_dir, [GATE_NPZ, GATE_JSON])
    Path(models_dir, METRICS_JSON).write_text(json.dumps(metrics, indent=2) + "\n")
    say(f"wrote {Path(models_dir, GATE_NPZ)}, {Path(models_dir, GATE_JSON)} and {Path(models_dir, METRICS_JSON)}")
    return metrics
