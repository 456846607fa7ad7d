"""The model bundle manifest (``models/manifest.json``): version, date, each model's input/output contract, the
preprocessing values and the SHA-256 of every file the Predictor loads.

Like a MONAI bundle's metadata: what a model takes (shape, dtype, value range, channels) and gives, and what
it is for. ``check_model`` compares a loaded network with its contract and ``verify_file`` a file with its listed
hash, so a swapped or changed file is refused by name instead of giving wrong answers. ``verify`` checks a whole
model set (``python -m pipeline bundle verify``); ``MODEL_SETS`` registers the sets under ``models/``, each
folder with a manifest holding a ``files`` list.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline import preprocess
from pipeline.config import (
    CLASS_NAMES,
    IDC_CONFIG_FILE,
    IDC_MODEL_FILE,
    IDC_SUBDIR,
    MODEL_FILES,
    ModelConfig,
    config_path,
    model_path,
)
from pipeline.errors import ModelLoadError
from pipeline.inference.scope import GATE_JSON, GATE_NPZ

MANIFEST_FILE = "manifest.json"
BUNDLE_NAME = "busi-cad"
FIX_HINT = ("restore the bundle with `git checkout -- models/`, or, for a model retrained on purpose, record it with "
            "`python -m pipeline bundle manifest`")

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


def loaded_files(models_dir: str | Path) -> list[str]:
    """The files of ``models_dir`` the Predictor loads (each model and its config, the scope gate), those present."""
    names = [n for m in MODEL_FILES for n in (model_path(m).name, config_path(m).name)] + [GATE_NPZ, GATE_JSON]
    return [n for n in names if (Path(models_dir) / n).is_file()]


def file_entries(models_dir: str | Path, names: list[str]) -> list[dict]:
    """``[{"path", "sha256", "bytes"}]`` of files ``names`` in ``models_dir``."""
    return [{"path": n, "sha256": file_sha256(Path(models_dir) / n), "bytes": (Path(models_dir) / n).stat().st_size}
            for n in names]


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
                          "crop_min_fraction": preprocess.CROP_MIN_FRACTION, "border": preprocess.border_rule()},
        "models": models,
        "files": file_entries(models_dir, loaded_files(models_dir)),
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
    return _write_files(path, manifest, [model_path(name).name, config_path(name).name])


def record_files(models_dir: str | Path, names: list[str]) -> Path:
    """Refresh the hashes of files ``names`` in ``models_dir``'s manifest (after a step rewrote them: configs
    chosen by ``evaluate``, the scope gate)."""
    path = Path(models_dir) / MANIFEST_FILE
    return _write_files(path, read_manifest(models_dir), names)


def _write_files(path: Path, manifest: dict, names: list[str]) -> Path:
    """Write ``manifest`` with the entries of ``names`` added or replaced (in ``loaded_files`` order) and today's date."""
    entries = {e["path"]: e for e in manifest.get("files", [])}
    entries.update({e["path"]: e for e in file_entries(path.parent, names)})
    order = {n: i for i, n in enumerate(loaded_files(path.parent))}
    manifest["files"] = sorted(entries.values(), key=lambda e: (order.get(e["path"], len(order)), e["path"]))
    manifest["date"] = dt.datetime.now(dt.UTC).date().isoformat()
    if isinstance(manifest.get("preprocessing"), dict):  # the border rule the files were last written under
        manifest["preprocessing"]["border"] = preprocess.border_rule()
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


def verify_file(models_dir: str | Path, manifest: dict, name: str) -> str:
    """The SHA-256 of file ``name`` in ``models_dir``; ModelLoadError naming it when it is missing, unlisted in the
    manifest or differs from its listed hash."""
    path = Path(models_dir) / name
    listed = {e["path"]: e["sha256"] for e in manifest.get("files", [])}
    if name not in listed:
        raise ModelLoadError(f"{name} is not listed in the bundle manifest {Path(models_dir) / MANIFEST_FILE}: {FIX_HINT}")
    if not path.is_file():
        raise ModelLoadError(f"{name} is listed in the bundle manifest but missing from {models_dir}: {FIX_HINT}")
    got = file_sha256(path)
    if got != listed[name]:
        raise ModelLoadError(f"{name} does not match the bundle manifest (SHA-256 {got[:12]}..., listed "
                             f"{listed[name][:12]}...): the file was changed or swapped; {FIX_HINT}")
    return got


@dataclass(frozen=True)
class ModelSet:
    """A set of models with its own manifest: ``folder`` under the models folder; ``required(folder)``: the files
    its loader reads, which the manifest must list."""

    folder: str
    required: Callable[[Path], list[str]] = lambda folder: []


IDC_FILES = [IDC_MODEL_FILE, IDC_CONFIG_FILE]
IDC_CONTRACT = {
    "role": "IDC patch classifier (H&E histopathology, 50x50 px at 40x; tiles are cut into such cells)",
    "input": {"shape": [None, 50, 50, 3], "dtype": "float32", "range": [0.0, 255.0], "channels": "RGB",
              "prepared_by": "pipeline.inference.idc.check_patches"},
    "output": {"shape": [None, 2], "dtype": "float32", "range": [0.0, 1.0], "meaning": "softmax over classes",
               "classes": ["non-IDC", "IDC"]},
}
MODEL_SETS: dict[str, ModelSet] = {  # one entry per model set
    BUNDLE_NAME: ModelSet(".", loaded_files),
    "idc": ModelSet(IDC_SUBDIR, lambda folder: list(IDC_FILES)),
}


def write_idc_manifest(folder: str | Path, version: str) -> Path:
    """Write the IDC model set's ``manifest.json`` (its contract and the SHA-256 of its files) in ``folder``."""
    folder = Path(folder)
    manifest = {"name": f"{BUNDLE_NAME}-idc", "version": version, "date": dt.datetime.now(dt.UTC).date().isoformat(),
                "intended_use": "Research and teaching on H&E histopathology patches (invasive ductal carcinoma). "
                                "Not a medical device.",
                "classes": IDC_CONTRACT["output"]["classes"],
                "models": {"idc": {"file": IDC_MODEL_FILE, "config": IDC_CONFIG_FILE, **IDC_CONTRACT}},
                "files": file_entries(folder, IDC_FILES)}
    path = folder / MANIFEST_FILE
    path.write_text(json.dumps(manifest, indent=1) + "\n")
    return path


def check_idc_model(model) -> None:
    """ModelLoadError when a loaded IDC network's input or output shape is not the contract's."""
    got_in, got_out = _shape(model.input_shape), _shape(model.output_shape)
    if got_in != IDC_CONTRACT["input"]["shape"] or got_out != IDC_CONTRACT["output"]["shape"]:
        raise ModelLoadError(f"{IDC_SUBDIR}/{IDC_MODEL_FILE} takes {got_in} and gives {got_out}; the bundle contract "
                             f"says {IDC_CONTRACT['input']['shape']} -> {IDC_CONTRACT['output']['shape']}: {FIX_HINT}")


def verify(folder: str | Path, required: list[str] = ()) -> list[str]:
    """Problems of the model set in ``folder`` (one line each; [] when every listed file matches its hash and every
    file of ``required`` is listed)."""
    try:
        manifest = read_manifest(folder)
    except ModelLoadError as exc:
        return [str(exc)]
    if not manifest.get("files"):
        return [f"the bundle manifest {Path(folder) / MANIFEST_FILE} lists no files: {FIX_HINT}"]
    names = [e["path"] for e in manifest["files"]] + [n for n in required if n not in {e["path"] for e in manifest["files"]}]
    problems = []
    for name in names:
        try:
            verify_file(folder, manifest, name)
        except ModelLoadError as exc:
            problems.append(str(exc))
    return problems


def verify_sets(models_root: str | Path) -> dict[str, list[str]]:
    """``verify`` of every registered model set under ``models_root``: {set name: problems}."""
    out = {}
    for name, spec in MODEL_SETS.items():
        folder = Path(models_root) / spec.folder
        out[name] = verify(folder, spec.required(folder)) if folder.is_dir() else [f"model set folder missing: {folder}"]
    return out
