"""The feature baseline for IDC patches: colour and texture statistics + gradient boosting / logistic regression.

A reported baseline, trained on the same training patients and with its threshold chosen on the same validation
patients as the network, so the network's gain is measured, not assumed. Features per patch (all from the
50x50 RGB patch): RGB and HSV means, standard deviations and percentiles; haematoxylin / eosin optical-density
statistics (colour deconvolution); a 16-bin gray-level histogram; gradient-magnitude and Laplacian statistics;
the share of dark (nuclear) pixels at three levels.
"""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.training.idc_augment import _UNMIX

PERCENTILES = (10, 25, 50, 75, 90)


def _stats(values: np.ndarray) -> list[float]:
    """Mean, standard deviation and the PERCENTILES of a flat array."""
    return [float(values.mean()), float(values.std()), *np.percentile(values, PERCENTILES).tolist()]


def patch_features(patch: np.ndarray) -> np.ndarray:
    """The feature vector of one (50, 50, 3) uint8 RGB patch."""
    rgb = patch.reshape(-1, 3).astype(np.float32)
    hsv = cv2.cvtColor(patch, cv2.COLOR_RGB2HSV).reshape(-1, 3).astype(np.float32)
    od = -np.log((rgb + 1.0) / 256.0)
    hed = od @ _UNMIX
    gray = cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1)
    grad = np.hypot(gx, gy).ravel()
    lap = cv2.Laplacian(gray, cv2.CV_32F).ravel()
    hist = np.bincount(gray.ravel() // 16, minlength=16) / gray.size
    feats: list[float] = []
    for c in range(3):
        feats += _stats(rgb[:, c])  # 21
    for c in range(3):
        feats += [float(hsv[:, c].mean()), float(hsv[:, c].std())]  # 6
    for c in range(2):  # haematoxylin, eosin
        feats += _stats(hed[:, c])  # 14
    feats += hist.tolist()  # 16
    feats += [float(grad.mean()), float(grad.std()), float(np.percentile(grad, 90)),
              float(np.abs(lap).mean()), float(lap.std())]  # 5
    feats += [float((gray < t).mean()) for t in (80, 110, 140)]  # 3
    return np.asarray(feats, np.float32)


N_FEATURES = len(patch_features(np.zeros((50, 50, 3), np.uint8)))


def features(patches: np.ndarray) -> np.ndarray:
    """(N, N_FEATURES) features of a batch of patches."""
    return np.stack([patch_features(p) for p in patches])


def fit_feature_models(x_train: np.ndarray, y_train: np.ndarray, seed: int = 0) -> dict:
    """Gradient boosting and logistic regression, class-balanced, on training features."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    boost = HistGradientBoostingClassifier(max_iter=300, learning_rate=0.05, max_leaf_nodes=15,
                                           class_weight="balanced", random_state=seed)
    logreg = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000))
    return {"gradient boosting": boost.fit(x_train, y_train), "logistic regression": logreg.fit(x_train, y_train)}
