"""Keeping freed memory in the process, so NumPy and TensorFlow temporaries do not page-fault.

glibc's malloc serves a request above M_MMAP_THRESHOLD (128 KiB at start, then raised
to the size of the largest mapping freed so far) with a fresh `mmap`, and returns free
memory above M_TRIM_THRESHOLD at the top of the heap to the kernel (mallopt(3)). A loop
that allocates and frees arrays of a few megabytes, as every secure-aggregation round
does per client (noise, shares, masks, fixed-point words), then touches fresh pages on
each call and pays a page fault per 4 KiB page; on a virtual machine that reclaims
free guest memory these faults cost more than the arithmetic. Raising both thresholds
keeps the pages mapped and reused (the effect PyTorch's CPU performance guide gets by
preloading jemalloc or tcmalloc). `benchmarks/allocator_effect.py` measures it.

glibc caps M_MMAP_THRESHOLD at 32 MiB, and TensorFlow's CPU allocator is malloc: a
larger tensor, such as the 36 MB of convolution patches a DP-SGD step of the keras.io
MNIST convnet builds at batch 256, is mapped afresh at every step (about 9,000 faults).
TensorFlow's own pool, its best-fit-with-coalescing allocator on the CPU
(`TF_CPU_ALLOCATOR_USE_BFC`, read when TensorFlow first allocates), keeps such tensors'
memory: `keep_freed_memory` asks for it too, unless the variable is already set.

The cost is resident memory: up to `trim_threshold` bytes of freed heap stay with the
process, and TensorFlow's pool keeps what it once held. The setting is process-wide;
`train.py` and the benchmarks apply it at start, before TensorFlow's first operation
(`--default-allocator` turns it off), library code never does it on its own. Processes
started later inherit the TensorFlow variable; `environment()` gives a process about to
be started the whole policy (glibc reads it at start).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import os
from typing import Dict

from absl import logging

from tfpriv import checks

# mallopt(3) parameter numbers (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# glibc caps M_MMAP_THRESHOLD at HEAP_MAX_SIZE / 2 = 32 MiB on 64-bit systems.
MAX_MMAP_THRESHOLD = 32 << 20
DEFAULT_TRIM_THRESHOLD = 1 << 30
# TensorFlow's switch to its pooling CPU allocator (tensorflow/core/common_runtime/process_state.cc).
TENSORFLOW_POOL = 'TF_CPU_ALLOCATOR_USE_BFC'


@dataclasses.dataclass(frozen=True)
class AllocatorSettings:
    """What `keep_freed_memory` did: `applied` (malloc) False says why in `reason`;
    `tensorflow_pool`: TensorFlow is asked for its pooling allocator."""

    applied: bool
    mmap_threshold: int
    trim_threshold: int
    reason: str = ''
    tensorflow_pool: bool = False


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
    (glibc's MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_, ignored by other C libraries;
    TensorFlow's pool)."""
    mmap_threshold, trim_threshold = _checked(mmap_threshold, trim_threshold)
    return {'MALLOC_MMAP_THRESHOLD_': str(mmap_threshold),
            'MALLOC_TRIM_THRESHOLD_': str(trim_threshold), TENSORFLOW_POOL: 'true'}


def _pool_tensorflow_memory() -> bool:
    """Sets `TENSORFLOW_POOL` unless already set; whether it now asks for the pool (TensorFlow
    reads it as a boolean: true or 1, any case)."""
    os.environ.setdefault(TENSORFLOW_POOL, 'true')
    return os.environ[TENSORFLOW_POOL].strip().lower() in ('true', '1')


def keep_freed_memory(mmap_threshold: int = MAX_MMAP_THRESHOLD,
                      trim_threshold: int = DEFAULT_TRIM_THRESHOLD) -> AllocatorSettings:
    """Serves allocations below `mmap_threshold` bytes from the heap and keeps up to
    `trim_threshold` bytes of freed heap mapped (glibc `mallopt`; elsewhere a no-op), and
    asks TensorFlow for its pooling CPU allocator (effective before its first allocation).

    Raises:
      ValueError: mmap_threshold outside [1 MiB, 32 MiB] or trim_threshold below it.
    """
    mmap_threshold, trim_threshold = _checked(mmap_threshold, trim_threshold)
    pooled = _pool_tensorflow_memory()
    libc = _glibc()
    if libc is None:
        return AllocatorSettings(False, mmap_threshold, trim_threshold,
                                 'not glibc: the C library keeps its own policy', pooled)
    if not (libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold)
            and libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold)):
        return AllocatorSettings(False, mmap_threshold, trim_threshold, 'mallopt refused', pooled)
    logging.info('malloc keeps freed memory: mmap threshold %d B, trim threshold %d B; '
                 'TensorFlow pool %s', mmap_threshold, trim_threshold, pooled)
    return AllocatorSettings(True, mmap_threshold, trim_threshold, '', pooled)
