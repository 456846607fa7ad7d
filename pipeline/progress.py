"""A tiny text progress reporter for long scans (writes to stderr, one updating line)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable


def printer(label: str, every: int = 100) -> Callable[[int, int], None]:
    """Return ``progress(done, total)`` that prints ``label: done/total`` every ``every`` items."""
    start = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if done % every and done != total:
            return
        elapsed = time.perf_counter() - start
        end = "\n" if done == total else "\r"
        print(f"{label}: {done}/{total} ({elapsed:.1f} s)", end=end, file=sys.stderr, flush=True)

    return progress
