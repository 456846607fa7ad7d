"""Median milliseconds per image: segmentation, each classifier, and end to end.

Usage: ``python -m bench.predict_speed [--images 60]`` with BUSI_DIR pointing at the dataset;
runs on test-split images after a warm-up, one image at a time (what the dashboard does), in this
process and through the model worker process the dashboard uses (``PredictorProcess``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from bench.common import test_image_paths
from pipeline.imageio import load_image
from pipeline.inference.predictor import Predictor
from pipeline.inference.runtime import RUNTIME_ENV, RUNTIMES


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--runtime", choices=RUNTIMES, default=None,
                        help="tflite (XNNPACK) or keras (default: $BUSI_RUNTIME, else tflite)")
    args = parser.parse_args()
    files = test_image_paths(args.images)
    grays = [load_image(p).pixels for p in files]
    t = time.perf_counter()
    predictor = Predictor(runtime=args.runtime)
    load_s = time.perf_counter() - t
    for g in grays[: args.warmup]:
        predictor.predict(g)
    times: dict[str, list[float]] = {"segmentation": [], "classification": [], "scope": [], "total": []}
    for g in grays:
        timings = predictor.predict(g).timings_ms
        for key in times:
            if key in timings:  # "scope": the scope gate's own step (absent without models/scope_gate.*)
                times[key].append(timings[key])
    # end to end including decoding the file, as the CLI does
    e2e = []
    for f in files:
        t = time.perf_counter()
        predictor.predict(load_image(f).pixels)
        e2e.append((time.perf_counter() - t) * 1e3)
    used = ", ".join(f"{k} {v}" for k, v in sorted(predictor.runtimes.items()))
    print(f"models loaded in {load_s:.1f} s; {len(grays)} test images, one at a time; runtime: {used}")
    for key, values in times.items():
        if not values:
            continue
        p95 = sorted(values)[int(0.95 * (len(values) - 1))]
        print(f"{key:>13}: median {statistics.median(values):7.1f} ms   p95 {p95:7.1f} ms")
    print(f"{'file->result':>13}: median {statistics.median(e2e):7.1f} ms")
    from pipeline.inference.worker import PredictorProcess

    if args.runtime:
        os.environ[RUNTIME_ENV] = args.runtime  # the worker process reads it
    worker = PredictorProcess()
    via_worker = []
    for g in grays:
        t = time.perf_counter()
        worker.predict(g)
        via_worker.append((time.perf_counter() - t) * 1e3)
    worker.close()
    print(f"{'via worker':>13}: median {statistics.median(via_worker):7.1f} ms   (PredictorProcess, as the dashboard)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
