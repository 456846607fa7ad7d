"""Shared fixtures: the real dataset (through BUSI_DIR), the committed models (one Predictor and one worker process
for the whole run) and small generated datasets."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from trained import TINY

TESTS_DIR = Path(__file__).resolve().parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def busi_dir() -> Path:
    """The real BUSI folder from BUSI_DIR; tests using it skip with a reason when it is absent."""
    value = os.environ.get("BUSI_DIR")
    if not value or not Path(value).is_dir():
        pytest.skip("BUSI_DIR is not set to the BUSI dataset folder (Dataset_BUSI_with_GT)")
    return Path(value)


@pytest.fixture(scope="session")
def busbra_dir() -> Path:
    """The real BUS-BRA folder from BUSBRA_DIR; tests using it skip with a reason when it is absent."""
    value = os.environ.get("BUSBRA_DIR")
    if not value or not (Path(value) / "bus_data.csv").is_file():
        pytest.skip("BUSBRA_DIR is not set to the BUS-BRA dataset folder (with bus_data.csv)")
    return Path(value)


def _committed_models() -> Path:
    """The committed models folder; the test skips without its models."""
    from pipeline import paths

    models = paths.models_dir()
    if not (models / "unet.keras").is_file():
        pytest.skip(f"trained models not found in {models}")
    return models


@pytest.fixture(scope="session")
def predictor():
    """One Predictor on the committed models for the whole run."""
    from pipeline.inference.predictor import Predictor

    return Predictor(_committed_models())


@pytest.fixture(scope="session")
def worker():
    """One model worker process (``PredictorProcess``) on the committed models for the whole run."""
    from pipeline.inference.worker import PredictorProcess

    w = PredictorProcess(_committed_models())
    yield w
    w.close()


@pytest.fixture(scope="session")
def idc_dir() -> Path:
    """The real IDC pack folder from IDC_DIR; tests using it skip with a reason when it is absent."""
    value = os.environ.get("IDC_DIR")
    if not value or not (Path(value) / "idc_pack.npz").is_file():
        pytest.skip("IDC_DIR is not set to the IDC pack folder (with idc_pack.npz)")
    return Path(value)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of a Chromium for the real-browser tests; they skip with a reason without one (``make browser``)."""
    from bench.browser import find_chromium

    path = find_chromium()
    if path is None:
        pytest.skip("Chromium is not installed (run `make browser`; it needs root apt-get): no browser test")
    pytest.importorskip("playwright.sync_api", reason="the playwright python package is not installed")
    return path


@pytest.fixture(scope="session")
def tiny_bundle(busi_dir, tmp_path_factory) -> Path:
    """A bundle trained once per run for the training tests (one step each on real BUSI images, random weights; the
    UNet in graph mode as real trainings run, the classifiers eagerly, which skips ~20 s of graph building each):
    a UNet (unet16), the baseline, and the refined crop classifier trained on crops of generated out-of-fold masks
    (a box in each training image). Tests that change it work on a copy (``copy_bundle``)."""
    from pipeline.data.items import load_items
    from pipeline.training.crop_masks import save_masks
    from pipeline.training.train import train

    out = tmp_path_factory.mktemp("tiny_bundle")
    train("seg", busi_dir, models_dir=out, arch="unet16", **{**TINY, "run_eagerly": False})  # one graph-mode training
    train("raw", busi_dir, models_dir=out, **TINY)
    boxes = {}
    for it in load_items(busi_dir, "train", limit=TINY["limit"]):
        boxes[it.image] = np.zeros_like(it.mask)
        boxes[it.image][: it.mask.shape[0] // 2, : it.mask.shape[1] // 2] = 1
    train("refined", busi_dir, models_dir=out, backbone="lite2", crop_masks=save_masks(out / "oof.npz", boxes), **TINY)
    return out


@pytest.fixture(scope="session")
def offline_app(chromium, tmp_path_factory):
    """URL of one ``streamlit run dashboard/app.py`` (``BUSI_OFFLINE=1``) shared by the browser tests of a run;
    terminated at the end (checked)."""
    from bench.browser import streamlit_server, wait_healthy

    log = tmp_path_factory.mktemp("streamlit") / "streamlit.log"
    with streamlit_server(env={"BUSI_OFFLINE": "1"}, log_path=log) as (url, proc):
        wait_healthy(url, proc)
        yield url
    assert proc.poll() is not None


def write_png(path: Path, array: np.ndarray) -> Path:
    """Write a PNG (creating folders)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)
    return path


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    """A valid 6-image dataset in the Kaggle layout, with one two-mask case."""
    rng = np.random.default_rng(0)
    root = tmp_path / "Dataset_BUSI_with_GT"
    for cls in ("benign", "malignant", "normal"):
        for n in (1, 2):
            img = rng.integers(0, 255, (64, 80), dtype=np.uint8)
            write_png(root / cls / f"{cls} ({n}).png", img)
            mask = np.zeros((64, 80), np.uint8)
            if cls != "normal":
                mask[10:20, 10:30] = 255
            write_png(root / cls / f"{cls} ({n})_mask.png", mask)
    extra = np.zeros((64, 80), np.uint8)
    extra[40:50, 50:70] = 255
    write_png(root / "benign" / "benign (1)_mask_1.png", extra)
    return root


@pytest.fixture(scope="session")
def idc_test_pack(idc_dir):
    """The real pack's test patients (decoded once per session)."""
    from pipeline.data.idc import load_idc

    return load_idc(idc_dir).subset("test")


@pytest.fixture(scope="session")
def known_idc_models(tmp_path_factory) -> Path:
    """A models folder whose ``idc/`` holds the known-answer IDC model (see ``idc_factory``), saved like the real one."""
    from idc_factory import save_known_answer_model

    return save_known_answer_model(tmp_path_factory.mktemp("idc_models"))
