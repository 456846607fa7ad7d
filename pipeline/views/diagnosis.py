"""One diagnosis for the Diagnose page: load -> predict -> measure -> compare -> report.

Uploads are handled in memory (bytes + the name the user gave, used in messages only); the
format is decided by ``imageio.load_image`` from the content. No streamlit here.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from pipeline import imageio, metrics
from pipeline.errors import ImageLoadError
from pipeline.inference.gradcam import FrameHeatmap, blend
from pipeline.inference.measure import Measurements, measure
from pipeline.inference.overlay import overlay
from pipeline.inference.predictor import Prediction, Predictor
from pipeline.inference.report import NOT_ULTRASOUND, build_report


@dataclass(frozen=True, eq=False)
class Diagnosis:
    """Everything computed for one image (the page decides how to show it)."""

    name: str
    source: str  # "upload" or "dataset"
    image: imageio.LoadedImage
    prediction: Prediction
    measurements: Measurements
    true_label: str | None = None
    truth_mask: np.ndarray | None = None

    @property
    def dice(self) -> float | None:
        return None if self.truth_mask is None else metrics.dice(self.prediction.mask, self.truth_mask)

    @property
    def iou(self) -> float | None:
        return None if self.truth_mask is None else metrics.iou(self.prediction.mask, self.truth_mask)

    def with_truth_mask(self, mask: np.ndarray | None) -> Diagnosis:
        """A copy with another ground-truth mask (e.g. one uploaded for an uploaded image)."""
        return Diagnosis(self.name, self.source, self.image, self.prediction, self.measurements,
                         self.true_label, mask)


def analyse(predictor: Predictor, image: imageio.LoadedImage, *, name: str | None = None,
            source: str = "upload", true_label: str | None = None,
            truth_mask: np.ndarray | None = None) -> Diagnosis:
    """Predict and measure one loaded image (the scope gate also sees its colour version)."""
    pred = predictor.predict(image.pixels, rgb=image.colour)
    meas = measure(pred.mask, image.pixel_spacing_mm)
    return Diagnosis(name or image.name or "image", source, image, pred, meas, true_label, truth_mask)


def analyse_upload(predictor: Predictor, data: bytes, name: str | None) -> Diagnosis:
    """Load uploaded bytes (content decides the format) and analyse them; raises ImageLoadError."""
    image = imageio.load_image(bytes(data), name=name)
    return analyse(predictor, image, name=name, source="upload")


def analyse_dataset_image(predictor: Predictor, root, image: str, label: str | None) -> Diagnosis:
    """Analyse one dataset image (relative path) with its ground-truth mask and label."""
    from pipeline.data.busi import load_sample

    gray, mask = load_sample(root, image)
    loaded = imageio.image_from_array(gray, name=image.rsplit("/", 1)[-1])
    return analyse(predictor, loaded, name=image, source="dataset", true_label=label, truth_mask=mask)


def load_truth_mask(data: bytes, name: str | None, shape: tuple[int, int]) -> np.ndarray:
    """A ground-truth mask upload as 0/1 uint8 of ``shape``; raises ImageLoadError if unusable."""
    loaded = imageio.load_image(bytes(data), name=name)
    if loaded.shape != tuple(shape):
        raise ImageLoadError(
            f"{name + ': ' if name else ''}the mask is {loaded.width}x{loaded.height} px but the image is "
            f"{shape[1]}x{shape[0]} px; upload the mask drawn on this image."
        )
    return (np.asarray(loaded.pixels) > 127).astype(np.uint8)


def refined_heatmap(predictor: Predictor, diagnosis: Diagnosis) -> FrameHeatmap:
    """Grad-CAM of the refined classifier for its predicted class, on the full frame (``Predictor.explain``)."""
    p = diagnosis.prediction
    return predictor.explain(diagnosis.image.pixels, p.mask, p.label)


def heatmap_caption(heat: FrameHeatmap) -> str:
    """Plain sentence saying which region the refined classifier looked at."""
    if heat.whole_frame:
        return ("No lesion was outlined, so the lesion-crop classifier looked at the whole image; "
                "warm colours mark the areas that drove its answer.")
    x0, y0, x1, y1 = heat.box
    h, w = heat.heatmap.shape
    if (x0, y0, x1, y1) == (0, 0, w, h):
        return ("The square around the outlined lesion (with its margin of context) covers the whole frame, so "
                "the lesion-crop classifier looked at the whole image; warm colours mark the areas that drove "
                "its answer.")
    return (f"The lesion-crop classifier looked only at the lesion-centred square (white box, x {x0}–{x1}, "
            f"y {y0}–{y1} px); warm colours mark the areas that drove its answer.")


def heatmap_image(diagnosis: Diagnosis, heat: FrameHeatmap, alpha: float = 0.45) -> np.ndarray:
    """The original with the heatmap blended and the classifier's region outlined."""
    return blend(diagnosis.image.pixels, heat.heatmap, alpha, None if heat.whole_frame else heat.box)


def overlay_image(diagnosis: Diagnosis, alpha: float = 0.4, mode: str = "filled") -> np.ndarray:
    """The predicted mask drawn over the image."""
    return overlay(diagnosis.image.pixels, diagnosis.prediction.mask, alpha, mode)


def png_bytes(rgb: np.ndarray) -> bytes:
    """PNG encoding of an RGB or grayscale uint8 array."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, "PNG")
    return buf.getvalue()


def refusal_message(p: Prediction) -> str | None:
    """The refusal sentence when the scope gate judged the image not a breast ultrasound (else None)."""
    if p.in_scope is not False:
        return None
    reason = p.scope_reason or "it is unlike the images the models were trained on"
    return f"{NOT_ULTRASOUND}: {reason}."


def all_warnings(diagnosis: Diagnosis) -> list[str]:
    """The loader's warnings (size, blank, colour Doppler...) then the scope gate's (burned-in annotations)."""
    return list(diagnosis.image.warnings) + list(diagnosis.prediction.scope_warnings)


def report_for(diagnosis: Diagnosis, predictor: Predictor | None = None, heat: FrameHeatmap | None = None,
               display: dict | None = None, analysed_anyway: bool | None = None) -> dict:
    """The JSON report of everything shown for ``diagnosis``."""
    p = diagnosis.prediction
    cam = None
    if heat is not None:
        cam = {"model": "refined", "class": p.label, "region_xyxy": list(heat.box), "whole_frame": heat.whole_frame}
    return build_report(
        file_name=diagnosis.name, source=diagnosis.source, image_shape=diagnosis.image.shape,
        prediction=p.to_record(), measurements=diagnosis.measurements.to_dict(),
        warnings=all_warnings(diagnosis), true_label=diagnosis.true_label,
        dice=diagnosis.dice, iou=diagnosis.iou, gradcam=cam,
        configs=predictor.configs if predictor else None,
        models_dir=str(predictor.models_dir) if predictor else None,
        timings_ms={k: round(v, 1) for k, v in p.timings_ms.items()}, display=display,
        analysed_anyway=analysed_anyway,
    )


def agreement_sentence(p: Prediction) -> str | None:
    """A plain sentence when the two classifiers disagree (None when they agree)."""
    if p.models_agree:
        return None
    return (f"The two models disagree: the refined model (looking at the lesion) says **{p.label}** "
            f"({p.confidence:.0%}), the baseline model (looking at the whole image) says "
            f"**{p.baseline_label}** ({p.baseline_probabilities[p.baseline_label]:.0%}). "
            "Treat this case as uncertain.")
