"""Shared, cached loaders for the dashboard pages: models once per process, data and metrics cached.

The functions here are thin: the work is in pipeline/ (tested without streamlit).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from pipeline import paths
from pipeline.config import MODEL_FILES
from pipeline.errors import BusiError, ModelLoadError
from pipeline.views import diagnosis, explore, results


# --- models ---------------------------------------------------------------------------------
def models_key(models_dir: Path | None = None) -> str:
    """Models folder plus the model files' sizes and times: new files give a new cache entry."""
    folder = Path(models_dir or paths.models_dir())
    parts = [str(folder.resolve())]
    for name in MODEL_FILES.values():
        f = folder / name
        parts.append(f"{name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" if f.is_file() else f"{name}:missing")
    return "|".join(parts)


def in_process() -> bool:
    """True when ``BUSI_INPROCESS=1`` asks for the models inside the Streamlit process (slower, see worker.py)."""
    return os.environ.get("BUSI_INPROCESS", "") == "1"


@st.cache_resource(show_spinner=False, max_entries=4)
def _load_predictor(key: str, inprocess: bool):
    """The predictor for the models folder in ``key``. The worker process starts loading at once and is
    returned before it is ready (``ready()``); in-process models load here and a failure raises (not cached)."""
    folder = key.split("|", 1)[0]
    if inprocess:
        from pipeline.inference.predictor import Predictor

        return Predictor(folder)
    from pipeline.inference.worker import PredictorProcess

    return PredictorProcess(folder, wait=False)


def start_models() -> None:
    """Start loading the models in the background (app.py calls this on every page, so the first visit to
    any page starts them); never raises: errors are shown by :func:`get_predictor`."""
    try:
        _load_predictor(models_key(), in_process())
    except ModelLoadError:
        pass


def _loader(allow_restart: bool = True):
    key, inprocess = models_key(), in_process()
    predictor = _load_predictor(key, inprocess)
    if allow_restart and getattr(predictor, "crashed", False):  # the worker died: start a new one for this folder
        _load_predictor.clear(key, inprocess)
        predictor = _load_predictor(key, inprocess)
    return predictor


def model_progress() -> tuple[object | None, tuple[int, int, str] | None, str | None]:
    """``(predictor, None, None)`` when ready, ``(None, (step, steps, text), None)`` while loading,
    ``(None, None, message)`` when a model is missing or corrupt. Never blocks."""
    key, inprocess = models_key(), in_process()
    try:
        predictor = _loader()
        if getattr(predictor, "ready", None) is None or predictor.ready():
            return predictor, None, None
        return None, predictor.progress, None
    except ModelLoadError as exc:
        _load_predictor.clear(key, inprocess)  # the next page run tries again
        return None, None, str(exc)


def get_predictor(on_progress=None):
    """``(predictor, None)`` or ``(None, message)`` when a model is missing or corrupt; waits for the models,
    calling ``on_progress((step, steps, text))`` about four times a second while they load.

    The predictor runs in a worker process of its own (``PredictorProcess``), so the Streamlit server's
    threads cannot stall TensorFlow; a worker that died is started again.
    """
    while True:
        predictor, progress, error = model_progress()
        if progress is None:
            return predictor, error
        if on_progress is not None:
            on_progress(progress)
        try:
            _loader(allow_restart=False).ready(0.25)
        except ModelLoadError:
            pass  # model_progress reports it on the next turn


# --- dataset --------------------------------------------------------------------------------
def dataset_root() -> Path | None:
    """The BUSI folder when it is present (BUSI_DIR or data/Dataset_BUSI_with_GT), else None."""
    return paths.dataset_dir() if paths.dataset_available() else None


@st.cache_data(show_spinner="Indexing the dataset (first time only, about 10 s)…", max_entries=4)
def _index(root: str, split_csv: str) -> pd.DataFrame:
    return explore.explorer_index(root, split_csv)


def get_index() -> tuple[pd.DataFrame | None, str | None]:
    """``(index, None)``, or ``(None, message)`` when the dataset is absent or broken."""
    root = dataset_root()
    if root is None:
        return None, None
    try:
        return _index(str(root), str(paths.SPLIT_CSV)), None
    except BusiError as exc:
        return None, str(exc)


@st.cache_data(show_spinner=False, max_entries=512)
def get_thumbnail(path: str, mask_paths: str, width: int = 240) -> np.ndarray:
    return explore.thumbnail(path, mask_paths, width)


def no_dataset_panel(message: str | None = None) -> None:
    """The friendly panel shown instead of dataset content when the dataset is absent."""
    where = paths.dataset_dir()
    st.info(
        "**The BUSI dataset is not available here.**\n\n"
        f"Looked in `{where}`.\n\n"
        "- Download it with `make data` (saves it to `data/Dataset_BUSI_with_GT/`), or\n"
        "- point the `BUSI_DIR` environment variable at an existing copy, e.g. "
        "`BUSI_DIR=/path/to/Dataset_BUSI_with_GT make run`.\n\n"
        "Uploading your own image on the Diagnose page works without the dataset.",
        icon=":material/folder_off:",
    )
    if message:
        st.warning(message)


# --- metrics --------------------------------------------------------------------------------
def metrics_path() -> Path:
    return paths.models_dir() / "metrics.json"


@st.cache_data(show_spinner=False, max_entries=4)
def _metrics(path: str, mtime_ns: int) -> dict:
    return results.load_metrics(path)


def get_metrics() -> tuple[dict | None, str | None]:
    """``(metrics, None)`` or ``(None, message)``."""
    path = metrics_path()
    try:
        return _metrics(str(path), path.stat().st_mtime_ns if path.is_file() else 0), None
    except results.MetricsError as exc:
        return None, str(exc)


# --- diagnosis (cached per image content and models) ---------------------------------------
def digest(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


@st.cache_data(show_spinner=False, max_entries=32, hash_funcs={bytes: lambda b: digest(b)})
def _analyse_upload(data: bytes, name: str, key: str, _predictor) -> diagnosis.Diagnosis:
    return diagnosis.analyse_upload(_predictor, data, name)


def analyse_upload(predictor, data: bytes, name: str) -> diagnosis.Diagnosis:
    """Diagnosis of uploaded bytes, in memory; raises ImageLoadError for a bad file."""
    return _analyse_upload(data, name, models_key(predictor.models_dir), predictor)


@st.cache_data(show_spinner=False, max_entries=32)
def _analyse_dataset(root: str, image: str, label: str, key: str, _predictor) -> diagnosis.Diagnosis:
    return diagnosis.analyse_dataset_image(_predictor, root, image, label)


def analyse_dataset(predictor, image: str, label: str) -> diagnosis.Diagnosis:
    return _analyse_dataset(str(dataset_root()), image, label, models_key(predictor.models_dir), predictor)


@st.cache_data(show_spinner=False, max_entries=32)
def _heatmap(result_key: str, key: str, _predictor, _diag):
    return diagnosis.refined_heatmap(_predictor, _diag)


def heatmap(predictor, diag: diagnosis.Diagnosis, result_key: str):
    """Grad-CAM of the refined model for ``diag`` (cached by ``result_key``)."""
    return _heatmap(result_key, models_key(predictor.models_dir), predictor, diag)


# --- state kept across page switches ----------------------------------------------------------------
# Streamlit forgets a widget's value when a run does not draw it (another page is shown). Assigning the value
# back in every run of app.py keeps it. File uploads and buttons cannot be assigned: the Diagnose page keeps
# its upload's bytes itself (UPLOAD_KEY), the Clinics page its result.
KEEP_KEYS = (
    "source", "dataset_image", "heat_alpha",  # Diagnose
    "ds_tab", "g_class", "g_subset", "g_dups", "g_size", "g_page", "g_filters", "dup_group",  # Dataset
    "presentation", "subset", "case_filter", "case_image",  # Models
    "clinics_mode", "clinics_place", "clinics_choice", "clinics_lat", "clinics_lon", "clinics_radius",  # Clinics
)
KEEP_PREFIXES = ("analyse_anyway:",)


def note_page(name: str) -> None:
    """Remember the page shown in this run and the one before (app.py calls this once per run)."""
    st.session_state["page_before"] = st.session_state.get("page_now")
    st.session_state["page_now"] = name


def just_arrived() -> bool:
    """True on the first run of a page after another page was shown (its widgets start afresh)."""
    return st.session_state.get("page_before") != st.session_state.get("page_now")


def kept_upload(upload, store: str) -> tuple[str, bytes] | None:
    """The file of an uploader, kept in ``store`` across page switches: the uploader's file when there is one;
    else the kept one, unless the user removed the file on this page (then it is forgotten)."""
    seen = f"{store}:seen"
    if upload is not None:
        st.session_state[store] = (upload.name, upload.getvalue())
    elif st.session_state.get(seen) and not just_arrived():  # it had a file in the last run here: removed
        st.session_state.pop(store, None)
    st.session_state[seen] = upload is not None
    return st.session_state.get(store)


def keep_page_state() -> None:
    """Re-assign the kept widget values so that they survive a page switch (call once per run, in app.py)."""
    for key in list(st.session_state.keys()):
        if key in KEEP_KEYS or key.startswith(KEEP_PREFIXES):
            st.session_state[key] = st.session_state[key]
