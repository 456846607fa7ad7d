"""The predict contract, determinism, concurrency and the committed models' recorded accuracy."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline import paths
from pipeline.cli.predict import run
from pipeline.config import CLASS_NAMES, model_path
from pipeline.errors import ModelLoadError
from pipeline.inference.bundle import record_files
from pipeline.inference.predictor import Predictor

MODELS = paths.models_dir()
needs_models = pytest.mark.skipif(not model_path("seg", MODELS).is_file(),
                                  reason=f"trained models not found in {MODELS}")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def test_images(request) -> list[Path]:
    root = request.getfixturevalue("busi_dir")
    from pipeline.data.split import read_split

    split = read_split(paths.SPLIT_CSV)
    names = split[split["subset"] == "test"].groupby("label").head(2)["image"]
    return [root / n for n in names]


def _check_record(record: dict, image: Path, out: Path) -> None:
    assert set(record) >= {"image", "label", "probabilities", "baseline", "mask", "lesion_fraction", "ms",
                           "measurements", "warnings"}
    assert record["measurements"]["area_px"] == int((cv2.imread(record["mask"], cv2.IMREAD_UNCHANGED) > 0).sum())
    assert record["label"] in CLASS_NAMES and record["baseline"]["label"] in CLASS_NAMES
    for probs in (record["probabilities"], record["baseline"]["probabilities"]):
        assert set(probs) == set(CLASS_NAMES)
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
    mask = cv2.imread(record["mask"], cv2.IMREAD_UNCHANGED)
    src = cv2.imread(str(image), cv2.IMREAD_UNCHANGED)
    assert mask.shape[:2] == src.shape[:2]
    assert set(np.unique(mask)) <= {0, 255}
    assert 0.0 <= record["lesion_fraction"] <= 1.0
    assert Path(record["mask"]).parent == out


@pytest.mark.full  # the CLI in a process of its own (in-process: test_all_formats_and_exit_zero)
def test_cli_contract_with_bad_file(tmp_path, test_images):
    if not model_path("seg", MODELS).is_file():
        pytest.skip(f"trained models not found in {MODELS}")
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    out = tmp_path / "out"
    args = [str(test_images[0]), str(bad), str(test_images[1])]
    proc = subprocess.run([sys.executable, "-m", "pipeline", "predict", *args, "--out", str(out),
                           "--models-dir", str(MODELS)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert [r["image"] for r in lines] == args
    assert set(lines[1]) == {"image", "error"} and "broken.png" in lines[1]["error"]
    _check_record(lines[0], test_images[0], out)
    _check_record(lines[2], test_images[1], out)


def test_all_formats_and_exit_zero(tmp_path, predictor, test_images):
    gray = cv2.imread(str(test_images[0]), cv2.IMREAD_GRAYSCALE)
    files = []
    for ext in ("png", "jpg", "bmp", "tif"):
        files.append(tmp_path / f"sample.{ext}")
        assert cv2.imwrite(str(files[-1]), gray)
    lines: list[str] = []

    class Sink:
        def write(self, text):
            lines.append(text)

        def flush(self):
            pass

    assert run([str(f) for f in files], tmp_path / "masks", predictor, stream=Sink()) == 0
    records = [json.loads(t) for t in "".join(lines).splitlines()]
    assert len(records) == 4 and len({r["mask"] for r in records}) == 4  # same stem: numbered masks
    for r, f in zip(records, files):
        _check_record(r, f, tmp_path / "masks")
    lossless = [r for r in records if not r["image"].endswith(".jpg")]
    assert len({r["label"] for r in lossless}) == 1


def test_deterministic(predictor, test_images):
    gray = cv2.imread(str(test_images[2]), cv2.IMREAD_GRAYSCALE)
    a, b = predictor.predict(gray), predictor.predict(gray)
    assert a.probabilities == b.probabilities and a.baseline_probabilities == b.baseline_probabilities
    assert np.array_equal(a.mask, b.mask)


def test_concurrent_callers_match_serial(predictor, test_images):
    grays = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in test_images[:4]]
    serial = [predictor.predict(g) for g in grays]
    results: dict[tuple[int, int], object] = {}
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            for i, g in enumerate(grays):
                results[(t, i)] = predictor.predict(g)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    for (_t, i), res in results.items():
        assert res.probabilities == serial[i].probabilities
        assert res.baseline_probabilities == serial[i].baseline_probabilities
        assert np.array_equal(res.mask, serial[i].mask)


@pytest.mark.full  # every BUSI test image: make test-all only (keeps make test within 6 min)
def test_committed_models_reproduce_recorded_metrics(predictor, busi_dir):
    from pipeline.data.items import load_items
    from pipeline.training.evaluate import infer

    recorded = json.loads((MODELS / "metrics.json").read_text())["per_image"]["test"][:24]
    items = {it.image: it for it in load_items(busi_dir, "test")}
    subset = [items[r["image"]] for r in recorded]
    res = infer(predictor, subset)
    correct_now, correct_then = 0, 0
    for r, it, pb, pr in zip(recorded, subset, res["raw"], res["refined"]):
        assert np.allclose(pb, [r["baseline"][c] for c in CLASS_NAMES], atol=2e-4), r["image"]
        assert np.allclose(pr, [r["refined"][c] for c in CLASS_NAMES], atol=2e-4), r["image"]
        correct_now += int(np.argmax(pr) == it.label)
        correct_then += int(max(r["refined"], key=r["refined"].get) == CLASS_NAMES[it.label])
    assert correct_now == correct_then


def test_with_settings_changes_a_copy_and_leaves_the_predictor_alone(predictor, test_images):
    before = {n: (c.threshold, c.flip_tta, c.temperature, dict(c.notes)) for n, c in predictor.configs.items()}
    image = cv2.imread(str(test_images[0]), cv2.IMREAD_GRAYSCALE)
    plain = predictor.predict(image)
    hot = predictor.with_settings({"raw": {"temperature": 50.0, "notes": {"why": "test"}},
                                   "seg": {"threshold": 0.999999}})
    assert hot.raw_model is predictor.raw_model  # the loaded models are shared, not reloaded
    assert hot.configs["raw"].temperature == 50.0 and hot.configs["raw"].notes["why"] == "test"
    assert {n: (c.threshold, c.flip_tta, c.temperature, dict(c.notes)) for n, c in predictor.configs.items()} == before
    changed = hot.predict(image)
    assert max(changed.baseline_probabilities.values()) < max(plain.baseline_probabilities.values())
    assert changed.mask.sum() <= plain.mask.sum()
    assert predictor.predict(image).baseline_probabilities == plain.baseline_probabilities
    with pytest.raises(KeyError, match="no loaded model"):
        predictor.with_settings({"two_branch": {}})


def test_missing_and_corrupt_models_explain_how_to_restore(tmp_path):
    with pytest.raises(ModelLoadError, match="missing.*git checkout -- models/"):
        Predictor(tmp_path)
    shutil.copy(MODELS / "manifest.json", tmp_path)
    with pytest.raises(ModelLoadError, match="missing.*git checkout -- models/"):
        Predictor(tmp_path)
    for name in ("unet", "classifier_baseline", "classifier_refined"):
        (tmp_path / f"{name}.keras").write_bytes(b"PK\x03\x04 corrupt")
        shutil.copy(MODELS / f"{name}.json", tmp_path)
    with pytest.raises(ModelLoadError, match="unet.keras does not match the bundle manifest.*git checkout -- models/"):
        Predictor(tmp_path)
    record_files(tmp_path, ["unet.keras", "classifier_baseline.keras", "classifier_refined.keras"])
    with pytest.raises(ModelLoadError, match="unet.keras is truncated or corrupt.*git checkout -- models/"):
        Predictor(tmp_path)


def test_manifest_contract_mismatch_is_a_clear_error(tmp_path):
    for f in MODELS.glob("*.json"):
        shutil.copy(f, tmp_path)
    shutil.copy(MODELS / "unet.keras", tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["models"]["seg"]["input"]["shape"] = [None, 320, 320, 1]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match=r"unet.keras does not match the bundle manifest: input shape \[None, 256, 256, 1\]"):
        Predictor(tmp_path, models=("seg",))


def test_manifest_describes_every_model_contract():
    from pipeline.inference.bundle import build_manifest

    committed = json.loads((MODELS / "manifest.json").read_text())
    fresh = build_manifest(MODELS, committed["version"])
    assert {k: v for k, v in fresh.items() if k != "date"} == {k: v for k, v in committed.items() if k != "date"}
    for name, entry in committed["models"].items():
        assert entry["input"]["dtype"] == "float32" and len(entry["input"]["range"]) == 2, name
    assert committed["models"]["raw"]["output"]["classes"] == list(CLASS_NAMES)


def test_segmentation_only_predictor_gives_the_full_predictors_masks(predictor, busi_dir):
    from pipeline.data.busi import load_sample

    seg_only = Predictor(MODELS, models=("seg",))
    assert set(seg_only.configs) == {"seg"}
    grays = [load_sample(busi_dir, f"{c}/{c} (3).png")[0] for c in CLASS_NAMES]
    for a, b in zip(seg_only.segment_batch(grays), predictor.segment_batch(grays)):
        assert np.array_equal(a, b)
    one = predictor.predict(grays[0])
    assert np.array_equal(one.mask, predictor.segment_batch(grays[:1])[0])


def test_black_borders_are_set_aside_before_the_networks(predictor, busi_dir):
    """A real frame padded with black (a wider field of view, JPEG noise in the padding) gets the clean frame's
    answer, its mask placed back at the same pixels, nothing outlined in the padding; Grad-CAM likewise."""
    from pipeline.data.busi import load_sample

    gray = load_sample(busi_dir, "malignant/malignant (10).png")[0]
    h, w = gray.shape
    padded = np.pad(gray, ((0, h // 3), (w // 4, w // 4)))
    noise = np.random.default_rng(0).integers(0, 4, padded.shape, dtype=np.uint8)
    padded[h:] = noise[h:]
    clean, shifted = predictor.predict(gray), predictor.predict(padded)
    assert shifted.label == clean.label and shifted.baseline_label == clean.baseline_label
    for a, b in ((clean.probabilities, shifted.probabilities), (clean.baseline_probabilities, shifted.baseline_probabilities)):
        assert np.allclose([a[c] for c in CLASS_NAMES], [b[c] for c in CLASS_NAMES], atol=1e-5)
    assert clean.mask.any()
    assert np.array_equal(shifted.mask[:h, w // 4:w // 4 + w], clean.mask) and shifted.mask.sum() == clean.mask.sum()
    cam_clean, cam_padded = predictor.explain(gray, clean.mask, clean.label), predictor.explain(padded, shifted.mask, clean.label)
    assert cam_padded.heatmap.shape == padded.shape
    assert np.allclose(cam_padded.heatmap[:h, w // 4:w // 4 + w], cam_clean.heatmap, atol=1e-4)
    assert cam_padded.box == (cam_clean.box[0] + w // 4, cam_clean.box[1], cam_clean.box[2] + w // 4, cam_clean.box[3])
    # the record says what was analysed; the clean frame's says nothing
    assert shifted.analysed_region == (w // 4, 0, w // 4 + w, h) and clean.analysed_region is None
    assert shifted.to_record()["analysed_region"] == [w // 4, 0, w // 4 + w, h] and "analysed_region" not in clean.to_record()
    assert f"{w}x{h} px" in shifted.border_note and clean.border_note is None


def test_another_scanners_screen_layout_is_cut_to_the_image(predictor, busi_dir):
    """A real frame on another scanner's screen (blue-tinted gray map, wide black padding, an icon strip above it, a
    body-mark pictogram and text below it), sent as upload bytes: the networks see only the image, exactly as if it
    had been uploaded cropped."""
    from pipeline.data.busi import load_sample
    from pipeline.imageio import load_image
    from pipeline.training.shift import varied_bytes

    gray, mask = load_sample(busi_dir, "benign/benign (10).png")
    h, w = gray.shape
    for level in (0, 1):
        loaded = load_image(varied_bytes(gray, mask, "benign/benign (10).png", "screen_layout", level)[0])
        assert any("tinted gray map" in x for x in loaded.warnings)
        shown = predictor.predict(loaded.pixels, rgb=loaded.colour)
        x0, y0, x1, y1 = shown.analysed_region
        assert (x1 - x0, y1 - y0) == (w, h) and y0 > 0 and y1 < loaded.pixels.shape[0]
        cropped = predictor.predict(np.ascontiguousarray(loaded.pixels[y0:y1, x0:x1]))
        assert shown.label == cropped.label and shown.baseline_label == cropped.baseline_label
        for c in CLASS_NAMES:
            assert abs(shown.probabilities[c] - cropped.probabilities[c]) < 1e-5
