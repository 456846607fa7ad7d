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
from pipeline.inference.overlay import LESION_COLOUR, TRUTH_COLOUR, annotate, mask_layer, overlay
from pipeline.inference.predictor import Prediction, Predictor
from pipeline.inference.report import DISCLAIMER, NOT_ULTRASOUND, build_report

# The scope gate's reasons (pipeline.inference.scope: refusal() and ScopeGate.check) in plain words, by their
# first words; the gate's own sentence, with its numbers, stays available as the detail.
PLAIN_REASONS = (
    ("colour picture", "a colour photograph or picture (breast ultrasound is grayscale)"),
    ("almost no texture", "an almost uniform image, without the texture of an ultrasound scan"),
    ("no ultrasound speckle", "not an ultrasound texture (it looks like random noise or fine print)"),
    ("mostly white", "mostly white, like a screen capture, a document or a drawing"),
    ("unlike the breast-ultrasound", "not an ultrasound texture the models know (unlike every breast-ultrasound "
                                     "frame they were trained on)"),
)
UNLIKE = "it is unlike the images the models were trained on"
RESEARCH_ONLY = "Research-only answer"


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


def overlay_image(diagnosis: Diagnosis, alpha: float = 0.4, mode: str = "filled", show_prediction: bool = True,
                  show_truth: bool = True) -> np.ndarray:
    """The predicted mask (pink) and, when there is one, the ground-truth outline (cyan) drawn over the image."""
    truth = diagnosis.truth_mask if show_truth else None
    return overlay(diagnosis.image.pixels, diagnosis.prediction.mask if show_prediction else None, alpha, mode,
                   truth=truth)


def zoom_layers(diagnosis: Diagnosis) -> dict[str, np.ndarray]:
    """What the zoomable view stacks: ``image`` (RGB), the predicted lesion as ``fill`` and ``outline`` (RGBA)
    and, when there is a ground truth, its ``truth`` outline (RGBA); the viewer switches and blends them."""
    gray = diagnosis.image.pixels
    thickness = max(1, round(max(gray.shape[:2]) / 250))
    mask = diagnosis.prediction.mask
    layers = {"image": overlay(gray, None),
              "fill": mask_layer(mask, LESION_COLOUR, True, thickness),
              "outline": mask_layer(mask, LESION_COLOUR, False, thickness)}
    if diagnosis.truth_mask is not None:
        layers["truth"] = mask_layer(diagnosis.truth_mask, TRUTH_COLOUR, False, thickness)
    return layers


def legend(diagnosis: Diagnosis, show_prediction: bool = True, show_truth: bool = True) -> list[tuple[str, tuple]]:
    """``(name, RGB)`` of what :func:`overlay_image` draws."""
    out = [("predicted lesion", LESION_COLOUR)] if show_prediction else []
    if show_truth and diagnosis.truth_mask is not None:
        out.append(("ground truth", TRUTH_COLOUR))
    return out


def answer_heading(p: Prediction, out_of_scope: bool = False) -> str:
    """"Prediction: benign", or "Research-only answer: benign" for an image the scope gate refused."""
    return f"{RESEARCH_ONLY if out_of_scope else 'Prediction'}: {p.label}"


def download_overlay(diagnosis: Diagnosis, alpha: float = 0.4, mode: str = "filled", show_prediction: bool = True,
                     show_truth: bool = True) -> bytes:
    """The overlay PNG to download: the image with its outlines, then the label, confidence, legend and the
    research-tool line (a refused image says its answer is research-only)."""
    p = diagnosis.prediction
    refused = p.in_scope is False
    lines = [f"{answer_heading(p, refused)} ({p.confidence:.0%}, refined model); baseline model: "
             f"{p.baseline_label} ({p.baseline_probabilities[p.baseline_label]:.0%})"]
    if refused:
        lines.append(f"Out of scope: {refusal_message(p)} The answer is not meaningful.")
    if diagnosis.true_label is not None:
        lines.append(f"True class: {diagnosis.true_label}")
    if diagnosis.dice is not None:
        lines.append(f"Dice {diagnosis.dice:.3f}, IoU {diagnosis.iou:.3f} against the ground truth")
    lines.append(f"Image: {diagnosis.name}")
    picture = overlay_image(diagnosis, alpha, mode, show_prediction, show_truth)
    return png_bytes(annotate(picture, lines, legend(diagnosis, show_prediction, show_truth), footer=DISCLAIMER))


def png_bytes(rgb: np.ndarray) -> bytes:
    """PNG encoding of an RGB, RGBA or grayscale uint8 array."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, "PNG")
    return buf.getvalue()


def jpeg_bytes(rgb: np.ndarray, quality: int = 92) -> bytes:
    """JPEG encoding of an RGB or grayscale uint8 array: for showing a frame (a fifth of the PNG's size and
    several times faster to encode); downloads stay PNG."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def plain_reason(p: Prediction) -> str:
    """Why the scope gate refused the image, in plain words (``UNLIKE`` when it gave no known reason)."""
    reason = p.scope_reason or ""
    return next((words for start, words in PLAIN_REASONS if reason.startswith(start)), UNLIKE)


def refusal_message(p: Prediction) -> str | None:
    """The refusal sentence when the scope gate judged the image not a breast ultrasound (else None)."""
    if p.in_scope is not False:
        return None
    return f"{NOT_ULTRASOUND}: {plain_reason(p)}."


def refusal_detail(p: Prediction) -> str:
    """The gate's own reason with its numbers, for those who want them."""
    score = "" if p.scope_score is None else f" (scope score {p.scope_score:.2f}; 1 or less is in scope)"
    return f"Scope check: {p.scope_reason or UNLIKE}{score}."


def all_warnings(diagnosis: Diagnosis) -> list[str]:
    """The loader's warnings (size, blank, colour Doppler...), the scope gate's (burned-in annotations), then the
    black borders set aside, if any."""
    note = diagnosis.prediction.border_note
    return list(diagnosis.image.warnings) + list(diagnosis.prediction.scope_warnings) + ([note] if note else [])


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
