"""Median milliseconds of the IDC model: one 50x50 patch, and tiles up to 1000x1000 px (the heat map).

Usage: ``python -m bench.idc_speed [--repeats 7] [--runtime tflite|keras]`` with ``IDC_DIR`` pointing at the pack
(tiles are mosaics of its test patches; without the pack, textured pink noise) and the model in ``models/idc/``
(or ``$BUSI_MODELS_DIR/idc/``). Goals (2 cores): a patch <= 30 ms, a 1000x1000 tile <= 3 s. Prints the machine's
load average beside the figures, since other work on the machine makes them read high.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from pipeline import paths
from pipeline.inference.idc import TILE_TTA_MAX_CELLS, IdcPredictor
from pipeline.inference.runtime import RUNTIMES

GOALS_MS = {"patch": 30.0, "tile 1000x1000": 3000.0}


def patches(n: int) -> np.ndarray:
    """``n`` test patches of the pack (cycled), or textured pink noise without it."""
    if paths.idc_available():
        from pipeline.data.idc import load_idc

        images = load_idc().subset("test").images
        return images[np.arange(n) % len(images)]
    rng = np.random.default_rng(0)
    base = np.array([200, 110, 170], np.float64)
    return np.clip(base + rng.normal(0, 25, (n, 50, 50, 1)), 0, 255).astype(np.uint8)


def mosaic(side: int) -> np.ndarray:
    """A ``side`` x ``side`` px tile of patches laid side by side."""
    k = -(-side // 50)
    p = patches(k * k)
    return np.concatenate([np.concatenate(list(p[r * k:(r + 1) * k]), axis=1) for r in range(k)])[:side, :side]


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up (interpreter set-up for this batch size)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--runtime", choices=RUNTIMES, default=None, help="default: $BUSI_RUNTIME, else tflite")
    args = parser.parse_args()
    t = time.perf_counter()
    predictor = IdcPredictor(runtime=args.runtime)
    print(f"IDC model loaded in {time.perf_counter() - t:.1f} s from {predictor.folder}; runtime {predictor.runtime}; "
          f"config tta={predictor.config.tta}; {os.cpu_count()} CPUs; load average before "
          + " ".join(f"{v:.1f}" for v in os.getloadavg()))
    patch = patches(1)[0]
    rows = [("patch", lambda: predictor.tile(patch, tta=False)),
            ("patch, 8 views", lambda: predictor.tile(patch, tta=True))]
    for side in (200, 500, 1000):
        tile = mosaic(side)
        rows.append((f"tile {side}x{side}", lambda tile=tile: predictor.tile(tile)))
    for name, fn in rows:
        ms = median_ms(fn, args.repeats if "1000" not in name else max(3, args.repeats // 2))
        goal = GOALS_MS.get(name)
        verdict = "" if goal is None else f"  (goal <= {goal:.0f} ms: {'met' if ms <= goal else 'NOT met'})"
        print(f"{name:<18} median {ms:8.1f} ms{verdict}")
    print(f"tiles over {TILE_TTA_MAX_CELLS} cells use one view per cell; load average after "
          + " ".join(f"{v:.1f}" for v in os.getloadavg()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
