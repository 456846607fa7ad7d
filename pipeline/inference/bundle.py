"""The model bundle manifest (``models/manifest.json``): version, date and each model's input/output contract.

Like a MONAI bundle's metadata: what a model takes (shape, dtype, value range, channels) and gives, and what
it is for. ``check_model`` compares a loaded network with its contract, so a file that does not match the
code gives a clear message instead of wrong answers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

from pipeline import preprocess
from pipeline.config import CLASS_NAMES, MODEL_FILES, ModelConfig, config_path, model_path
from pipeline.errors import ModelLoadError

MANIFEST_FILE = "manifest.json"
BUNDLE_NAME = "busi-cad"

INTENDED_USE = (
    "Research and teaching on breast-ultrasound images (BUSI-like B-mode frames). Not a medical device: "
    "predictions are not a diagnosis and must not guide clinical decisions."
)

CONTRACTS = {
    "seg": {
        "role": "lesion segmentation (UNet)",
        "input": {"shape": [None, "image_size", "image_size", 1], "dtype": "float32", "range": [0.0, 1.0],
                  "channels": "grayscale", "prepared_by": "pipeline.preprocess.seg_input"},
        "output": {"shape": [None, "image_size", "image_size", 1], "dtype": "float32", "range": [0.0, 1.0],
                   "meaning": "per-pixel lesion probability"},
    },
    "raw": {
        "role": "baseline classifier on the whole frame",
        "input": {"shape": [None, "image_size", "image_size", 3], "dtype": "float32", "range": [0.0, 255.0],
                  "channels": "grayscale repeated on 3 channels", "prepared_by": "pipeline.preprocess.cls_input"},
        "output": {"shape": [None, len(CLASS_NAMES)], "dtype": "float32", "range": [0.0, 1.0],
                   "meaning": "softmax over classes", "classes": list(CLASS_NAMES)},
    },
    "refined": {
        "role": "refined classifier on the lesion-centred crop of the predicted mask",
        "input": {"shape": [None, "image_size", "image_size", 3], "dtype": "float32", "range": [0.0, 255.0],
                  "channels": "grayscale repeated on 3 channels", "prepared_by": "pipeline.preprocess.refined_input"},
        "output": {"shape": [None, len(CLASS_NAMES)], "dtype": "float32", "range": [0.0, 1.0],
                   "meaning": "softmax over classes", "classes": list(CLASS_NAMES)},
    },
}
ARCH_CONTRACTS: dict[str, dict] = {}  # refined-classifier contracts of other architectures, by config backbone
# (registered by the experiments that build them: pipeline.experiments.two_branch)


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _resolve(shape: list, sizes: dict) -> list:
    if shape and isinstance(shape[0], list):  # several inputs
        return [_resolve(s, sizes) for s in shape]
    return [sizes.get(s, s) if isinstance(s, str) else s for s in shape]


def contract(name: str, cfg: ModelConfig) -> dict:
    """The input/output contract of model ``name`` with its configured sizes filled in."""
    other = ARCH_CONTRACTS.get(cfg.backbone) if name == "refined" else None
    c = json.loads(json.dumps(other or CONTRACTS[name]))
    sizes = {"image_size": cfg.image_size, "global_width": cfg.notes.get("global_width")}
    for part in ("input", "output"):
        c[part]["shape"] = _resolve(c[part]["shape"], sizes)
    return c


def model_entry(models_dir: str | Path, name: str) -> dict:
    """Manifest entry of model ``name``: file, config, hash, backbone and its contract."""
    cfg = ModelConfig.load(config_path(name, models_dir))
    return {"file": MODEL_FILES[name], "config": config_path(name, models_dir).name,
            "sha256": file_sha256(model_path(name, models_dir)), "backbone": cfg.backbone, **contract(name, cfg)}


def build_manifest(models_dir: str | Path, version: str, now: dt.datetime | None = None,
                   names: tuple[str, ...] | None = None) -> dict:
    """The manifest of the models in ``models_dir`` (reads each config; hashes each file)."""
    models = {name: model_entry(models_dir, name) for name in (names or tuple(MODEL_FILES))}
    return {
        "name": BUNDLE_NAME, "version": version,
        "date": (now or dt.datetime.now(dt.UTC)).date().isoformat(),
        "intended_use": INTENDED_USE, "classes": list(CLASS_NAMES),
        "preprocessing": {"seg_size": preprocess.SEG_SIZE, "crop_margin": preprocess.CROP_MARGIN,
                          "crop_min_fraction": preprocess.CROP_MIN_FRACTION},
        "models": models,
    }


def write_manifest(models_dir: str | Path, version: str) -> Path:
    """Write ``manifest.json`` beside the models."""
    out = Path(models_dir) / MANIFEST_FILE
    out.write_text(json.dumps(build_manifest(models_dir, version), indent=1) + "\n")
    return out


def record_model(models_dir: str | Path, name: str, version: str) -> Path:
    """Add or replace model ``name``'s entry in ``models_dir``'s manifest (written after training)."""
    path = Path(models_dir) / MANIFEST_FILE
    manifest = json.loads(path.read_text()) if path.is_file() else build_manifest(models_dir, version, names=(name,))
    manifest["models"][name] = model_entry(models_dir, name)
    manifest["date"] = dt.datetime.now(dt.UTC).date().isoformat()
    path.write_text(json.dumps(manifest, indent=1) + "\n")
    return path


def read_manifest(models_dir: str | Path) -> dict:
    """The manifest, or ModelLoadError when it is missing or unreadable."""
    path = Path(models_dir) / MANIFEST_FILE
    if not path.is_file():
        raise ModelLoadError(f"model bundle manifest missing: {path} (restore it with `git checkout -- models/`, "
                             "or write it with `python -m pipeline bundle manifest`)")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"model bundle manifest {path} cannot be read: {exc}") from exc


def _shape(tensor_shape) -> list:
    if isinstance(tensor_shape, list):  # several inputs
        return [_shape(s) for s in tensor_shape]
    return [None if s is None else int(s) for s in tensor_shape]


def check_model(name: str, model, manifest: dict) -> None:
    """Raise ModelLoadError when ``model``'s input/output shapes differ from its manifest contract."""
    entry = manifest.get("models", {}).get(name)
    if entry is None:
        raise ModelLoadError(f"the model bundle manifest has no entry for {name!r} ({MODEL_FILES[name]})")
    for part, actual in (("input", model.input_shape), ("output", model.output_shape)):
        expected = entry[part]["shape"]
        got = _shape(actual)
        if got != expected:
            raise ModelLoadError(
                f"{MODEL_FILES[name]} does not match the bundle manifest: {part} shape {got}, expected {expected} "
                f"({entry['role']}). The model file and manifest.json come from different versions: restore both "
                "with `git checkout -- models/`, or re-export the bundle with `python -m pipeline bundle manifest`.")
