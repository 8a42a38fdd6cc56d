"""Helpers shared by the benchmarks: machine description and timing."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from typing import Any

__all__ = ["machine_info", "best_of"]


def machine_info() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def best_of(fn: Callable[[], Any], *, repeat: int = 3) -> float:
    """Best wall time in seconds of ``repeat`` calls of ``fn`` (the least-disturbed run)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best
