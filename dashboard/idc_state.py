"""Cached loaders for the Histopathology (IDC) page: the IDC model once per process, the pack and answers cached.

Thin: the work is in ``pipeline.views.histopathology`` (tested without streamlit).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard.state import digest
from pipeline import paths
from pipeline.config import IDC_CONFIG_FILE, IDC_MODEL_FILE, idc_dir_in
from pipeline.errors import BusiError, ModelLoadError
from pipeline.views import histopathology as hist


def model_key() -> str:
    """The IDC model folder plus its files' sizes and times: new files give a new cache entry."""
    folder = idc_dir_in(paths.models_dir())
    parts = [str(folder.resolve())]
    for name in (IDC_MODEL_FILE, IDC_CONFIG_FILE):
        f = folder / name
        parts.append(f"{name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" if f.is_file() else f"{name}:missing")
    return "|".join(parts)


@st.cache_resource(show_spinner="Loading the IDC model (once per server)…", max_entries=2)
def _load(key: str):
    from pipeline.inference.idc import IdcPredictor

    predictor = IdcPredictor(Path(key.split("|", 1)[0]).parent)
    predictor.warm_up()
    return predictor


def get_predictor():
    """``(predictor, None)``, or ``(None, message)`` when the IDC model is missing or damaged."""
    try:
        return _load(model_key()), None
    except ModelLoadError as exc:
        return None, str(exc)


@st.cache_data(show_spinner="Reading the IDC pack (first time only)…", max_entries=2)
def _pack(root: str):
    from pipeline.data.idc import load_idc

    test = load_idc(root).subset("test")
    return test.images, test.labels, test.patients


def get_test_pack():
    """``((images, labels, patients) of the test patients, None)``; ``(None, None)`` without the pack;
    ``(None, message)`` when it is damaged."""
    if not paths.idc_available():
        return None, None
    try:
        return _pack(str(paths.idc_dir())), None
    except BusiError as exc:
        return None, str(exc)


@st.cache_data(show_spinner=False, max_entries=32, hash_funcs={bytes: digest})
def _upload(data: bytes, name: str, key: str, _predictor):
    return hist.analyse_upload(_predictor, data, name)


def analyse_upload(predictor, data: bytes, name: str):
    """The IDC answer for uploaded bytes (cached by content); raises ImageLoadError for a bad file."""
    return _upload(data, name, model_key(), predictor)


@st.cache_data(show_spinner=False, max_entries=64)
def _gallery(root: str, patient: int, key: str, _predictor, _pack):
    images, labels, patients = _pack
    return hist.gallery(_predictor, images, labels, patients, patient)


def gallery(predictor, pack, patient: int):
    """The gallery items of one test patient (cached per patient and model)."""
    return _gallery(str(paths.idc_dir()), int(patient), model_key(), predictor, pack)
