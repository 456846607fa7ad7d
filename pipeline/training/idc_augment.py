"""Training-time augmentation of H&E patches: flips, 90-degree rotations and stain / colour jitter.

Stain jitter follows Tellez et al. (2018): colours are split into haematoxylin, eosin and DAB optical
densities with the Ruifrok-Johnston stain matrix, each scaled and shifted a little, and recombined; then
small brightness / contrast changes. Every operation keeps the patch's 50x50 RGB uint8 form.
"""

from __future__ import annotations

import numpy as np

# rows: haematoxylin, eosin, DAB optical-density colour vectors (Ruifrok & Johnston 2001), unit length
_STAINS = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]])
_STAINS = _STAINS / np.linalg.norm(_STAINS, axis=1, keepdims=True)
_UNMIX = np.linalg.inv(_STAINS)


def stain_jitter(patches: np.ndarray, rng: np.random.Generator, sigma: float = 0.05, bias: float = 0.05) -> np.ndarray:
    """Per-patch HED jitter: each stain's density times U(1 - sigma, 1 + sigma) plus U(-bias, bias)."""
    x = patches.astype(np.float32)
    od = -np.log((x + 1.0) / 256.0)  # optical density, >= 0
    hed = od @ _UNMIX
    n = len(x)
    alpha = rng.uniform(1 - sigma, 1 + sigma, (n, 1, 1, 3)).astype(np.float32)
    beta = rng.uniform(-bias, bias, (n, 1, 1, 3)).astype(np.float32)
    od2 = (hed * alpha + beta) @ _STAINS
    return np.clip(256.0 * np.exp(-od2) - 1.0, 0, 255)


def augment_patches(patches: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random dihedral view, stain jitter, brightness and contrast, per patch; float32 in 0-255."""
    out = np.empty(patches.shape, np.float32)
    for i, p in enumerate(patches):
        p = np.rot90(p, int(rng.integers(4)))
        out[i] = p[:, ::-1] if rng.random() < 0.5 else p
    out = stain_jitter(out, rng)
    n = len(out)
    mean = out.mean(axis=(1, 2, 3), keepdims=True)
    contrast = rng.uniform(0.85, 1.15, (n, 1, 1, 1)).astype(np.float32)
    shift = rng.uniform(-12, 12, (n, 1, 1, 1)).astype(np.float32)
    return np.clip((out - mean) * contrast + mean + shift, 0, 255).astype(np.float32)
