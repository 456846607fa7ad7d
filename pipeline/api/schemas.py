"""Response models: they document every answer in the OpenAPI schema (``/docs``); the handlers send plain JSON."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorBody(Open):
    error: str = Field(description="what went wrong, in the CLI's words (no absolute paths)")
    image: str | None = Field(None, description="the uploaded file's base name, when the error is about it")


class BaselineAnswer(BaseModel):
    label: str
    probabilities: dict[str, float]


class ResearchOnly(BaseModel):
    label: str
    confidence: float
    probabilities: dict[str, float]
    baseline: BaselineAnswer
    note: str = Field(description="why this answer is not meaningful")


class Measurements(Open):
    area_px: int | None = None
    pixel_spacing_mm: list[float] | None = None


class PredictionRecord(Open):
    """The record ``python -m pipeline predict`` prints for one image."""

    image: str = Field(description="the uploaded file's base name")
    status: Literal["ok", "refused"] = Field(description="'refused': the scope gate judged the image not a "
                                                         "breast-ultrasound frame; the label fields are then null")
    label: str | None = Field(description="the refined model's label; null when refused")
    confidence: float | None
    probabilities: dict[str, float] | None
    baseline: BaselineAnswer | None = Field(description="the whole-frame model's answer; null when refused")
    models_agree: bool
    lesion_fraction: float
    in_scope: bool | None = Field(description="null when the scope gate files are absent")
    scope_score: float | None = Field(description="out-of-distribution score; at most 1 is in scope")
    scope_reason: str | None = Field(None, description="why the image was refused (only when refused)")
    research_only: ResearchOnly | None = Field(None, description="the answer computed anyway (only when refused)")
    scope_warnings: list[str] | None = None
    analysed_region: list[int] | None = Field(None, description="x0, y0, x1, y1 of the part of the frame the networks "
                                                                "saw, when its black borders were set aside")
    measurements: Measurements
    warnings: list[str] = Field(description="the loader's warnings (size, blank, colour Doppler, DICOM values)")
    ms: float = Field(description="server time for this image, decode to record")
    mask_png_base64: str | None = Field(None, description="with ?mask=true: the mask as a 0/255 PNG")


class ModelSetHealth(Open):
    status: Literal["ok", "loading", "error"]
    models_loaded: bool
    models_dir: str = Field(description="the models folder, relative to the project (never an absolute path)")
    runtime: dict[str, str] | None = None
    load_seconds: float | None = None
    reason: str | None = None
    loading_for_s: float | None = None


class Health(ModelSetHealth):
    package_version: str
    model_sets: dict[str, ModelSetHealth]


class Version(Open):
    version: str | None = None
    package_version: str
    models: dict[str, dict]
    metrics: dict | None
    model_sets: dict[str, dict | None] = Field(description="each model set's bundle version and models")


__all__ = ["ErrorBody", "Health", "PredictionRecord", "Version"]
