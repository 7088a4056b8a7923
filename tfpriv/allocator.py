"""Keeping freed heap memory in the process, so NumPy temporaries do not page-fault.

glibc's malloc serves a request above M_MMAP_THRESHOLD (128 KiB at start, then raised
to the size of the largest mapping freed so far) with a fresh `mmap`, and returns free
memory above M_TRIM_THRESHOLD at the top of the heap to the kernel (mallopt(3)). A loop
that allocates and frees arrays of a few megabytes, as every secure-aggregation round
does per client (noise, shares, masks, fixed-point words), then touches fresh pages on
each call and pays a page fault per 4 KiB page; on a virtual machine that reclaims
free guest memory these faults cost more than the arithmetic. Raising both thresholds
keeps the pages mapped and reused (the effect PyTorch's CPU performance guide gets by
preloading jemalloc or tcmalloc). `benchmarks/allocator_effect.py` measures it.

The cost is resident memory: up to `trim_threshold` bytes of freed heap stay with the
process. The setting is process-wide; `train.py` and the benchmarks apply it at start
(`--default-allocator` turns it off), library code never does it on its own. A process
about to be started gets the same policy from `environment()` (glibc reads it at start).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
from typing import Dict

from absl import logging

from tfpriv import checks

# mallopt(3) parameter numbers (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# glibc caps M_MMAP_THRESHOLD at HEAP_MAX_SIZE / 2 = 32 MiB on 64-bit systems.
MAX_MMAP_THRESHOLD = 32 << 20
DEFAULT_TRIM_THRESHOLD = 1 << 30


@dataclasses.dataclass(frozen=True)
class AllocatorSettings:
    """What `keep_freed_memory` did: `applied` False says why in `reason`."""

    applied: bool
    mmap_threshold: int
    trim_threshold: int
    reason: str = ''


def _glibc():
    """glibc's handle, or None on another C library (musl, macOS, Windows)."""
    name = ctypes.util.find_library('c')
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return libc if hasattr(libc, 'gnu_get_libc_version') and hasattr(libc, 'mallopt') else None


def _checked(mmap_threshold: int, trim_threshold: int) -> tuple:
    mmap_threshold = checks.integer('mmap_threshold', mmap_threshold, 1 << 20, MAX_MMAP_THRESHOLD)
    return mmap_threshold, checks.integer('trim_threshold', trim_threshold, mmap_threshold)


def environment(mmap_threshold: int = MAX_MMAP_THRESHOLD,
                trim_threshold: int = DEFAULT_TRIM_THRESHOLD) -> Dict[str, str]:
    """The variables that give a process started with them `keep_freed_memory`'s policy
    (glibc's MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_; ignored by other C libraries)."""
    mmap_threshold, trim_threshold = _checked(mmap_threshold, trim_threshold)
    return {'MALLOC_MMAP_THRESHOLD_': str(mmap_threshold),
            'MALLOC_TRIM_THRESHOLD_': str(trim_threshold)}


def keep_freed_memory(mmap_threshold: int = MAX_MMAP_THRESHOLD,
                      trim_threshold: int = DEFAULT_TRIM_THRESHOLD) -> AllocatorSettings:
    """Serves allocations below `mmap_threshold` bytes from the heap and keeps up to
    `trim_threshold` bytes of freed heap mapped (glibc `mallopt`); elsewhere a no-op.

    Raises:
      ValueError: mmap_threshold outside [1 MiB, 32 MiB] or trim_threshold below it.
    """
    mmap_threshold, trim_threshold = _checked(mmap_threshold, trim_threshold)
    libc = _glibc()
    if libc is None:
        return AllocatorSettings(False, mmap_threshold, trim_threshold,
                                 'not glibc: the C library keeps its own policy')
    if not (libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold)
            and libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold)):
        return AllocatorSettings(False, mmap_threshold, trim_threshold, 'mallopt refused')
    logging.info('malloc keeps freed memory: mmap threshold %d B, trim threshold %d B',
                 mmap_threshold, trim_threshold)
    return AllocatorSettings(True, mmap_threshold, trim_threshold)
