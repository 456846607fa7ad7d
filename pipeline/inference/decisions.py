"""The decision rules, in one place: how a probability map becomes a mask, how the two classifiers are fused, and
how ``evaluate`` (and the out-of-fold UNets, and the experiments) choose their values on validation.

- Mask: ``prob >= threshold``, empty when no pixel reaches the lesion-presence threshold (0: never gated).
- Mask threshold: the best mean lesion Dice among ``THRESHOLDS``; ties go to the one nearest 0.5, then to no flip.
- Presence gate: the best mean lesion Dice among ``PRESENCE_THRESHOLDS`` whose normal-image false-positive rate is
  at most ``MAX_NORMAL_FP``, else the lowest rate.
- Fusion: ``weight * crop + (1 - weight) * baseline``; the weight with the lowest validation log-loss among
  ``FUSION_WEIGHTS`` (ties: the larger weight).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipeline import metrics

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)
FUSION_WEIGHTS = (1.0, 0.75, 0.5, 0.25, 0.0)
PRESENCE_THRESHOLDS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99)
MAX_NORMAL_FP = 0.10  # target: normal images with a predicted lesion


def lesion_mask(prob: np.ndarray, threshold: float, presence_threshold: float = 0.0) -> np.ndarray:
    """0/1 mask of ``prob >= threshold``; empty when no pixel reaches ``presence_threshold`` (the lesion-presence
    gate, chosen on validation to keep lesions from being outlined in normal images)."""
    if presence_threshold > 0 and float(prob.max()) < presence_threshold:
        return np.zeros(prob.shape, np.uint8)
    return (prob >= threshold).astype(np.uint8)


def fuse(baseline: np.ndarray, crop: np.ndarray, weight: float) -> np.ndarray:
    """The refined answer: the crop classifier's probabilities weighted by ``weight``, the rest the baseline's."""
    return weight * crop + (1 - weight) * baseline


def lesion_dice_by_threshold(maps: Sequence[np.ndarray], truths: Sequence[np.ndarray],
                             thresholds: Sequence[float] = THRESHOLDS) -> dict[float, float]:
    """Mean Dice over the lesion images (non-empty truth) of ``maps >= t``, for each threshold (0 without any)."""
    lesion = [i for i, t in enumerate(truths) if t.any()]
    return {t: float(np.mean([metrics.dice(maps[i] >= t, truths[i]) for i in lesion])) if lesion else 0.0
            for t in thresholds}


def choose_threshold(dice_by: dict[tuple[bool, float], float]) -> tuple[bool, float]:
    """(flip, threshold) with the best mean lesion Dice; ties: the threshold nearest 0.5, then no flip."""
    return max(dice_by, key=lambda k: (dice_by[k], -abs(k[1] - 0.5), not k[0]))


def choose_presence(maps: Sequence[np.ndarray], truths: Sequence[np.ndarray], threshold: float,
                    candidates: tuple[float, ...] = PRESENCE_THRESHOLDS, max_fp: float = MAX_NORMAL_FP):
    """The lesion-presence threshold (see the module docstring). Returns (threshold, {candidate: (dice, fp rate)})."""
    table = {c: metrics.lesion_dice_and_normal_fp([lesion_mask(m, threshold, c) for m in maps], truths)
             for c in candidates}
    ok = [c for c in candidates if table[c][1] <= max_fp]
    best = max(ok, key=lambda c: (table[c][0], -c)) if ok else min(candidates, key=lambda c: (table[c][1], -table[c][0]))
    return best, table


def choose_fusion_weight(baseline: np.ndarray, crop: np.ndarray, y: np.ndarray,
                         weights: tuple[float, ...] = FUSION_WEIGHTS) -> tuple[float, dict[float, float]]:
    """The fusion weight with the lowest log-loss of untempered probabilities; returns (weight, {weight: log-loss})."""
    nll = {w: metrics.log_loss(fuse(baseline, crop, w), y) for w in weights}
    return min(weights, key=lambda w: (nll[w], -w)), nll
