"""Grad-CAM heatmaps for the Keras classifiers (Selvaraju et al., 2017).

The heatmap is the ReLU of the feature maps of the last 4-D layer weighted by the spatially
averaged gradient of the class score. The class score is the pre-softmax logit when the model
ends in a softmax Dense layer (the project's classifiers), else the model output itself.
``refined_gradcam`` maps the refined classifier's heatmap (computed on the lesion-centred
crop) back onto the full frame, so it overlays the original image.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipeline import preprocess


def last_conv_layer_name(model) -> str:
    """Name of the last layer whose output is 4-D (batch, height, width, channels).

    For the EfficientNet-Lite2 classifiers that is ``head_relu``; for Keras EfficientNetB3
    ``top_activation``.
    """
    for layer in reversed(model.layers):
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):
            continue
        if len(shape) == 4:
            return layer.name
    raise ValueError(f"model {model.name!r} has no 4-D (convolutional) output layer for Grad-CAM")


class GradCam:
    """Grad-CAM for one classifier; builds the gradient model once."""

    def __init__(self, model, layer_name: str | None = None):
        import keras

        self.model = model
        self.layer_name = layer_name or last_conv_layer_name(model)
        last = model.layers[-1]
        activation = getattr(last, "activation", None)
        self._logits_from_dense = (
            isinstance(last, keras.layers.Dense) and getattr(activation, "__name__", "") == "softmax"
        )
        feature = model.get_layer(self.layer_name).output
        head = last.input if self._logits_from_dense else model.output
        self._grad_model = keras.Model(model.inputs, [feature, head])
        self._dense = last if self._logits_from_dense else None

    def __call__(self, batch_input: np.ndarray, class_index: int | None = None,
                 extra: np.ndarray | None = None) -> tuple[np.ndarray, int]:
        """Heatmap (h, w) in [0, 1] at the model input size, and the class index explained.

        ``batch_input``: one model input (H, W, C) or a batch of one (1, H, W, C).
        ``class_index``: the class to explain (default: the predicted one).
        ``extra``: a second model input, held fixed (the two-branch network's global features, shape (1, n)).
        """
        import tensorflow as tf

        x = np.asarray(batch_input, np.float32)
        if x.ndim == 3:
            x = x[None]
        x = tf.convert_to_tensor(x)
        inputs = x if extra is None else [x, tf.convert_to_tensor(np.asarray(extra, np.float32))]
        with tf.GradientTape() as tape:
            features, head = self._grad_model(inputs, training=False)
            tape.watch(features)
            if self._dense is not None:
                scores = tf.matmul(head, self._dense.kernel) + self._dense.bias
            else:
                scores = head
            idx = int(tf.argmax(scores[0])) if class_index is None else int(class_index)
            score = scores[:, idx]
        grads = tape.gradient(score, features)
        weights = tf.reduce_mean(grads, axis=(1, 2))  # (1, channels)
        cam = tf.nn.relu(tf.reduce_sum(features * weights[:, None, None, :], axis=-1))[0].numpy()
        cam = cam.astype(np.float64)
        top = cam.max()
        cam = cam / top if top > 0 else np.zeros_like(cam)
        size = (int(x.shape[2]), int(x.shape[1]))
        heat = cv2.resize(cam.astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
        return np.clip(heat, 0.0, 1.0), idx


@dataclass(frozen=True)
class FrameHeatmap:
    """A heatmap on the full frame: ``heatmap`` (H, W) in [0, 1], the region the classifier saw."""

    heatmap: np.ndarray
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 of the classifier's input region
    whole_frame: bool
    class_index: int


def place_in_frame(heat: np.ndarray, shape: tuple[int, int], box: tuple[int, int, int, int] | None) -> np.ndarray:
    """Resize a heatmap to ``box`` (x0, y0, x1, y1) and place it in a zero frame of ``shape``."""
    h, w = shape
    x0, y0, x1, y1 = box if box is not None else (0, 0, w, h)
    frame = np.zeros((h, w), np.float32)
    frame[y0:y1, x0:x1] = cv2.resize(heat.astype(np.float32), (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    return np.clip(frame, 0.0, 1.0)


def refined_gradcam(cam: GradCam, gray: np.ndarray, mask: np.ndarray, class_index: int | None = None,
                    size: int = preprocess.CLS_SIZE, extra: np.ndarray | None = None,
                    crop: tuple[float, float] = (preprocess.CROP_MARGIN, preprocess.CROP_MIN_FRACTION)) -> FrameHeatmap:
    """Grad-CAM of the refined classifier on its lesion-centred crop, mapped back onto the frame (``extra``: the
    two-branch network's global features, held fixed, so the map shows what the crop branch looked at; ``crop``:
    the bundle's crop margin and minimum fraction)."""
    box = preprocess.lesion_box(mask, *crop)
    heat, idx = cam(preprocess.refined_input(gray, mask, size, *crop), class_index, extra)
    h, w = gray.shape[:2]
    full_box = box if box is not None else (0, 0, w, h)
    return FrameHeatmap(place_in_frame(heat, (h, w), box), tuple(int(v) for v in full_box), box is None, idx)


def colourise(heatmap: np.ndarray) -> np.ndarray:
    """RGB uint8 'jet' colouring of a [0, 1] heatmap."""
    heat8 = np.uint8(np.clip(heatmap, 0, 1) * 255)
    return cv2.cvtColor(cv2.applyColorMap(heat8, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


def blend(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45,
          box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """The image with the coloured heatmap blended in proportion to the heat (cold areas stay clear).

    ``box`` (x0, y0, x1, y1), when given, is outlined in white: the region the classifier looked at.
    """
    gray = preprocess.to_gray(np.asarray(image))
    rgb = cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB).astype(np.float32)
    if heatmap.shape != gray.shape:
        raise ValueError(f"heatmap shape {heatmap.shape} differs from image shape {gray.shape}")
    weight = (alpha * np.clip(heatmap, 0, 1))[:, :, None]
    out = (rgb * (1 - weight) + colourise(heatmap).astype(np.float32) * weight).round().astype(np.uint8)
    if box is not None:
        x0, y0, x1, y1 = box
        thickness = max(1, round(max(gray.shape) / 300))
        cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), (255, 255, 255), thickness)
    return out
