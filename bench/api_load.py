"""Load and memory of one API worker: ``python -m pipeline serve`` under 1, 8 and 16 concurrent clients, then
16 concurrent worst-case uploads.

Usage: ``python -m bench.api_load [--per-client 4]`` with BUSI_DIR pointing at the dataset. Starts its own
server (one worker, default settings) on a free 127.0.0.1 port and prints, per load: requests/s, median and
p95 latency, errors (any answer but 200), and the worker's resident memory (RSS: after loading, peak during
each load, from /proc). Worst case: a 4096 x 4096 colour PNG (just under the pixel limit, decoded in full)
and a 35 KB 6000 x 6000 PNG of zeros (refused from its header, 413).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import cv2
import httpx
import numpy as np

from bench.browser import free_port
from bench.common import test_image_paths
from pipeline import paths


def rss_mib(pid: int) -> float:
    """Resident memory of process ``pid`` in MiB (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class PeakRss:
    """Samples a process's RSS every 20 ms in a thread; ``peak`` is the highest seen since ``reset``."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_mib(self.pid))

    def reset(self) -> None:
        self.peak = rss_mib(self.pid)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def start_server(port: int) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "serve", "--port", str(port), "--log-level", "warning"],
                            cwd=paths.PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the server exited with code {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    proc.kill()
    sys.exit("the server did not become healthy in 240 s")


def run_load(base: str, uploads: list[tuple[str, bytes]], clients: int, per_client: int) -> dict:
    """``clients`` threads each posting ``per_client`` uploads back to back; latency and status of each."""
    latencies, statuses, lock = [], [], threading.Lock()

    def client(k: int) -> None:
        with httpx.Client(base_url=base, timeout=300) as http:
            for i in range(per_client):
                name, data = uploads[(k * per_client + i) % len(uploads)]
                t = time.perf_counter()
                r = http.post("/predict", files={"file": (name, data, "application/octet-stream")})
                with lock:
                    latencies.append(time.perf_counter() - t)
                    statuses.append(r.status_code)

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    wall = time.perf_counter() - start
    ordered = sorted(latencies)
    return {"n": len(latencies), "rps": len(latencies) / wall, "p50": statistics.median(ordered) * 1e3,
            "p95": ordered[int(0.95 * (len(ordered) - 1))] * 1e3,
            "errors": sum(s != 200 for s in statuses), "statuses": sorted(set(statuses))}


def worst_case_uploads() -> list[tuple[str, bytes]]:
    """A 4096 x 4096 colour PNG (smooth, so small on the wire) and a 6000 x 6000 PNG of zeros."""
    yy, xx = np.mgrid[:4096, :4096]
    colour = np.stack([(xx // 16) % 256, (yy // 16) % 256, ((xx + yy) // 32) % 256], axis=2).astype(np.uint8)
    return [("colour_4096.png", cv2.imencode(".png", colour)[1].tobytes()),
            ("zeros_6000.png", cv2.imencode(".png", np.zeros((6000, 6000), np.uint8))[1].tobytes())]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-client", type=int, default=4, help="requests per client and load")
    parser.add_argument("--clients", default="1,8,16", help="comma-separated client counts ('' for none)")
    args = parser.parse_args()
    uploads = [(p.name, p.read_bytes()) for p in test_image_paths(32)]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_server(port)
    sampler = PeakRss(proc.pid)
    try:
        print(f"load average {os.getloadavg()[0]:.1f} (other work on this machine); "
              f"worker RSS after loading and warm-up: {rss_mib(proc.pid):.0f} MiB")
        run_load(base, uploads[:2], 1, 2)  # warm the runtime
        print("clients  requests  req/s  p50 (ms)  p95 (ms)  errors  peak RSS (MiB)")
        for clients in (int(c) for c in args.clients.split(",") if c):
            sampler.reset()
            r = run_load(base, uploads, clients, args.per_client)
            print(f"{clients:>7}  {r['n']:>8}  {r['rps']:>5.1f}  {r['p50']:>8.0f}  {r['p95']:>8.0f}  {r['errors']:>6}"
                  f"  {sampler.peak:>14.0f}")
        worst = worst_case_uploads()
        for name, data in worst:
            sampler.reset()
            r = run_load(base, [(name, data)], 16, 1)
            print(f"16 concurrent {name} ({len(data) / 1e3:.0f} KB): statuses {r['statuses']}, p50 {r['p50']:.0f} ms, "
                  f"p95 {r['p95']:.0f} ms, peak RSS {sampler.peak:.0f} MiB")
        time.sleep(1)
        print(f"worker RSS after the loads: {rss_mib(proc.pid):.0f} MiB; load average {os.getloadavg()[0]:.1f}")
    finally:
        sampler.stop()
        proc.terminate()
        proc.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
