"""IDC histopathology inference: the one path from 50x50 H&E patches to calibrated IDC probabilities.

Training (epoch choice), evaluation, the CLI, the HTTP API and the dashboard all call :class:`IdcPredictor`.
Test-time settings (8-fold flip/rotation averaging, softmax temperature, the patch threshold and the patient
rule) are chosen on the validation patients and stored in ``models/idc/idc_classifier.json``.

Tiles ("beyond one patch"): an H&E tile of any size from 50x50 to 4000x4000 px is cut into non-overlapping
50x50 cells from its top-left corner; a partial cell on the right or bottom edge is completed by mirror
reflection of the tile (``numpy.pad(mode="symmetric")``), so no pixel is resized and the model sees the
magnification it was trained on. A tile under 50 px on a side is refused (resizing it would change that
magnification). Cells that are at least 97% near-white glass are background: not scored, not counted. The
answer is a per-cell IDC probability map (``TileResult``), the share of tissue cells called IDC and, for
display, the map at the tile's own size. The 8-view averaging (when the config asks for it) is used for
tiles of up to ``TILE_TTA_MAX_CELLS`` cells; larger tiles use one view (8 views would cost 8x the time).

The network runs on TensorFlow Lite (``pipeline.inference.runtime``, converted once and cached) unless
``runtime="keras"`` or ``BUSI_RUNTIME=keras``; a model handed over in memory (training) runs on Keras.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import paths
from pipeline.config import IDC_CONFIG_FILE, IDC_MODEL_FILE, IdcConfig, idc_dir_in
from pipeline.errors import ImageLoadError, ModelLoadError
from pipeline.inference.modality import TISSUE_MIN, background_mask
from pipeline.metrics import apply_temperature

BATCH = 256
RUN_BATCHES = (1, 8)  # network calls: chunks of 8, a last partial chunk padded (one interpreter per size);
# measured on 2 busy cores, a 1000x1000 tile: chunks of 8 4.1 s, of 32 4.7 s (median of 4, load ~9)
MAX_TILE_SIDE = 4000  # px; larger tiles are refused (6,400 cells at most)
TILE_TTA_MAX_CELLS = 16  # 8-view averaging for tiles up to this many cells (200x200 px), one view above
IDC_RESTORE_HINT = ("The IDC model ships with the project in models/idc/: restore it with `git checkout -- models/idc/`, "
                    "or retrain with `python -m pipeline idc train` then `python -m pipeline idc evaluate`.")


def dihedral(patches: np.ndarray) -> list[np.ndarray]:
    """The 8 flips / 90-degree rotations of a batch (N, H, W, C); the first is the batch itself."""
    out = []
    for k in range(4):
        r = np.rot90(patches, k, axes=(1, 2))
        out += [r, r[:, :, ::-1]]
    return [np.ascontiguousarray(a) for a in out]


def check_patches(patches: np.ndarray, size: int) -> np.ndarray:
    """Validate a (N, size, size, 3) uint8-range batch (a single patch is promoted); float32 out."""
    a = np.asarray(patches)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4 or a.shape[1:] != (size, size, 3):
        raise ImageLoadError(f"expected RGB patches of {size}x{size} pixels, got an array of shape {a.shape}")
    return a.astype(np.float32)


def _padded_size(n: int) -> int:
    return next((b for b in RUN_BATCHES if b >= n), RUN_BATCHES[-1])


@dataclass(frozen=True)
class TileGrid:
    """How a tile is cut: ``rows`` x ``cols`` cells of ``cell`` px from the top-left; the tile is ``height`` x
    ``width`` px, the last row/column of cells is completed by mirror reflection when it is partial."""

    height: int
    width: int
    cell: int

    @property
    def rows(self) -> int:
        return -(-self.height // self.cell)

    @property
    def cols(self) -> int:
        return -(-self.width // self.cell)

    @property
    def padding(self) -> tuple[int, int]:
        """(bottom, right) pixels added by reflection."""
        return self.rows * self.cell - self.height, self.cols * self.cell - self.width

    def to_dict(self) -> dict:
        bottom, right = self.padding
        return {"cell_px": self.cell, "rows": self.rows, "cols": self.cols, "cells": self.rows * self.cols,
                "tile_px": [self.width, self.height], "reflected_px": {"bottom": bottom, "right": right}}


def tile_grid(height: int, width: int, cell: int = 50, max_side: int = MAX_TILE_SIDE) -> TileGrid:
    """The grid of a ``height`` x ``width`` tile; ImageLoadError when a side is under ``cell`` or over ``max_side``."""
    if min(height, width) < cell:
        raise ImageLoadError(f"the tile is {width}x{height} px: the IDC model reads {cell}x{cell} px patches at the "
                             f"magnification of its training slides, so each side must be at least {cell} px "
                             "(upload the patch as scanned, not resized)")
    if max(height, width) > max_side:
        raise ImageLoadError(f"the tile is {width}x{height} px: the largest tile read is {max_side}x{max_side} px "
                             f"({(max_side // cell) ** 2:,} patches); cut the region into smaller tiles")
    return TileGrid(int(height), int(width), int(cell))


def cut_cells(tile: np.ndarray, grid: TileGrid) -> np.ndarray:
    """(rows * cols, cell, cell, 3) uint8 cells of an RGB tile, row by row, edges completed by reflection."""
    bottom, right = grid.padding
    a = np.pad(np.asarray(tile), ((0, bottom), (0, right), (0, 0)), mode="symmetric")
    c = grid.cell
    return np.ascontiguousarray(a.reshape(grid.rows, c, grid.cols, c, 3).swapaxes(1, 2).reshape(-1, c, c, 3))


def tissue_cells(cells: np.ndarray) -> np.ndarray:
    """(N,) True for cells with at least ``TISSUE_MIN`` of pixels that are not near-white glass."""
    return (~background_mask(cells)).mean(axis=(1, 2)) >= TISSUE_MIN


@dataclass(frozen=True, eq=False)
class TileResult:
    """The IDC answer for one tile: a probability per cell (NaN for background), called cells, the grid."""

    probabilities: np.ndarray  # (rows, cols) float32 calibrated IDC probability, NaN where background
    threshold: float
    grid: TileGrid
    views: int  # 8 with flip/rotation averaging, else 1
    ms: float

    @property
    def tissue(self) -> np.ndarray:
        return ~np.isnan(self.probabilities)

    @property
    def called(self) -> np.ndarray:
        """(rows, cols) True where a tissue cell is called IDC."""
        return self.tissue & (np.nan_to_num(self.probabilities, nan=-1.0) >= self.threshold)

    @property
    def n_tissue(self) -> int:
        return int(self.tissue.sum())

    @property
    def n_idc(self) -> int:
        return int(self.called.sum())

    @property
    def share_idc(self) -> float | None:
        """Share of tissue cells called IDC (None when no cell holds tissue)."""
        return self.n_idc / self.n_tissue if self.n_tissue else None

    @property
    def max_probability(self) -> float | None:
        return float(np.nanmax(self.probabilities)) if self.n_tissue else None

    @property
    def label(self) -> str | None:
        """"IDC" when any tissue cell is called IDC (a single patch: its own call), else "non-IDC"."""
        if not self.n_tissue:
            return None
        return "IDC" if self.n_idc else "non-IDC"

    def heatmap(self) -> np.ndarray:
        """(height, width) float32: each pixel carries its cell's probability (NaN over background)."""
        c = self.grid.cell
        full = np.repeat(np.repeat(self.probabilities, c, axis=0), c, axis=1)
        return full[: self.grid.height, : self.grid.width]

    def to_record(self) -> dict:
        """JSON-ready answer: label, probabilities, share, counts, grid, per-cell map (null = background)."""
        probs = [[None if np.isnan(v) else round(float(v), 4) for v in row] for row in self.probabilities]
        single = self.grid.rows * self.grid.cols == 1
        return {
            "task": "idc", "label": self.label,
            "idc_probability": probs[0][0] if single else self.max_probability,
            "idc_probability_is": "the patch's" if single else "the highest of the tissue cells",
            "threshold": round(float(self.threshold), 4), "share_idc": self.share_idc,
            "idc_cells": self.n_idc, "tissue_cells": self.n_tissue, "views": self.views,
            "grid": self.grid.to_dict(), "cell_probabilities": probs,
        }


class IdcPredictor:
    """Loads the IDC classifier once; answers IDC probabilities for patches and tiles (thread-safe)."""

    def __init__(self, models_dir: str | Path | None = None, model=None, config: IdcConfig | None = None,
                 runtime: str | None = None):
        from pipeline.inference.runtime import default_runtime

        self.folder = idc_dir_in(models_dir or paths.models_dir())
        self._lock = threading.Lock()
        self._runner = None  # None: the in-memory Keras model is called directly
        self.runtime = "keras"
        if model is not None:
            self.model, self.config = model, config or IdcConfig()
            return
        from pipeline.inference.bundle import check_idc_model, read_manifest, verify_file

        model_file, config_file = self.folder / IDC_MODEL_FILE, self.folder / IDC_CONFIG_FILE
        for f in (model_file, config_file):
            if not f.is_file():
                raise ModelLoadError(f"IDC model file missing: models/idc/{f.name}. {IDC_RESTORE_HINT}")
        manifest = read_manifest(self.folder)  # the set's own manifest: every file checked before it is loaded
        self.sha256 = verify_file(self.folder, manifest, IDC_MODEL_FILE)
        verify_file(self.folder, manifest, IDC_CONFIG_FILE)
        try:
            import keras

            self.model = keras.saving.load_model(model_file, compile=False)
            self.config = IdcConfig.load(config_file)
        except Exception as exc:  # noqa: BLE001 - keras raises many types for a damaged file
            raise ModelLoadError(f"the IDC model models/idc/{model_file.name} cannot be loaded "
                                 f"({type(exc).__name__}). {IDC_RESTORE_HINT}") from exc
        check_idc_model(self.model)
        from pipeline.inference.runtime import make_runner

        self._runner, self.runtime = make_runner(self.model, runtime or default_runtime(), self.sha256, "model",
                                                 label="idc_classifier")

    def _call(self, batch: np.ndarray) -> np.ndarray:
        """Softmax outputs of one batch (padded to a fixed batch size for the converted network)."""
        if self._runner is None:
            return np.asarray(self.model(batch, training=False), np.float64)
        n = len(batch)
        size = _padded_size(n)
        if size > n:
            batch = np.concatenate([batch, np.zeros((size - n, *batch.shape[1:]), batch.dtype)])
        return np.asarray(self._runner(batch)[0][:n], np.float64)

    def raw_probabilities(self, patches: np.ndarray, tta: bool | None = None) -> np.ndarray:
        """(N, 2) softmax outputs before the temperature, averaged over the 8 dihedral views when ``tta``."""
        x = check_patches(patches, self.config.patch_size)
        tta = self.config.tta if tta is None else tta
        views = np.concatenate(dihedral(x)) if tta else x  # view-major: all patches in view 0, then view 1, ...
        step = BATCH if self._runner is None else RUN_BATCHES[-1]
        with self._lock:
            out = np.concatenate([self._call(views[i:i + step]) for i in range(0, len(views), step)])
        return out.reshape(-1, len(x), 2).mean(axis=0)

    def probabilities(self, patches: np.ndarray, tta: bool | None = None) -> np.ndarray:
        """(N,) calibrated IDC probability per patch."""
        return apply_temperature(self.raw_probabilities(patches, tta), self.config.temperature)[:, 1]

    def labels(self, idc_probability: np.ndarray) -> np.ndarray:
        """1 where a patch is called IDC (probability at or above the threshold chosen on val)."""
        return (np.asarray(idc_probability) >= self.config.threshold).astype(np.uint8)

    def tile(self, rgb: np.ndarray, tta: bool | None = None) -> TileResult:
        """IDC probability map of an RGB uint8 tile of any size (see the module docstring for the grid).

        ``tta``: default the config's choice for tiles of up to ``TILE_TTA_MAX_CELLS`` cells, one view above.
        Raises ImageLoadError for a tile under 50 px or over ``MAX_TILE_SIDE`` px on a side.
        """
        t0 = time.perf_counter()
        a = np.asarray(rgb)
        if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
            raise ImageLoadError(f"expected an RGB uint8 tile, got {a.dtype} of shape {a.shape}")
        grid = tile_grid(a.shape[0], a.shape[1], self.config.patch_size)
        cells = cut_cells(a, grid)
        if tta is None:
            tta = self.config.tta and len(cells) <= TILE_TTA_MAX_CELLS
        keep = tissue_cells(cells)
        probs = np.full(len(cells), np.nan, np.float32)
        if keep.any():
            probs[keep] = self.probabilities(cells[keep], tta=tta)
        return TileResult(probs.reshape(grid.rows, grid.cols), float(self.config.threshold), grid, 8 if tta else 1,
                          (time.perf_counter() - t0) * 1e3)

    @property
    def runtimes(self) -> dict[str, str]:
        """What the network runs on (as the ultrasound Predictor reports it per graph)."""
        return {"idc": self.runtime}

    def warm_up(self) -> None:
        """One patch and one 32-cell tile through the network, so the first user does not wait for set-up."""
        rng = np.random.default_rng(0)
        self.tile(rng.integers(0, 255, (100, 800, 3), dtype=np.uint8))
        self.tile(rng.integers(0, 255, (50, 50, 3), dtype=np.uint8))
