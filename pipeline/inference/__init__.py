"""Inference stage: the one Predictor, overlays, Grad-CAM, lesion measurements, reports."""
