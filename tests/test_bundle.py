"""The verified model bundle: every file the Predictor loads is listed with its SHA-256 and checked at load; a
swapped or edited file is refused by name (Predictor, ``bundle verify``, the API's /health); the crop settings
come from the manifest."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest

from pipeline import paths, preprocess
from pipeline.cli import main
from pipeline.errors import ModelLoadError
from pipeline.inference import bundle
from pipeline.inference.predictor import Predictor, _crop_settings

with warnings.catch_warnings():  # starlette asks for httpx2; httpx (pinned in requirements.txt) still works
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

MODELS = paths.models_dir()
pytestmark = pytest.mark.skipif(not (MODELS / "unet.keras").is_file(), reason=f"no trained models in {MODELS}")


def _bundle_copy(folder: Path, swap: dict[str, str] | None = None) -> Path:
    """``folder`` holding the committed bundle (links to its files; ``swap``: name -> the file linked instead)."""
    folder.mkdir()
    for f in MODELS.iterdir():
        if f.is_file() and f.name != bundle.MANIFEST_FILE:
            (folder / f.name).symlink_to(MODELS / (swap or {}).get(f.name, f.name))
    shutil.copy(MODELS / bundle.MANIFEST_FILE, folder)
    return folder


def test_the_committed_bundle_lists_every_file_the_predictor_loads_and_matches(capsys):
    manifest = bundle.read_manifest(MODELS)
    assert [e["path"] for e in manifest["files"]] == bundle.loaded_files(MODELS)
    assert {"scope_gate.npz", "scope_gate.json", "unet.json"} <= {e["path"] for e in manifest["files"]}
    assert bundle.verify_sets(MODELS) == {bundle.BUNDLE_NAME: [], "idc": []}
    assert main(["bundle", "verify"]) == 0
    out = capsys.readouterr().out
    assert "busi-cad: every file matches the manifest" in out and "idc: every file matches the manifest" in out


def test_a_swapped_model_file_is_refused_by_name(tmp_path, capsys):
    folder = _bundle_copy(tmp_path / "swapped", {"classifier_refined.keras": "classifier_baseline.keras"})
    problems = bundle.verify(folder, bundle.loaded_files(folder))
    assert len(problems) == 1 and problems[0].startswith("classifier_refined.keras does not match the bundle manifest")
    with pytest.raises(ModelLoadError, match=r"classifier_refined.keras does not match the bundle manifest \(SHA-256"):
        Predictor(folder, models=("refined",))
    assert main(["bundle", "verify", "--models-dir", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: classifier_refined.keras does not match")


def test_an_edited_config_or_gate_file_and_an_unlisted_file_are_refused(tmp_path):
    folder = _bundle_copy(tmp_path / "edited")
    cfg = json.loads((MODELS / "unet.json").read_text())
    (folder / "unet.json").unlink()
    (folder / "unet.json").write_text(json.dumps({**cfg, "threshold": 0.9}))
    with pytest.raises(ModelLoadError, match="unet.json does not match the bundle manifest"):
        Predictor(folder, models=("seg",))
    manifest = json.loads((folder / bundle.MANIFEST_FILE).read_text())
    manifest["files"] = [e for e in manifest["files"] if e["path"] != "scope_gate.npz"]
    (folder / bundle.MANIFEST_FILE).write_text(json.dumps(manifest))
    problems = bundle.verify(folder, bundle.loaded_files(folder))
    assert [p.split(" ")[0] for p in problems] == ["unet.json", "scope_gate.npz"]
    assert "not listed" in problems[1]
    bundle.record_files(folder, ["unet.json", "scope_gate.npz"])  # recorded on purpose: accepted again
    assert bundle.verify(folder, bundle.loaded_files(folder)) == []


def test_the_api_health_is_503_naming_the_swapped_file(tmp_path):
    from pipeline.api import create_app

    folder = _bundle_copy(tmp_path / "swapped", {"unet.keras": "classifier_baseline.keras"})
    app = create_app(folder)
    with TestClient(app) as client:
        assert app.state.models.wait(120)
        r = client.get("/health")
    assert r.status_code == 503 and r.json()["reason"].startswith("unet.keras does not match the bundle manifest")


def test_the_crop_settings_come_from_the_manifest(predictor):
    block = predictor.manifest["preprocessing"]
    assert predictor.crop == (block["crop_margin"], block["crop_min_fraction"]) == (0.5, 0.35)
    assert block["border"] == preprocess.border_rule()  # the committed manifest describes the border rule in use
    assert _crop_settings({"preprocessing": {"crop_margin": "0.25", "crop_min_fraction": 0.4}}) == (0.25, 0.4)
    for broken in ({}, {"preprocessing": {"crop_margin": 0.5}}, {"preprocessing": None}):
        with pytest.raises(ModelLoadError, match="preprocessing block"):
            _crop_settings(broken)


def test_a_registered_model_set_is_verified_from_its_own_folder(tmp_path, monkeypatch):
    other = tmp_path / "other"
    other.mkdir()
    (other / "weights.bin").write_bytes(b"\x00" * 10)
    (other / bundle.MANIFEST_FILE).write_text(json.dumps({"files": bundle.file_entries(other, ["weights.bin"])}))
    monkeypatch.delitem(bundle.MODEL_SETS, "idc")
    monkeypatch.setitem(bundle.MODEL_SETS, "other", bundle.ModelSet("other"))
    monkeypatch.setitem(bundle.MODEL_SETS, bundle.BUNDLE_NAME, bundle.ModelSet("absent"))
    assert bundle.verify_sets(tmp_path) == {bundle.BUNDLE_NAME: [f"model set folder missing: {tmp_path / 'absent'}"],
                                            "other": []}
    (other / "weights.bin").write_bytes(b"\x01" * 10)
    assert bundle.verify_sets(tmp_path)["other"][0].startswith("weights.bin does not match the bundle manifest")
