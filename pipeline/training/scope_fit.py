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
from pipeline.training.regions import lesion_free_items
from pipeline.training.shift import REGION_SEED, shifted_views

SHIFTED_PER_IMAGE = 2  # display variations per validation / test image (train: 1)


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


def _mammogram(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A mammogram-like view: a bright half-ellipse of smooth fibroglandular texture on black, a pectoral wedge."""
    h, w = shape
    img = np.zeros(shape, np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    inside = ((xx / (0.75 * w)) ** 2 + ((yy - h / 2) / (0.48 * h)) ** 2) <= 1
    tissue = _smooth_field(rng, shape, 1, int(rng.integers(6, 14)))[:, :, 0].astype(np.float32)
    img[inside] = 70 + 0.6 * tissue[inside]
    img[(xx < (0.35 * w) * (1 - yy / (0.45 * h))) & inside] = 215  # pectoral muscle
    img = cv2.GaussianBlur(img, (0, 0), 2) + rng.normal(0, 3, shape)
    return np.clip(img if rng.random() < 0.5 else img[:, ::-1], 0, 255).astype(np.uint8)


def _chest_xray(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A chest radiograph-like view: bright body, two dark lung fields, rib arcs, a bright spine."""
    h, w = shape
    img = np.full(shape, 185, np.float32)
    for cx in (0.3 * w, 0.7 * w):
        cv2.ellipse(img, (int(cx), int(0.48 * h)), (int(0.16 * w), int(0.33 * h)), 0, 0, 360, 60, -1)
    for k in range(9):
        y = int(0.2 * h + k * 0.07 * h)
        for side in (-1, 1):
            cv2.ellipse(img, (int(w / 2), y), (int(0.34 * w), int(0.06 * h)), 0, 180 if side < 0 else 0,
                        270 if side < 0 else 90, 140, 3)
    cv2.rectangle(img, (int(0.47 * w), 0), (int(0.53 * w), h), 225, -1)
    img = cv2.GaussianBlur(img, (0, 0), 4) + rng.normal(0, 4, shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _ct_slice(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """An axial CT-like slice: an oval body in a black field, fat ring, organs, a bright vertebra."""
    h, w = shape
    img = np.zeros(shape, np.float32)
    centre = (w // 2, h // 2)
    cv2.ellipse(img, centre, (int(0.42 * w), int(0.33 * h)), 0, 0, 360, 95, -1)
    cv2.ellipse(img, centre, (int(0.37 * w), int(0.28 * h)), 0, 0, 360, 125, -1)
    for _ in range(5):
        c = (int(rng.integers(0.3 * w, 0.7 * w)), int(rng.integers(0.35 * h, 0.6 * h)))
        cv2.ellipse(img, c, (int(rng.integers(15, 50)), int(rng.integers(15, 40))), float(rng.uniform(0, 180)),
                    0, 360, float(rng.uniform(100, 160)), -1)
    cv2.circle(img, (w // 2, int(0.68 * h)), int(0.05 * w), 250, -1)
    img = cv2.GaussianBlur(img, (0, 0), 1.5) + rng.normal(0, 5, shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _endoscopy(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """An endoscopy-like frame: pink-red mucosa in a round field on black, dark lumen, specular highlights."""
    h, w = shape
    base = _smooth_field(rng, shape, 1, int(rng.integers(4, 9)))[:, :, 0].astype(np.float32) / 255
    rgb = np.stack([150 + 90 * base, 60 + 60 * base, 55 + 50 * base], axis=2)
    cv2.circle(rgb, (int(rng.integers(0.3 * w, 0.7 * w)), int(rng.integers(0.3 * h, 0.7 * h))),
               int(0.12 * min(h, w)), (40, 10, 10), -1)
    for _ in range(6):
        cv2.circle(rgb, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(rng.integers(2, 7)), (255, 255, 250), -1)
    yy, xx = np.mgrid[0:h, 0:w]
    rgb[np.hypot(yy - h / 2, xx - w / 2) > 0.48 * min(h, w)] = 0
    return np.clip(cv2.GaussianBlur(rgb, (0, 0), 1.2), 0, 255).astype(np.uint8)


def _fundus(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A retina (fundus) photograph-like frame: an orange disc on black, a bright optic disc, dark vessels."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(yy - h / 2, xx - w / 2) / (0.47 * min(h, w))
    rgb = np.stack([200 - 60 * r, 95 - 35 * r, 30 - 10 * r], axis=2).astype(np.float32)
    disc = (int(0.65 * w), int(h / 2))
    cv2.circle(rgb, disc, int(0.07 * min(h, w)), (250, 220, 150), -1)
    for _ in range(8):
        angle = rng.uniform(0, 2 * np.pi)
        pts = [disc]
        for k in range(1, 6):
            angle += rng.normal(0, 0.25)
            pts.append((int(disc[0] + k * 0.09 * w * np.cos(angle)), int(disc[1] + k * 0.09 * h * np.sin(angle))))
        cv2.polylines(rgb, [np.array(pts, np.int32)], False, (120, 30, 20), int(rng.integers(2, 5)))
    rgb[r > 1] = 0
    return np.clip(cv2.GaussianBlur(rgb, (0, 0), 1.5), 0, 255).astype(np.uint8)


MODALITY_MAKERS = {"mammogram": _mammogram, "chest_xray": _chest_xray, "ct_slice": _ct_slice,
                   "endoscopy": _endoscopy, "fundus": _fundus}


def other_modalities_corpus(seed: int = 1, per_kind: int = 6) -> Iterator[tuple[str, np.ndarray]]:
    """Generated pictures of other imaging modalities (mammogram, chest X-ray, CT, endoscopy, fundus), the
    non-ultrasound DICOM sample slices pydicom ships (CT, MR) and, when the IDC pack is present (``IDC_DIR``),
    H&E histology tiles stitched from its test patches."""
    rng = np.random.default_rng(seed)
    shapes = [(480, 400), (512, 512), (420, 560)]
    for kind, make in MODALITY_MAKERS.items():
        for i in range(per_kind):
            yield f"{kind}_{i}", make(rng, shapes[i % len(shapes)])
    yield from _pydicom_samples()
    yield from _idc_tiles(rng, per_kind)


def _pydicom_samples() -> Iterator[tuple[str, np.ndarray]]:
    """pydicom's bundled sample files that are single-frame CT or MR slices, loaded as an upload would be."""
    try:
        from pydicom import dcmread
        from pydicom.data import get_testdata_file
    except ImportError:
        return
    from pipeline.imageio import load_image

    for name in ("CT_small.dcm", "MR_small.dcm", "examples_overlay.dcm"):
        try:
            path = get_testdata_file(name, download=False)
            if path is None or getattr(dcmread(path, stop_before_pixels=True), "Modality", "") == "US":
                continue
            img = load_image(path)
        except Exception:  # noqa: BLE001 - a sample this pydicom lacks or cannot decode is skipped
            continue
        gray = img.pixels
        if max(gray.shape) < 256:  # upload-sized: the small samples are 64-128 px
            f = 256 / max(gray.shape)
            gray = cv2.resize(gray, (round(gray.shape[1] * f), round(gray.shape[0] * f)), interpolation=cv2.INTER_CUBIC)
        yield f"pydicom:{name}", gray


def _idc_tiles(rng: np.random.Generator, n: int) -> Iterator[tuple[str, np.ndarray]]:
    """``n`` 4x4 mosaics (200x200 px) of the IDC pack's test patches, when the pack is present."""
    from pipeline import paths

    if not paths.idc_available():
        return
    from pipeline.data.idc import load_idc

    patches = load_idc().subset("test").images
    for i in range(n):
        pick = rng.choice(len(patches), 16, replace=False)
        rows = [np.concatenate(list(patches[pick[r * 4:(r + 1) * 4]]), axis=1) for r in range(4)]
        yield f"idc:he_tile_{i}", np.concatenate(rows, axis=0)


CORPUS_KINDS = {  # kind of picture by name prefix (packaged samples by file name)
    "mammogram": "mammogram", "chest_xray": "X-ray", "ct_slice": "CT / MRI slice", "pydicom:": "CT / MRI slice",
    "skimage:phantom": "CT / MRI slice", "endoscopy": "endoscopy", "fundus": "retina (fundus)",
    "skimage:retina": "retina (fundus)", "skimage:microaneurysms": "retina (fundus)", "idc:": "histology",
    "skimage:ihc": "histology", "skimage:cell": "microscopy", "skimage:hubble": "photo",
    "text_page": "document", "skimage:page": "document", "skimage:text": "document", "screenshot": "screenshot",
    "streamlit:": "screenshot / graphic", "skimage:logo": "screenshot / graphic",
    "smooth_": "photo", "skimage:": "photo",
}


def corpus_kind(name: str) -> str:
    """The kind of a corpus picture (mammogram, X-ray, CT / MRI slice, histology, document, photo...);
    generated noise, gradients, patterns and shapes are "synthetic pattern"."""
    return next((kind for prefix, kind in CORPUS_KINDS.items() if name.startswith(prefix)), "synthetic pattern")


def non_ultrasound_corpus(seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """Generated, other-modality and packaged non-ultrasound pictures (name, uint8 gray or RGB array)."""
    return list(generated_corpus(seed)) + list(other_modalities_corpus(seed + 1)) + list(packaged_corpus())


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
                     n_components: int = N_COMPONENTS, accept: float = ACCEPT_TARGET, say=print,
                     shifted_per_image: int = SHIFTED_PER_IMAGE) -> dict:
    """Fit the gate on BUSI + BUS-BRA train, clean, under display variations (``shifted_per_image`` per
    image, the shift benchmark's: tinted gray maps, pictograms, calipers, gain, padding...) and their lesion-free
    regions (normal tissue of every scanner, as a shallower depth or a zoom would show it; the benchmark's regions,
    ``regions.lesion_free_items``), set its threshold on both validation sets (clean and shifted alike; not on
    regions), evaluate on everything (clean, shifted and regions of every subset, per BUS-BRA scanner, per
    variation, the non-ultrasound corpus per kind), write the gate files and ``scope_metrics.json`` into
    ``models_dir``; return the metrics."""
    import time

    from pipeline.data import busbra
    from pipeline.data.items import load_busbra_items, load_items
    from pipeline.progress import printer

    sets: dict[tuple[str, str], _Set] = {}
    shifted: dict[tuple[str, str], _Set] = {}
    regions: dict[tuple[str, str], _Set] = {}
    index = busbra.read_index(busbra_root).set_index("image")
    for ds in ("busi", "busbra"):
        for subset in ("train", "val", "test"):
            items = load_items(busi_root, subset) if ds == "busi" else load_busbra_items(busbra_root, subset)
            title = f"{'BUSI' if ds == 'busi' else 'BUS-BRA'} {subset}"
            groups = [busbra.scanner(index.at[it.image, "device"]) for it in items] if ds == "busbra" else []
            f, st = _describe(predictor, [it.gray for it in items], progress=printer(title, 64))
            sets[ds, subset] = _Set(f, st, [it.image for it in items], groups)
            per = 1 if subset == "train" else shifted_per_image
            views = shifted_views(items, per)
            f, st = _describe(predictor, views.grays, views.rgbs, progress=printer(f"{title}, display variations", 64))
            shifted[ds, subset] = _Set(f, st, views.names, views.conds)
            cut = lesion_free_items(items, 1, REGION_SEED)
            f, st = _describe(predictor, [it.gray for it in cut], progress=printer(f"{title}, lesion-free regions", 64))
            regions[ds, subset] = _Set(f, st, [it.image for it in cut])

    fit_sets = [group[ds, "train"] for group in (sets, shifted, regions) for ds in ("busi", "busbra")]
    train = np.concatenate([x.features for x in fit_sets])
    n_regions = len(regions["busi", "train"].names) + len(regions["busbra", "train"].names)
    say(f"fitting on {len(train)} train views ({len(sets['busi', 'train'].names)} BUSI + "
        f"{len(sets['busbra', 'train'].names)} BUS-BRA images, each clean and under one display variation, and "
        f"{n_regions} lesion-free regions of their lesion frames), {n_components} PCA components")
    gate = ScopeGate.fit(train, n_components, FEATURE_LAYER)
    # threshold: the largest of the two datasets' `accept` quantiles over clean and shifted validation views
    quantiles = {}
    for ds in ("busi", "busbra"):
        views = (sets[ds, "val"], shifted[ds, "val"])
        dist = np.concatenate([gate.distance(v.features) for v in views])
        ok = np.array([refusal(x) is None for v in views for x in v.stats])
        quantiles[ds] = float(np.quantile(dist[ok], accept, method="higher"))
    gate.threshold = max(quantiles.values())
    say(f"threshold {gate.threshold:.3f} (validation {accept:.0%} quantiles, clean + shifted: "
        + ", ".join(f"{k} {v:.3f}" for k, v in quantiles.items()) + ")")

    def accepted(s: _Set) -> tuple[np.ndarray, dict]:
        """Which images of ``s`` pass, and the share entry (with how many a statistic refused)."""
        d = gate.distance(s.features) / gate.threshold
        reasons = [refusal(st) for st in s.stats]
        ok = np.array([r is None and x <= 1 for r, x in zip(reasons, d)])
        return ok, {**_share(ok), "refused_by_statistics": int(sum(r is not None for r in reasons))}

    metrics: dict = {"generated": today(), "accept_target_on_validation": accept, "threshold": gate.threshold,
                     "validation_quantiles": quantiles, "threshold_set_on": "clean and shifted validation views",
                     "shifted_views_per_image": {"train": 1, "val": shifted_per_image, "test": shifted_per_image},
                     "ultrasound": {}, "busbra_scanners": {}, "shifted": {}, "shifted_by_variation": {},
                     "lesion_free_regions": {}}
    for (ds, subset), s in sets.items():
        ok, entry = accepted(s)
        entry["refused_examples"] = [n for n, a in zip(s.names, ok) if not a][:10]
        metrics["ultrasound"].setdefault(ds, {})[subset] = entry
        if ds == "busbra":
            groups = np.array(s.groups)
            metrics["busbra_scanners"][subset] = {g: _share(ok[groups == g]) for g in sorted(set(s.groups))}
        v = shifted[ds, subset]
        v_ok, v_entry = accepted(v)
        metrics["shifted"].setdefault(ds, {})[subset] = v_entry
        if subset != "train":
            conds = np.array(v.groups)
            metrics["shifted_by_variation"].setdefault(ds, {})[subset] = {
                c: _share(v_ok[conds == c]) for c in sorted(set(v.groups))}
        r_entry = accepted(regions[ds, subset])[1]
        metrics["lesion_free_regions"].setdefault(ds, {})[subset] = r_entry
        say(f"{ds:>7} {subset:<5}: accepted {entry['accepted']}/{entry['n']} ({entry['share_accepted']:.1%}); "
            f"shifted views {v_entry['accepted']}/{v_entry['n']} ({v_entry['share_accepted']:.1%}); "
            f"lesion-free regions {r_entry['accepted']}/{r_entry['n']}")

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
    by_kind: dict = {}
    for (name, _), r in zip(corpus, refused):
        src = name.split(":", 1)[0] if ":" in name else "generated"
        for table, key in ((by_source, src), (by_kind, corpus_kind(name))):
            e = table.setdefault(key, {"n": 0, "refused": 0})
            e["n"] += 1
            e["refused"] += int(r)
    for e in (*by_source.values(), *by_kind.values()):
        e["share_refused"] = round(e["refused"] / e["n"], 4)
    metrics["non_ultrasound"] = {
        "n": len(corpus), "refused": int(refused.sum()), "share_refused": round(float(refused.mean()), 4),
        "refused_by_statistics": int(sum(r is not None for r in reasons)),
        "refused_by_distance_only": int(sum(r is None and x > 1 for r, x in zip(reasons, dist))),
        "by_source": by_source,
        "by_kind": by_kind,
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
              "busi_val": len(sets["busi", "val"].names), "busbra_val": len(sets["busbra", "val"].names),
              "shifted_train_views": len(shifted["busi", "train"].names) + len(shifted["busbra", "train"].names),
              "shifted_val_views": len(shifted["busi", "val"].names) + len(shifted["busbra", "val"].names),
              "lesion_free_train_regions": n_regions}
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
