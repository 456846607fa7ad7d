"""Throughput and p95 latency of ``Predictor.predict`` with 1, 2, 4 and 8 concurrent callers.

Usage: ``python -m bench.concurrent_load [--per-caller 8]`` with BUSI_DIR pointing at the dataset.
Each caller (a thread, as Streamlit sessions are) predicts test-split images back to back.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time

from bench.common import test_images
from pipeline.inference.predictor import Predictor


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-caller", type=int, default=8, help="predictions per caller")
    args = parser.parse_args()
    grays = test_images(16)
    predictor = Predictor()
    for g in grays[:3]:
        predictor.predict(g)
    print("callers  throughput (images/s)  median latency (ms)  p95 latency (ms)")
    for callers in (1, 2, 4, 8):
        latencies: list[float] = []
        lock = threading.Lock()

        def caller(k: int, latencies: list[float] = latencies, lock: threading.Lock = lock) -> None:
            for i in range(args.per_caller):
                t = time.perf_counter()
                predictor.predict(grays[(k + i) % len(grays)])
                with lock:
                    latencies.append((time.perf_counter() - t) * 1e3)

        threads = [threading.Thread(target=caller, args=(k,)) for k in range(callers)]
        start = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        wall = time.perf_counter() - start
        p95 = sorted(latencies)[int(0.95 * (len(latencies) - 1))]
        print(f"{callers:>7}  {len(latencies) / wall:>21.1f}  {statistics.median(latencies):>19.0f}  {p95:>16.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
