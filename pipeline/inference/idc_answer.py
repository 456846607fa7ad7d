"""One IDC answer for one loaded picture: modality check -> tile heat map -> the JSON record.

The HTTP API (``POST /predict/idc``), the ``predict --task idc`` CLI and the Histopathology page all build
their answer here, so a refusal, a warning or a number reads the same everywhere.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.imageio import LoadedImage
from pipeline.inference.gradcam import colourise
from pipeline.inference.idc import IdcPredictor, TileResult, tile_grid
from pipeline.inference.modality import Modality, classify, idc_refusal, idc_warnings

# The loader's warnings written for ultrasound frames (size against the ultrasound models' input, blank frames,
# colour Doppler): they do not apply to H&E tiles and are left out of the IDC answer.
ULTRASOUND_ONLY_WARNINGS = ("very small image", "very large image", "the image is mostly blank",
                            "strongly saturated colour", "tinted gray map")
IDC_COLOUR = (255, 255, 255)  # outline of the cells called IDC


@dataclass(frozen=True, eq=False)
class IdcAnswer:
    """What the IDC path says about one picture: a refusal (``refusal`` set, no ``result``) or a heat map."""

    name: str
    image: LoadedImage
    modality: Modality
    refusal: str | None
    result: TileResult | None
    warnings: tuple[str, ...]
    ms: float

    def to_record(self) -> dict:
        """The JSON record (API body, CLI line): ``in_scope`` false with ``scope_reason`` and no label when
        refused, else ``TileResult.to_record()``; plus ``modality``, ``warnings`` and ``ms``."""
        head = {"image": self.name, "task": "idc"}
        if self.result is None:
            body = {"status": "refused", "label": None, "in_scope": False, "scope_reason": self.refusal}
        else:
            body = {"status": "ok", **self.result.to_record(), "in_scope": True}
        return {**head, **body, "modality": self.modality.to_dict(), "warnings": list(self.warnings),
                "ms": round(self.ms, 1)}


def analyse(predictor: IdcPredictor, image: LoadedImage, name: str | None = None, tta: bool | None = None) -> IdcAnswer:
    """Check the modality, then (unless refused) the tile heat map; ImageLoadError for a tile of the wrong size."""
    t0 = time.perf_counter()
    tile_grid(image.height, image.width, predictor.config.patch_size)  # a tile of the wrong size: an error first
    modality = classify(image.rgb)
    refusal = idc_refusal(modality)
    result = None if refusal else predictor.tile(image.rgb, tta=tta)
    if result is not None and result.n_tissue == 0:
        refusal, result = ("every 50 px cell of this picture is white background: there is no tissue for the IDC "
                           "model to read."), None
    kept = [w for w in image.warnings if not any(s in w for s in ULTRASOUND_ONLY_WARNINGS)]
    warnings = tuple(kept + ([] if refusal else idc_warnings(modality)))
    return IdcAnswer(name or image.name or "image", image, modality, refusal, result, warnings,
                     (time.perf_counter() - t0) * 1e3)


def heatmap_overlay(rgb: np.ndarray, result: TileResult, alpha: float = 0.45, outline: bool = True) -> np.ndarray:
    """The tile with its IDC probability map blended in (blue 0 -> red 1; background cells left clear) and,
    when ``outline``, the cells called IDC outlined in white."""
    heat = result.heatmap()
    tissue = ~np.isnan(heat)
    colour = colourise(np.nan_to_num(heat, nan=0.0)).astype(np.float32)
    base = np.asarray(rgb, np.float32)
    weight = (alpha * tissue)[:, :, None]
    out = (base * (1 - weight) + colour * weight).round().astype(np.uint8)
    if outline and result.n_idc:
        called = (np.nan_to_num(heat, nan=-1.0) >= result.threshold).astype(np.uint8)
        contours, _ = cv2.findContours(called, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, IDC_COLOUR, max(1, round(max(heat.shape) / 400)))
    return out
