"""``POST /predict/idc``: the IDC heat map of one H&E patch or tile, beside the ultrasound endpoints.

The second model set of the API (``models/idc/``): same multipart field (``file``), the same upload, pixel and
queue limits and the same error rules as ``/predict`` (``app.answer_upload``), plus 422 for a tile under 50 px or
over 4000 px on a side. The body is ``IdcAnswer.to_record()`` (as ``predict --task idc`` prints it): label, IDC
probability, share of tissue cells called IDC, the per-cell map; a picture that is not H&E (an ultrasound frame)
answers ``"status": "refused"`` with the reason and no label. The IDC model loads in its own background thread.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from pipeline.api.model_sets import ModelSet, ModelState, PredictorFactory
from pipeline.config import IDC_METRICS_FILE, idc_dir_in
from pipeline.imageio import LoadedImage


class IdcRecord(BaseModel):
    """The /predict/idc answer (documented fields; the per-cell map and grid come with it)."""

    model_config = ConfigDict(extra="allow")
    image: str
    task: str
    status: str
    label: str | None
    in_scope: bool
    scope_reason: str | None = None
    idc_probability: float | None = None
    share_idc: float | None = None
    warnings: list[str]
    ms: float


def idc_factory(models_dir: Path):
    """The real IDC predictor of ``models_dir/idc/``."""
    from pipeline.inference.idc import IdcPredictor

    return IdcPredictor(models_dir)


def idc_summary(models_dir: Path) -> dict | None:
    """Test headline numbers of ``models/idc/metrics.json`` (network and feature baseline); None when absent."""
    try:
        m = json.loads((idc_dir_in(models_dir) / IDC_METRICS_FILE).read_text())
        return {"split": "test", "patients": m["data"]["test"]["patients"],
                **{k: v["summary"] for k, v in m["test"].items()}}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def model_set(models_dir: Path, factory: PredictorFactory | None = None, warmup: bool = True) -> ModelSet:
    """The IDC model set: its loader, its own manifest (``models/idc/manifest.json``) and metrics."""
    return ModelSet("idc", ModelState(models_dir, factory or idc_factory, warmup), idc_summary,
                    manifest_dir=idc_dir_in(models_dir))


def idc_record(predictor, loaded: LoadedImage, name: str, tta: bool | None = None) -> dict:
    """The /predict/idc record of one decoded upload (ImageLoadError for a tile of the wrong size)."""
    from pipeline.inference.idc_answer import analyse

    return analyse(predictor, loaded, name, tta=tta).to_record()
