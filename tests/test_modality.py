"""The modality rule (H&E / grayscale / other) on real IDC patches, real BUSI and BUS-BRA frames, the scope gate's
non-ultrasound pictures and generated edge cases; and its two hooks: the IDC path's refusal and the ultrasound
scope gate's redirect to the IDC page."""

from __future__ import annotations

import io

import numpy as np
import pytest
from idc_factory import he_like
from PIL import Image

from pipeline.imageio import load_image
from pipeline.inference.modality import (
    GRAYSCALE,
    HISTOPATHOLOGY,
    OTHER,
    classify,
    idc_refusal,
    idc_warnings,
    ultrasound_redirect,
)
from pipeline.inference.scope import ScopeGate
from pipeline.paths import MODELS_DIR
from pipeline.training.scope_fit import non_ultrasound_corpus

SAMPLE = 60  # frames per ultrasound dataset in the fast tier (every frame: test_modality_full.py)


def _kinds(images) -> dict[str, int]:
    out = {HISTOPATHOLOGY: 0, GRAYSCALE: 0, OTHER: 0}
    for a in images:
        out[classify(a).kind] += 1
    return out


def _every(paths, n):
    paths = sorted(paths)
    return paths[:: max(1, len(paths) // n)][:n]


# --- real data ---------------------------------------------------------------------------------------------
def test_real_idc_patches_are_histopathology_and_never_grayscale(idc_test_pack):
    kinds = _kinds(idc_test_pack.images)
    assert kinds[GRAYSCALE] == 0
    assert kinds[HISTOPATHOLOGY] >= 0.96 * len(idc_test_pack)  # 98% on the whole pack (README)
    assert all(idc_refusal(classify(p)) is None for p in idc_test_pack.images)  # none refused on the IDC path


def test_real_busi_frames_are_grayscale(busi_dir):
    paths = _every([p for p in busi_dir.glob("*/*.png") if "_mask" not in p.name], SAMPLE)
    kinds = _kinds(load_image(p).rgb for p in paths)
    assert kinds == {HISTOPATHOLOGY: 0, GRAYSCALE: len(paths), OTHER: 0}


def test_real_busbra_frames_are_grayscale(busbra_dir):
    paths = _every((busbra_dir / "Images").glob("*.png"), SAMPLE)
    kinds = _kinds(load_image(p).rgb for p in paths)
    assert kinds == {HISTOPATHOLOGY: 0, GRAYSCALE: len(paths), OTHER: 0}


def test_ultrasound_frame_is_refused_on_the_idc_path_with_the_way_to_the_diagnose_page(busi_dir):
    frame = load_image(next(iter(sorted((busi_dir / "benign").glob("benign (1).png"))))).rgb
    reason = idc_refusal(classify(frame))
    assert reason and "ultrasound" in reason and "Diagnose page" in reason and "POST /predict" in reason


def test_no_picture_of_the_scope_gates_non_ultrasound_corpus_is_called_histopathology_but_its_he_mosaics():
    corpus = non_ultrasound_corpus()  # generated pictures + the sample images installed packages ship (+ IDC mosaics)
    he = [a for n, a in corpus if n.startswith("idc:")]  # H&E mosaics of IDC test patches, when IDC_DIR is set
    assert len(corpus) - len(he) > 80
    assert _kinds(a for n, a in corpus if not n.startswith("idc:"))[HISTOPATHOLOGY] == 0
    assert _kinds(he)[HISTOPATHOLOGY] == len(he)


# --- generated edge cases ----------------------------------------------------------------------------------
def test_edge_cases():
    rng = np.random.default_rng(0)
    he = he_like(rng, (300, 300), 190, 110)
    assert classify(he).kind == HISTOPATHOLOGY
    flat_pink = np.full((300, 300, 3), (230, 120, 200), np.uint8)  # the colour of eosin, but no texture
    assert classify(flat_pink).kind == OTHER and idc_warnings(classify(flat_pink))
    gray_he = np.repeat(he.mean(axis=2, keepdims=True), 3, axis=2).astype(np.uint8)
    assert classify(gray_he).kind == GRAYSCALE and classify(gray_he[:, :, 0]).kind == GRAYSCALE
    rgba = np.dstack([he, np.full(he.shape[:2], 255, np.uint8)])
    assert classify(rgba).kind == HISTOPATHOLOGY
    white = np.full((200, 200, 3), 250, np.uint8)
    assert "white background" in idc_refusal(classify(white))
    green = he_like(rng, (200, 200), 90, 200)  # textured, but green: not H&E
    assert classify(green).kind == OTHER
    huge = np.tile(he, (12, 12, 1))  # 3600 px: shrunk before the statistics
    assert classify(huge).kind == HISTOPATHOLOGY
    with pytest.raises(ValueError):
        classify(np.zeros((60, 60, 3), np.float32))


def test_jpeg_and_a_mosaic_of_real_patches_stay_histopathology(idc_test_pack):
    mosaic = np.concatenate([np.concatenate(list(idc_test_pack.images[r * 8:(r + 1) * 8]), axis=1) for r in range(6)])
    assert classify(mosaic).kind == HISTOPATHOLOGY
    buf = io.BytesIO()
    Image.fromarray(mosaic).save(buf, "JPEG", quality=75)
    assert classify(load_image(buf.getvalue()).rgb).kind == HISTOPATHOLOGY


# --- the ultrasound scope gate sends H&E to the IDC page ---------------------------------------------------
def test_scope_gate_redirects_an_he_patch_to_the_idc_page(idc_test_pack):
    gate = ScopeGate.load(MODELS_DIR)
    if gate is None:
        pytest.skip("the scope gate files are not in models/")
    patch = idc_test_pack.images[0]
    features = np.broadcast_to(gate.mean, (1, len(gate.mean)))  # the gate's own centre: in scope by distance
    result = gate.check(patch.mean(axis=2).astype(np.uint8), features, rgb=patch)
    assert not result.in_scope and "Histopathology (IDC) page" in result.reason and "/predict/idc" in result.reason
    gray = np.repeat(patch.mean(axis=2, keepdims=True), 3, axis=2).astype(np.uint8)
    assert ultrasound_redirect(gray) is None and ultrasound_redirect(None) is None
